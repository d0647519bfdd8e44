"""Gross target errors: the ridge regression and the boosted trees fitted robustly, or by least squares as before.

Where a regressor's target is standardized robustly (``robust_scaled``,
``GROSS_SPREAD_RATIO`` in skflow._preprocessing), the ridge regression that
each flow is compared with is Huber's, its noise the trimmed mean square of
its leave-one-out residuals (skflow._linear_start), and the boosted trees fit
the absolute error (skflow._boosted_feature). Each set is fitted with the
default ``FlowRegressor(random_state=0)`` from the same seed four ways
(``VARIANTS``): as before (least squares for both), with the robust ridge
alone, with the robust trees alone, and with both (as shipped); and scored on
its 1,000 test rows: test log-likelihood, 90% coverage and CRPS
(``tail_splice.scores``), the CRPS's share from the central levels
(``central_crps``), and how many flows kept a ridge regression and the
trees' feature. The sets: ``robust_target.gross_error`` (``x_0`` plus
noise of 0.5 on 100 rows, the first target an error) of -1e6 and 100, draws
0 and 1, and ``tail_splice``'s ``outlier_100`` (draws 0 to 2; ``--magnitudes``, ``--draws`` and
``--outlier-draws`` choose others); with ``--steps-draws``, also a stepped target that trees find and a ridge
regression does not, with an error of -1e6 (``steps_gross_error``)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.gross_ridge_trees

``--quick`` fits one set two ways with two flows of few epochs (a smoke
test). ``--clean`` instead fits scikit-learn's diabetes data (300 training
rows; no target there is standardized robustly) and records a hash of its
predictions: run it with the code before the change on the path too, and the
hashes must be equal.
"""

from __future__ import annotations

import argparse
import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes

import skflow._ensemble as ensemble
import skflow._fitting as fitting
from skflow import FlowRegressor

from .robust_target import TEST_ROWS, gross_error
from .split_runs import append_record
from .tail_splice import LEVELS, synthetic_splits
from .tail_splice import scores as test_scores

OUT = Path("benchmarks/results/experiment_gross_ridge_trees_2026-12-07.jsonl")
# Variant: (ridge by least squares, trees by least squares).
VARIANTS = {
    "before": (True, True),
    "robust_ridge": (False, True),
    "robust_trees": (True, False),
    "after": (False, False),
}
QUICK = {"n_flows": 2, "max_epochs": 5}
STEPS_ROWS = 150
# central_crps leaves out the levels below this share and above one less it: the outer two of 199 on each side.
CENTRAL = 0.01


@contextmanager
def least_squares(ridge: bool, trees: bool) -> Iterator[None]:
    """Inside, the ridge regression and/or the boosted trees are fitted by least squares whatever the target, as
    before the change: their fits are called without the ``robust`` argument (the last, positional)."""
    saved = fitting.fit_ridge_gaussian, ensemble.fit_tree_feature
    if ridge:
        fitting.fit_ridge_gaussian = lambda *args: saved[0](*args[:7])
    if trees:
        ensemble.fit_tree_feature = lambda *args: saved[1](*args[:5])
    try:
        yield
    finally:
        fitting.fit_ridge_gaussian, ensemble.fit_tree_feature = saved


