"""Before/after of FlowDensity's default base: ``base="normal"`` (before) against ``base="mixture"`` (after).

Protocol of ``benchmarks/density.py`` (``measure``: 80/20 split, features
standardized with the training part's statistics, held-out mean
log-likelihood in standardized units, fit seconds without the tracing), with
the default ``FlowDensity(random_state=0, device="cpu")``; the two contenders
alternate per dataset so that they share the machine's load. Run from the
repository root, one process at a time::

    python -m benchmarks.experiments.mixture_default --datasets wine moons --out benchmarks/results/mixture_default.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from skflow import FlowDensity

from .. import datasets
from .. import density as bench

# Rows per dataset (None: the benchmark's size); moons at 2,000 rows as in issue 12.
MAX_ROWS = {"moons": 2000}


def _fitter(base: str):
    def fit(X, settings, trace=None):
        callback = trace.flow_density_callback() if trace is not None else None
        estimator = FlowDensity(base=base, random_state=settings.seed, device="cpu", callback=callback).fit(X)
        estimator.set_params(callback=None)
        return estimator, {"base": base, "n_components": estimator.n_components_, "best_epoch": estimator.best_epoch_}

    return fit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", required=True, choices=datasets.NAMES)
    parser.add_argument("--out", required=True, help="JSON lines, appended")
    args = parser.parse_args(argv)
    bench.FITTERS.update(flow_normal=_fitter("normal"), flow_mixture=_fitter("mixture"))
    bench.TRACED = (*bench.TRACED, "flow_normal", "flow_mixture")
    settings = bench.Settings()
    for name in args.datasets:
        data = datasets.load(name, max_rows=MAX_ROWS.get(name), seed=settings.seed)
        for model in ("flow_normal", "flow_mixture"):
            result = bench.measure(model, data, settings)
            score, seconds = result.test_log_likelihood, result.fit_seconds
            print(f"{name:<17} {model:<13} {score:9.3f}  fit {seconds:6.1f}s  {result.params}")
            row = {**asdict(result), "shape": list(data.X_train.shape)}
            row.pop("trace")
            with open(args.out, "a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
