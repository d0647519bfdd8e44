"""Capacity runs: FlowDensity with given parameters on benchmark sets, one JSON line per fit.

Protocol of ``benchmarks/density.py`` (``measure``: 80/20 split, features
standardized with the training part's statistics, held-out mean
log-likelihood in standardized units, fit seconds without the tracing);
``FlowDensity(random_state=0, device="cpu", **params)``. Run from the
repository root, one process at a time::

    python -m benchmarks.experiments.capacity --datasets lognormal_8d --params '{"n_bins": 16}' \
        --out benchmarks/results/capacity.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from skflow import FlowDensity

from .. import datasets
from .. import density as bench


def _fitter(params: dict):
    def fit(X, settings, trace=None):
        callback = trace.flow_density_callback() if trace is not None else None
        estimator = FlowDensity(random_state=settings.seed, device="cpu", callback=callback, **params).fit(X)
        estimator.set_params(callback=None)
        fitted = {
            "hidden_units_": list(estimator.hidden_units_),
            "n_iter_": estimator.n_iter_,
            "best_epoch_": estimator.best_epoch_,
            "n_components_": getattr(estimator, "n_components_", None),
        }
        for name in ("n_transforms_", "n_bins_"):
            if hasattr(estimator, name):
                fitted[name] = getattr(estimator, name)
        return estimator, {**params, **fitted}

    return fit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", required=True, choices=datasets.NAMES)
    parser.add_argument("--params", default="{}", help="FlowDensity parameters as a JSON object")
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", required=True, help="JSON lines, appended")
    args = parser.parse_args(argv)
    params = json.loads(args.params)
    bench.FITTERS["flow_params"] = _fitter(params)
    bench.TRACED = (*bench.TRACED, "flow_params")
    settings = bench.Settings()
    for name in args.datasets:
        data = datasets.load(name, max_rows=args.max_rows, seed=settings.seed)
        result = bench.measure("flow_params", data, settings)
        gap = "" if result.gap_per_dim is None else f" gap/dim {result.gap_per_dim:.4f}"
        print(
            f"{name:<17} {args.label:<12} {result.test_log_likelihood:9.3f}{gap}  fit {result.fit_seconds:6.1f}s  "
            f"{result.params}",
            flush=True,
        )
        row = {**asdict(result), "label": args.label, "shape": list(data.X_train.shape), "when": time.strftime("%H:%M")}
        row.pop("trace")
        with open(args.out, "a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