def steps_gross_error(draw: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A target that steps with one feature and with an interaction of two among six (trees find it at once,
    a ridge regression does not), noise of 0.3, on ``STEPS_ROWS`` rows; the first target an error of -1e6."""
    rng = np.random.default_rng(draw)
    X = rng.uniform(-1, 1, (STEPS_ROWS + TEST_ROWS, 6))
    y = 3.0 * (X[:, 0] > 0) + 2.0 * ((X[:, 1] > 0.5) & (X[:, 2] < 0)) + 0.3 * rng.normal(size=len(X))
    y[0] = -1e6
    return X, y, STEPS_ROWS


def gross_sets(
    magnitudes: list[float], draws: list[int], outlier_draws: int, steps_draws: int
) -> Iterator[tuple[str, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(name, draw, X_train, y_train, X_test, y_test)`` of each set and draw."""
    for name, make, numbers in [
        *((f"gross_error_{m:g}", lambda d, m=m: gross_error(m, d), draws) for m in magnitudes),
        ("steps_gross_error_-1e+06", steps_gross_error, range(steps_draws)),
    ]:
        for draw in numbers:
            X, y, n = make(draw)
            yield name, draw, X[:n], y[:n], X[n:], y[n:]
    yield from (split for split in synthetic_splits(outlier_draws) if split[0] == "outlier_100")


def fitted(X: np.ndarray, y: np.ndarray, parameters: dict) -> FlowRegressor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FlowRegressor(random_state=0, **parameters).fit(X, y)


def compare(X_train, y_train, X_test, y_test, variants: list[str], parameters: dict) -> dict:
    """Each variant's scores, and how many flows kept a ridge regression and the trees' feature."""
    record = {}
    for variant in variants:
        with least_squares(*VARIANTS[variant]):
            reg = fitted(X_train, y_train, parameters)
        members = reg._members()
        scores, quantiles = test_scores(reg, X_test, y_test)
        record[variant] = [round(value, 4) for value in (*scores, central_crps(quantiles, y_test))]
        record[f"{variant}_kept"] = {
            "ridges": sum(bool(m.flow_.config["linear_shift"]) for m in members),
            "boosted": sum(bool(m.boosted_feature_) for m in members),
        }
    return record


def central_crps(quantiles: np.ndarray, y: np.ndarray) -> float:
    """The CRPS's share from the levels between 1% and 99% (``CENTRAL``), in its units (over all 199 levels).

    Where the flows give the error's own training row some mass (one row in
    100 is 1%), their outermost quantiles lie near it, millions away, and
    rule the CRPS whatever the fit of the other rows.
    """
    central = (LEVELS > CENTRAL) & (LEVELS < 1 - CENTRAL)
    excess = y[:, None] - quantiles[:, central]
    levels = LEVELS[central]
    return float(2 * np.where(excess >= 0, levels * excess, (levels - 1) * excess).mean() * central.mean())


def clean_hash(parameters: dict) -> dict:
    """The diabetes fit's predictions (mean, 199 quantiles, test log-likelihood) hashed."""
    X, y = load_diabetes(return_X_y=True)
    reg = fitted(X[:300], y[:300], parameters)
    predictions = [reg.predict(X[300:]), reg.predict_quantiles(X[300:], LEVELS), reg.score_samples(X[300:], y[300:])]
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in predictions)).hexdigest()
    return {"set": "diabetes_300", "sha256": digest, "test_ll": float(predictions[2].mean())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one set, before and after, two flows of 5 epochs")
    parser.add_argument("--clean", action="store_true", help="the diabetes fit's prediction hash instead")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--magnitudes", type=float, nargs="*", default=[-1e6, 100.0], help="gross_error's")
    parser.add_argument("--draws", type=int, nargs="*", default=[0, 1], help="gross_error's draws")
    parser.add_argument("--outlier-draws", type=int, default=3, help="outlier_100's draws, from 0")
    parser.add_argument("--steps-draws", type=int, default=0, help="steps_gross_error's draws, from 0")
    parser.add_argument("--label", default="", help="recorded with --clean (which code ran)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    parameters = QUICK if args.quick else {}
    model = f"FlowRegressor(random_state=0, **{parameters})"
    if args.clean:
        append_record(args.out, {**clean_hash(parameters), "label": args.label, "model": model})
        return
    variants = ["before", "after"] if args.quick else args.variants
    if args.quick:
        sets = gross_sets([-1e6], [1], 0, 0)
    else:
        sets = gross_sets(args.magnitudes, args.draws, args.outlier_draws, args.steps_draws)
    for name, draw, *split in sets:
        record = {"set": name, "draw": draw, "rows": len(split[1]), "model": model}
        record.update(compare(*split, variants, parameters))
        append_record(args.out, {**record, "metrics": ["LL", "cov90", "CRPS", "CRPS_central"]})


if __name__ == "__main__":
    main()
