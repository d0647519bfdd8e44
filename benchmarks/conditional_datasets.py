"""Synthetic conditional densities with ``p(y | x)`` known in closed form.

Each generator ``make(n, rng)`` returns ``(X, y, log_density)`` where
``log_density(X, y)`` is the true ``log p(y | x)`` per row, in the units of ``y``.
The regression benchmark (``--synthetic``) reports each contender's gap to the
true conditional log-likelihood on the test rows, per target dimension.

- ``bimodal_moving``: two modes whose centres move with ``x`` in opposite
  directions (they cross near ``x = 0.6``); one nuisance feature.
- ``hetero_skewed``: right-skewed gamma noise whose scale grows with ``|x_0|``
  around a nonlinear mean; two features.
- ``curved_2d``: a 2-D target, ``y_1 | x`` Gaussian around ``x``, ``y_2 | y_1, x``
  Gaussian around ``y_1^2 / 2 + sin(x)``: a curved dependence between the outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import logsumexp

ConditionalLogDensity = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class ConditionalSpec:
    """How to draw one synthetic set: ``make(n, rng) -> (X, y, log_density)``."""

    name: str
    make: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray, ConditionalLogDensity]]
    note: str


def _bimodal_params(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    x = X[:, 0]
    means = np.column_stack([1.5 + np.sin(2 * x), -1.5 + 2.5 * x])
    scales = np.column_stack([0.25 + 0.1 * np.abs(x), np.full_like(x, 0.3)])
    return means, scales, 0.5


def bimodal_moving(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, ConditionalLogDensity]:
    """``y | x ~ 0.5 N(1.5 + sin 2x, (0.25 + 0.1|x|)^2) + 0.5 N(-1.5 + 2.5x, 0.3^2)``, ``x ~ U(-2, 2)``."""
    X = rng.uniform(-2, 2, size=(n, 2))
    means, scales, weight = _bimodal_params(X)
    component = rng.random(n) < weight
    pick = np.where(component, 0, 1)
    y = rng.normal(means[np.arange(n), pick], scales[np.arange(n), pick])

    def log_density(X: np.ndarray, y: np.ndarray) -> np.ndarray:
        means, scales, weight = _bimodal_params(X)
        logs = stats.norm.logpdf(y[:, None], means, scales) + np.log([weight, 1 - weight])
        return logsumexp(logs, axis=1)

    return X, y, log_density


def _hetero_params(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    location = np.sin(X[:, 0]) * 2 + 0.5 * X[:, 1]
    scale = 0.2 + 0.6 * np.abs(X[:, 0])
    return location, scale


HETERO_SHAPE = 2.0


def hetero_skewed(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, ConditionalLogDensity]:
    """``y = f(x) + s(x) (G - 2)`` with ``G ~ Gamma(2, 1)``: right-skewed, scale ``0.2 + 0.6 |x_0|``."""
    X = rng.uniform(-2, 2, size=(n, 2))
    location, scale = _hetero_params(X)
    y = location + scale * (rng.gamma(HETERO_SHAPE, 1.0, size=n) - HETERO_SHAPE)

    def log_density(X: np.ndarray, y: np.ndarray) -> np.ndarray:
        location, scale = _hetero_params(X)
        return stats.gamma.logpdf((y - location) / scale + HETERO_SHAPE, HETERO_SHAPE) - np.log(scale)

    return X, y, log_density


def curved_2d(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, ConditionalLogDensity]:
    """``y_1 | x ~ N(x, 0.5^2)``, ``y_2 | y_1, x ~ N(y_1^2 / 2 + sin x, 0.3^2)``, ``x ~ U(-2, 2)``."""
    X = rng.uniform(-2, 2, size=(n, 1))
    y1 = rng.normal(X[:, 0], 0.5)
    y2 = rng.normal(0.5 * y1**2 + np.sin(X[:, 0]), 0.3)

    def log_density(X: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = X[:, 0]
        return stats.norm.logpdf(y[:, 0], x, 0.5) + stats.norm.logpdf(y[:, 1], 0.5 * y[:, 0] ** 2 + np.sin(x), 0.3)

    return X, np.column_stack([y1, y2]), log_density


SPECS: dict[str, ConditionalSpec] = {
    s.name: s
    for s in (
        ConditionalSpec("bimodal_moving", bimodal_moving, "1-D y, two modes moving with x"),
        ConditionalSpec("hetero_skewed", hetero_skewed, "1-D y, skewed noise, scale grows with |x0|"),
        ConditionalSpec("curved_2d", curved_2d, "2-D y, y2 curved in y1"),
    )
}
NAMES = list(SPECS)


def make(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, ConditionalLogDensity]:
    """Draw ``n`` rows of synthetic set ``name`` with generator seed ``seed``."""
    return SPECS[name].make(n, np.random.default_rng(seed))
