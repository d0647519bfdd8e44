"""FlowRegressor on 25 to 200 training rows: a kept ridge regression refitted on every row, or not.

``better_of_flow_and_ridge`` keeps a flow's ridge regression where it
scores better on the validation rows (and, when this ran, also where fewer
than ``MIN_VALIDATION_ROWS`` validated). It used to keep the ridge fitted on the
training rows alone, with its latent scale then fitted on the validation
rows; it now refits the kept ridge on every row, with its leave-one-out
noise as the scale. ``every_row`` runs the library as it is;
``training_rows`` patches the old behaviour back in (the same comparison,
then the ridge of the training rows and the calibrated scale). The seven
small sets and splits of :mod:`benchmarks.experiments.small_regression`.
The results file ran on a262586; since then a fit on which fewer than 10
rows would validate trains no flow (the ridge of every row is the model
either way), so on 25 rows both columns now come out as ``every_row``::

    PYTHONPATH=. python -m benchmarks.experiments.refit_ridge --sizes 25 40 60 100 200 --out results.jsonl
"""

from __future__ import annotations

import contextlib

from skflow import _fitting
from skflow._linear_start import fit_ridge_gaussian

from .small_regression import measure, run

every_row_choice = _fitting.better_of_flow_and_ridge


def training_rows_choice(estimator, flow, result, preprocessing, train_x, train_w, context, seed):
    """The choice as it was: a kept ridge stays fitted on the training rows and keeps its validation rows."""
    held_out = result.validation_index
    kept = every_row_choice(estimator, flow, result, preprocessing, train_x, train_w, context, seed)
    if held_out is None or not kept.config["linear_shift"]:
        return kept
    result.validation_index = held_out
    augment = _fitting.make_augment(preprocessing, estimator.device_)
    shift = fit_ridge_gaussian(train_x, context, train_w, held_out, seed, augment)
    return _fitting.new_flow(estimator, train_x.shape[1], preprocessing, seed, context.shape[1], linear_shift=shift)


@contextlib.contextmanager
def ridge_choice(choice):
    _fitting.better_of_flow_and_ridge = choice
    try:
        yield
    finally:
        _fitting.better_of_flow_and_ridge = every_row_choice


def under(choice):
    """``measure`` (default ``FlowRegressor``) with ``choice`` as the library's ridge choice."""

    def measure_split(X_train, y_train, X_test, y_test) -> list:
        with ridge_choice(choice):
            return measure(X_train, y_train, X_test, y_test, validation_fraction=0.1)

    return measure_split


def main(argv: list[str] | None = None) -> None:
    columns = [("training_rows", under(training_rows_choice)), ("every_row", under(every_row_choice))]
    run(argv, __doc__, [25, 40, 60, 100, 200], lambda n: columns)


if __name__ == "__main__":
    main()
