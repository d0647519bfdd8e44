"""The regression benchmark's flow rows without the heavy-tailed features' log: the same code's baseline.

``x_log_shift_`` (``skflow._regression_data.log_feature_shifts``) gives a
heavy-tailed feature a shifted log in the flows' context. This runs
:mod:`benchmarks.regression` with every feature as given, for a comparison
split by split with the default's rows (docs/regression_design_notes.md,
"Heavy-tailed features")::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.feature_log --datasets concrete \\
        --methods flow --out without_log.json
    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.regression --datasets concrete --methods flow \\
        --out with_log.json
"""

from __future__ import annotations

import numpy as np

import skflow._ensemble as ensemble

from ..regression import main as regression_main


def every_feature_as_given(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``log_feature_shifts`` that logs nothing."""
    return np.full(X.shape[1], np.nan)


def main(argv: list[str] | None = None) -> dict:
    ensemble.log_feature_shifts = every_feature_as_given
    return regression_main(argv)


if __name__ == "__main__":
    main()
