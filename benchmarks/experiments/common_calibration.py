"""Can rows that no flow saw at all, not even to stop its training, calibrate the ensemble's latent scale?

The ensemble's intervals over-cover on the small UCI sets (docs/
regression_design_notes.md, "Calibration"). Two earlier attempts to fit a
common factor ``c`` on every flow's latent scale failed for reasons this
design avoids: rows held out of every flow *as their validation rows* made
the flows agree and chose their epochs (so ``c`` came out narrow), and rows
held out of two flows scored a two-flow mixture, which asks for another
factor than five flows do.

Here a seeded 10% of the training rows (the calibration rows) is set aside
first; the default ensemble is fitted on the rest, each flow still holding out
its own validation rows for early stopping, so the flows differ as they do
by default. ``c`` maximizes the five-flow mixture's log-likelihood on the
calibration rows, which no flow trained or stopped on. Two uses of it are
scored on the test rows:

- ``held_c``: the ensemble fitted without the calibration rows, scales times ``c``;
- ``refit_c``: the default ensemble fitted on every row, scales times the same ``c``
  (twice the training, no row lost).

with ``default`` (every row, ``c = 1``), ``held_1`` (without the
calibration rows, ``c = 1``: what losing them costs) and the best factor in
hindsight on the test rows (a scan, not a method). One JSON line per split::

    PYTHONPATH=. python -m benchmarks.experiments.common_calibration --sets bostonHousing yacht --splits 0 1 2 \\
        --out results.jsonl
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.experiments.ensemble_disagreement import main
from benchmarks.experiments.pair_validation import SCAN, _best, fit, test_scores

CALIBRATION_FRACTION = 0.1
FACTORS = np.round(np.arange(0.5, 1.501, 0.01), 3)


def calibration_factor(model, X: np.ndarray, y: np.ndarray) -> float:
    """The factor on every flow's scale that maximizes the mixture's log-likelihood of the rows."""
    log_likelihood, _ = test_scores(model, X, y, FACTORS)
    return float(FACTORS[np.argmax(log_likelihood)])


def measure(dataset: str, split, seed: int) -> dict:
    started = time.perf_counter()
    n = len(split.y_train)
    order = np.random.default_rng(seed + 1000 * split.index).permutation(n)
    calibration, rest = order[: int(round(CALIBRATION_FRACTION * n))], order[int(round(CALIBRATION_FRACTION * n)) :]
    default = fit(split.X_train, split.y_train, seed)
    held = fit(split.X_train[rest], split.y_train[rest], seed)
    c = calibration_factor(held, split.X_train[calibration], split.y_train[calibration])
    record = {"dataset": dataset, "split": split.index, "c": c, "calibration_rows": len(calibration)}
    ll, cov = test_scores(default, split.X_test, split.y_test, np.r_[1.0, c, SCAN])
    record.update(default=(ll[0], cov[0]), refit_c=(ll[1], cov[1]), default_best=_best(ll[2:], cov[2:]))
    ll, cov = test_scores(held, split.X_test, split.y_test, np.r_[1.0, c])
    record.update(held_1=(ll[0], cov[0]), held_c=(ll[1], cov[1]), seconds=time.perf_counter() - started)
    return record


if __name__ == "__main__":
    main(measure=measure, description=__doc__)
