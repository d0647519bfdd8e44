"""Copies of training rows: merged into one row of their summed weight where they cannot be the data's nature."""

import warnings

import numpy as np
import pytest

from skflow import FlowRegressor, _copies
from skflow._copies import COPY_SHARE, merged_copies

from .conftest import SMALL_REGRESSOR

SETTINGS = {**SMALL_REGRESSOR, "n_flows": 2, "max_epochs": 4}


def continuous_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, X[:, 0] + 0.5 * rng.normal(size=n)


def test_a_fit_on_copies_is_the_fit_on_the_distinct_rows_weighted_by_their_counts():
    X, y = continuous_rows(80)
    counts = np.random.default_rng(1).integers(1, 4, size=80)  # about half the rows are copies
    repeated = np.random.default_rng(2).permutation(np.repeat(np.arange(80), counts))
    with pytest.warns(UserWarning, match=r"of \d+ training rows are copies"):
        on_copies = FlowRegressor(**SETTINGS).fit(X[repeated], y[repeated])
    first_seen = repeated[np.sort(np.unique(repeated, return_index=True)[1])]
    weighted = FlowRegressor(**SETTINGS).fit(X[first_seen], y[first_seen], sample_weight=counts[first_seen])
    X_new, y_new = continuous_rows(50, seed=3)
    np.testing.assert_array_equal(on_copies.score_samples(X_new, y_new), weighted.score_samples(X_new, y_new))
    np.testing.assert_array_equal(on_copies.predict_interval(X_new), weighted.predict_interval(X_new))


def test_merged_rows_keep_every_distinct_row_once_with_the_summed_weight_in_first_seen_order(monkeypatch):
    monkeypatch.setattr(_copies, "CONTINUOUS_VALUES", 3)  # four distinct rows here, three distinct x
    X = np.array([[0.5], [0.1], [0.5], [0.7], [0.1], [0.5]])
    y = np.array([[1.0], [2.0], [1.0], [3.0], [2.0], [1.5]])  # the last row differs from the first in y only
    weights = np.array([1.0, 2.0, 0.5, 1.0, 1.0, 1.0])
    with pytest.warns(UserWarning, match="2 of 6 training rows are copies"):
        X_merged, y_merged, merged_weights = merged_copies(X, y, weights, "FlowRegressor")
    np.testing.assert_array_equal(X_merged[:, 0], [0.5, 0.1, 0.7, 0.5])
    np.testing.assert_array_equal(y_merged[:, 0], [1.0, 2.0, 3.0, 1.5])
    np.testing.assert_array_equal(merged_weights, np.array([1.5, 3.0, 1.0, 1.0]) / 3.0)


def test_discrete_data_and_a_few_copies_are_left_as_given():
    rng = np.random.default_rng(0)
    # Categories and counts repeat rows because their values do: 300 rows, 3 x 4 x 5 possible rows.
    X = rng.integers(0, 3, size=(300, 2)).astype(float)
    y = (X[:, 0] + rng.poisson(1.0, size=300)).astype(float)[:, None]
    weights = np.ones(300)
    a_few = int(COPY_SHARE * 100) - 1
    X_few, y_few = continuous_rows(100)
    X_few[-a_few:], y_few[-a_few:] = X_few[:a_few], y_few[:a_few]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        constant = np.full((100, 1), 7.25)  # one distinct row: nothing says its copies are not its nature
        # One column of counts has as many distinct values as distinct rows (about 35 here), all integers.
        counts = rng.poisson(30.0, size=(2000, 1)).astype(float)
        for features, targets in (
            (X, y),
            (X_few, y_few[:, None]),
            (constant, np.empty((100, 0))),
            (counts, np.empty((2000, 0))),
        ):
            merged = merged_copies(features, targets, np.ones(len(targets)), "FlowRegressor")
            assert all(a is b for a, b in zip(merged, (features, targets), strict=False))
    assert merged_copies(X, y, weights, "FlowRegressor")[2] is weights


def test_the_copies_experiment_runs_both_ways_and_restores_the_rule(tmp_path):
    from benchmarks.experiments import copies as experiment

    out = tmp_path / "copies.jsonl"
    experiment.main(["--quick", "--out", str(out)])
    records = [line for line in out.read_text().splitlines() if line]
    assert len(records) == 2 and '"merged": true' in records[1] and '"merged": false' in records[0]
    assert _copies.COPY_SHARE == COPY_SHARE


def test_a_density_fit_on_copies_is_the_fit_on_the_distinct_rows_weighted_by_their_counts():
    from skflow import FlowDensity

    from .conftest import FAST_FLOW

    X = np.random.default_rng(0).normal(size=(120, 2))
    counts = np.random.default_rng(1).integers(1, 4, size=120)
    repeated = np.random.default_rng(2).permutation(np.repeat(np.arange(120), counts))
    with pytest.warns(UserWarning, match=r"of \d+ training rows are copies of other rows \(equal in every column\)"):
        on_copies = FlowDensity(**FAST_FLOW).fit(X[repeated])
    first_seen = repeated[np.sort(np.unique(repeated, return_index=True)[1])]
    weighted = FlowDensity(**FAST_FLOW).fit(X[first_seen], sample_weight=counts[first_seen])
    X_new = np.random.default_rng(3).normal(size=(50, 2))
    np.testing.assert_array_equal(on_copies.score_samples(X_new), weighted.score_samples(X_new))
