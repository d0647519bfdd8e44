"""A discrete column with declared bounds is dequantized where its cells lie within them, in the data's units."""

import warnings

import numpy as np
import pytest
import torch

from skflow import FlowDensity, FlowRegressor
from skflow._core import preprocessing_layers
from skflow._preprocessing import dequantized_columns, fit_preprocessing, make_augment

from .conftest import SMALL_REGRESSOR

INF = np.inf


def counts(n: int, seed: int, smallest: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).poisson(3.0, (n, 1)).astype(float) + smallest


def test_only_cells_within_the_bounds_are_dequantized():
    ones = counts(500, 0)  # 1, 2, ...: the 1's cell (0.5, 1.5) lies above 0
    noised = [dequantized_columns(ones, np.array([low]), np.array([INF]), "auto")[0][0] for low in (0.0, 0.5, 0.6)]
    assert noised == [True, True, False]  # a cell touching its bound is within it
    zeros = counts(500, 0, smallest=0)
    assert not dequantized_columns(zeros, np.array([0.0]), np.array([INF]), "auto")[0][0]
    assert dequantized_columns(zeros, np.array([-0.5]), np.array([INF]), "auto")[0][0]
    assert not dequantized_columns(ones, np.array([-INF]), np.array([ones.max()]), "auto")[0][0]
    assert dequantized_columns(ones, np.array([-INF]), np.array([ones.max() + 0.5]), "auto")[0][0]
    # dequantize=True gives every column cells of width 1: a proportion's would cross (0, 1).
    proportions = np.random.default_rng(1).uniform(0.1, 0.9, (500, 1))
    assert not dequantized_columns(proportions, np.array([0.0]), np.array([1.0]), True)[0][0]


@pytest.mark.parametrize(
    ("low", "high", "origin"), [(0.0, INF, 0), (-0.5, INF, 0), (0.0, 40.0, 0), (-INF, 40.0, 0), (0.0, INF, 10**6)]
)
def test_the_noise_is_uniform_over_each_cell_of_the_data(low, high, origin):
    """Of the bounded count column alone: a continuous column beside it (near 1e7, and up against a logit's
    upper bound) keeps its rows, and counts near 1e6 get cells of width 1, not float32's 0.06."""
    n = 4000
    rng = np.random.default_rng(5)
    X = np.column_stack(
        [
            counts(n, 2, smallest=0 if low == -0.5 else 1)[:, 0] + origin,
            1e7 + rng.normal(size=n),
            1 - 10 ** rng.uniform(-9, -1, n),
        ]
    )
    lows, highs = np.array([low, -INF, 0.0]), np.array([high, INF, 1.0])
    preprocessing = fit_preprocessing(X, np.ones(n), lows, highs, standardize=True, dequantize="auto", tail_bound=3.0)
    assert preprocessing.dequantized.tolist() == [True, False, False]
    layers = preprocessing_layers(3, **preprocessing.flow_arguments())
    rows = torch.as_tensor(X)
    for layer in layers:
        rows = layer(rows)[0]
    augment = make_augment(preprocessing, torch.device("cpu"))
    noisy = augment(rows.float(), torch.Generator().manual_seed(0))
    assert torch.isfinite(noisy).all()
    torch.testing.assert_close(noisy[:, 1:], rows.float()[:, 1:], rtol=0, atol=0)
    data = noisy.double()
    for layer in reversed(layers):
        data = layer.inverse(data)[0]
    offset = data.numpy()[:, 0] - X[:, 0]
    assert offset.min() >= -0.5 - 1e-3 and offset.max() < 0.5 + 1e-3
    assert abs(offset.mean()) < 0.015 and offset.var() == pytest.approx(1 / 12, abs=0.005)


def test_declared_bounds_on_counts_keep_a_probability_per_count():
    """Counts from 1 with ``bounds=(0, None)`` were modelled as a continuous density, which can pile its mass
    onto the integers; dequantized, the density at each count estimates its probability."""
    X = counts(1500, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowDensity(n_transforms=2, hidden_units=(16,), max_epochs=20, bounds=(0, None), random_state=0)
        model.fit(X)
    assert model.dequantized_.tolist() == [True]
    grid = np.arange(1.0, 80.0)[:, None]
    total = np.exp(model.score_samples(grid)).sum()
    assert total == pytest.approx(1.0, abs=0.03)
    assert model.score_samples(X).mean() < 0  # log-probabilities of counts


def test_a_regressor_with_declared_bounds_dequantizes_its_count_target():
    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, (300, 2))
    y = rng.poisson(np.exp(1 + X[:, 0])).astype(float) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(**SMALL_REGRESSOR, n_flows=1, max_epochs=5, bounds=(0, None)).fit(X, y)
    assert reg.dequantized_.tolist() == [True]
    grid = np.arange(1.0, 120.0)
    for row in X[:3]:  # the density at each count estimates its probability: they sum to about 1
        total = np.exp(reg.score_samples(np.repeat(row[None], grid.size, axis=0), grid)).sum()
        assert total == pytest.approx(1.0, abs=0.05)
