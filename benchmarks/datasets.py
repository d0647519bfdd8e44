"""Datasets of the density benchmark.

Every dataset is split once into a training and a test part, the same split for
every model. Synthetic sets come with their true log-density in closed form, so
that the benchmark can report the true optimum E[log p(x)] on the test part and
each model's gap to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import logsumexp
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine, make_moons
from sklearn.model_selection import train_test_split

LogDensity = Callable[[np.ndarray], np.ndarray]


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray
    X_test: np.ndarray
    log_density: LogDensity | None = None  # true log p(x) in the units of X, when known
    note: str = ""


@dataclass
class Spec:
    """How to make one dataset: ``make(n_total, rng) -> (X, log_density or None)``."""

    name: str
    make: Callable[[int | None, np.random.RandomState], tuple[np.ndarray, LogDensity | None]]
    n_full: int | None  # rows in full mode (None: all rows of a shipped set)
    note: str
    synthetic: bool


# --------------------------------------------------------------- shipped data


def _digits(n, rng):
    X = load_digits().data
    # Dequantized once with U[0, 1) noise: a continuous density on 64 dimensions.
    return X + np.random.RandomState(0).uniform(size=X.shape), None


def _breast_cancer(n, rng):
    return load_breast_cancer().data, None


def _wine(n, rng):
    return load_wine().data, None


def _diabetes(n, rng):
    # Column 1 (sex) takes two values: a near-discrete column next to continuous ones.
    return load_diabetes().data, None


def _iris(n, rng):
    # Small and clustered: three species, measurements to 0.1 cm.
    return load_iris().data, None


def _moons(n, rng):
    X, _ = make_moons(n, noise=0.05, random_state=0)
    return X, None


# ------------------------------------------------------------- synthetic data


def _random_covariance(d: int, rng: np.random.RandomState) -> np.ndarray:
    """A correlated covariance with condition number around 10-100."""
    A = rng.normal(size=(d, d))
    cov = A @ A.T / d + 0.1 * np.eye(d)
    scale = np.sqrt(np.diag(cov))
    correlation = cov / np.outer(scale, scale)
    std = np.exp(0.5 * rng.normal(size=d))
    return correlation * np.outer(std, std)


def _gaussian(d: int):
    def make(n, rng):
        cov = _random_covariance(d, rng)
        mean = rng.normal(size=d) * 2
        truth = stats.multivariate_normal(mean, cov)
        return truth.rvs(n, random_state=rng).reshape(n, d), truth.logpdf

    return make


def _mixture(d: int, k: int):
    def make(n, rng):
        means = rng.normal(size=(k, d)) * 2.5
        covs = [_random_covariance(d, rng) * 0.3 for _ in range(k)]
        log_w = np.log(rng.dirichlet(np.full(k, 3.0)))
        labels = rng.choice(k, size=n, p=np.exp(log_w))
        X = np.empty((n, d))
        for j in range(k):
            rows = labels == j
            X[rows] = rng.multivariate_normal(means[j], covs[j], size=rows.sum())
        components = [stats.multivariate_normal(means[j], covs[j]) for j in range(k)]

        def log_density(x):
            return logsumexp(np.stack([log_w[j] + components[j].logpdf(x) for j in range(k)]), axis=0)

        return X, log_density

    return make


def _banana(n, rng):
    # x1 ~ N(0, 1), x2 | x1 ~ N(x1^2 - 1, 0.5^2): a curved ridge.
    x1 = rng.normal(size=n)
    x2 = x1**2 - 1 + 0.5 * rng.normal(size=n)

    def log_density(x):
        return stats.norm.logpdf(x[:, 0]) + stats.norm.logpdf(x[:, 1], x[:, 0] ** 2 - 1, 0.5)

    return np.column_stack([x1, x2]), log_density


def _funnel(d: int):
    # Neal's funnel: v ~ N(0, 1), x_i | v ~ N(0, exp(v)) for i = 2..d.
    def make(n, rng):
        v = rng.normal(size=n)
        x = rng.normal(size=(n, d - 1)) * np.exp(v / 2)[:, None]

        def log_density(X):
            v = X[:, 0]
            return stats.norm.logpdf(v) + stats.norm.logpdf(X[:, 1:], 0, np.exp(v / 2)[:, None]).sum(1)

        return np.column_stack([v, x]), log_density

    return make


def _lognormal(d: int):
    # Skewed: x = exp(y) with y ~ N(0, 0.5 * C), C a correlation matrix.
    def make(n, rng):
        cov = 0.5 * _random_covariance(d, rng)
        latent = stats.multivariate_normal(np.zeros(d), cov)
        X = np.exp(latent.rvs(n, random_state=rng).reshape(n, d))

        def log_density(x):
            with np.errstate(divide="ignore", invalid="ignore"):
                logx = np.log(x)
            out = latent.logpdf(logx) - logx.sum(1)
            return np.where(np.all(x > 0, axis=1), out, -np.inf)

        return X, log_density

    return make


def _student_t(d: int, df: float):
    # Heavy-tailed: multivariate Student t, correlated.
    def make(n, rng):
        truth = stats.multivariate_t(np.zeros(d), _random_covariance(d, rng), df=df)
        return truth.rvs(n, random_state=rng).reshape(n, d), truth.logpdf

    return make


def _counts(n, rng):
    # Near-discrete: k ~ Poisson(2) dequantized once (k + U[0, 1)), and two
    # continuous columns that depend on k. p(x) = P(k = floor(x0)) N(x1; k/2, 1) N(x2; x1 - k, 0.5^2).
    k = rng.poisson(2.0, size=n)
    x0 = k + rng.uniform(size=n)
    x1 = k / 2 + rng.normal(size=n)
    x2 = x1 - k + 0.5 * rng.normal(size=n)

    def log_density(x):
        kk = np.floor(x[:, 0])
        return (
            stats.poisson.logpmf(kk, 2.0)
            + stats.norm.logpdf(x[:, 1], kk / 2, 1)
            + stats.norm.logpdf(x[:, 2], x[:, 1] - kk, 0.5)
        )

    return np.column_stack([x0, x1, x2]), log_density


def _faithful_like(n, rng):
    # Like Old Faithful (R's ``faithful``, 272 eruptions): eruption duration (minutes) and
    # waiting time to the next eruption (minutes), two clusters: short eruptions after short
    # waits, long ones after long waits. Each cluster is a correlated Gaussian, the long one
    # skewed towards shorter eruptions (as in the real data). As recorded there, durations are
    # kept to 3 decimals and waiting times rounded to whole minutes: the waiting column is
    # discrete (about 50 values), so the density has no closed form.
    n = 272 if n is None else n
    long = rng.uniform(size=n) < 0.64
    eruption = np.where(long, 4.6 - rng.gamma(3.0, 0.14, size=n), 2.0 + 0.27 * rng.normal(size=n))
    wait_mean = np.where(long, 80.0 + 6.0 * (eruption - 4.2), 54.5 + 6.0 * (eruption - 2.0))
    waiting = wait_mean + np.where(long, 5.6, 5.4) * rng.normal(size=n)
    return np.column_stack([np.round(eruption, 3), np.round(waiting)]), None


# Fractions (per 10,000) of eight fatty acids by origin, like the olive-oil data (Forina et al.):
# palmitic, palmitoleic, stearic, oleic, linoleic, linolenic, arachidic, eicosenoic.
_ORIGINS = np.array(
    [
        [1370, 160, 230, 7040, 1000, 60, 60, 30],  # south, coastal
        [1250, 100, 230, 7350, 880, 55, 70, 30],  # south, inland
        [1110, 100, 230, 7290, 1200, 30, 50, 1],  # sardinia
        [1040, 70, 230, 7880, 690, 25, 50, 2],  # north, lake-side
        [1080, 80, 210, 7640, 900, 20, 60, 2],  # north, hills
    ],
    dtype=float,
)
_ORIGIN_WEIGHTS = np.array([0.35, 0.20, 0.17, 0.12, 0.16])


def _compositional(n, rng):
    # Parts of a whole: each row a Dirichlet draw around its origin's fractions (concentration
    # 800: a few percent relative spread on the large parts), times 10,000, each part rounded to
    # an integer (so rows sum to 10,000 give or take a few units, as in the olive-oil data).
    # The small parts are discrete (eicosenoic takes a handful of values in the northern
    # origins); no closed-form density.
    n = 572 if n is None else n
    origin = rng.choice(len(_ORIGIN_WEIGHTS), size=n, p=_ORIGIN_WEIGHTS)
    alpha = 800.0 * _ORIGINS / _ORIGINS.sum(1, keepdims=True)
    X = np.stack([rng.dirichlet(alpha[k]) for k in origin]) * 10_000
    return np.round(X), None


def _deterministic(n, rng):
    # Near-deterministic relations between columns, values rounded to 2 decimals (like sensor
    # logs): three free columns, four smooth functions of them plus noise at the rounding scale.
    # Rounding makes the density discrete at that scale: no closed form.
    a = rng.normal(size=n)
    b = rng.gamma(2.0, 1.0, size=n)
    c = rng.uniform(-2.0, 2.0, size=n)
    tiny = 0.01
    X = np.column_stack(
        [
            a,
            b,
            c,
            np.sin(2 * a) + 0.5 * b + tiny * rng.normal(size=n),
            a * c + tiny * rng.normal(size=n),
            np.log1p(b) * np.cos(c) + tiny * rng.normal(size=n),
            a + b + c + tiny * rng.normal(size=n),  # a linear relation: the set lies near a 6-D surface
        ]
    )
    return np.round(X, 2), None


SPECS: list[Spec] = [
    Spec("digits", _digits, None, "load_digits + U[0,1) noise, 1797 x 64", False),
    Spec("breast_cancer", _breast_cancer, None, "load_breast_cancer, 569 x 30, skewed columns", False),
    Spec("moons", _moons, 10_000, "make_moons(10000, noise=0.05)", False),
    Spec("wine", _wine, None, "load_wine, 178 x 13, tiny", False),
    Spec("diabetes", _diabetes, None, "load_diabetes, 442 x 10, one two-valued column", False),
    Spec("gaussian_16d", _gaussian(16), 25_000, "correlated Gaussian", True),
    Spec("mixture_6d", _mixture(6, 5), 25_000, "5-component Gaussian mixture", True),
    Spec("banana_2d", _banana, 25_000, "x2 | x1 ~ N(x1^2 - 1, 0.25)", True),
    Spec("funnel_4d", _funnel(4), 25_000, "Neal's funnel, v ~ N(0, 1)", True),
    Spec("lognormal_8d", _lognormal(8), 25_000, "skewed: exp of a correlated Gaussian", True),
    Spec("student_t_5d", _student_t(5, 4.0), 25_000, "heavy-tailed: multivariate t, df=4", True),
    Spec("counts_3d", _counts, 25_000, "near-discrete: dequantized Poisson counts + dependent columns", True),
    Spec("faithful_like", _faithful_like, 272, "Old-Faithful-like: 2 clusters, waiting in whole minutes", True),
    Spec("compositional_8d", _compositional, 572, "olive-oil-like: 8 parts of 10,000, 5 origins, integers", True),
    Spec("deterministic_7d", _deterministic, 10_000, "4 of 7 columns smooth functions of 3 + noise, rounded", True),
    # New sets go last: a set's random draw is seeded by its position in this list.
    Spec("iris", _iris, None, "load_iris, 150 x 4, three clusters, 0.1 cm steps", False),
]
NAMES = [spec.name for spec in SPECS]


def lattice_step(column: np.ndarray) -> float | None:
    """The step ``h`` of the regular grid ``min + k h`` that holds every value of ``column``, or None.

    ``h`` is the smallest gap between distinct values; integers, counts, a two-valued
    column and measurements rounded to a fixed number of decimals all lie on such a grid.
    """
    values = np.unique(column)
    if values.size < 2:
        return None
    step = float(np.diff(values).min())
    k = (values - values[0]) / step
    return step if np.abs(k - np.round(k)).max() < 1e-3 else None


def dequantize_lattice_columns(X: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Every column on a grid of step ``h`` plus U[-h/2, h/2) noise, drawn once, the same for every model.

    A continuous density on discrete values is unbounded: a model that puts narrow
    components on the values (a GaussianMixture on a two-valued column) would win by
    spiking, not by modelling. With the noise every model scores a continuous density,
    and each value's probability is spread evenly over its cell.
    """
    X = np.array(X, dtype=float)
    for j in range(X.shape[1]):
        step = lattice_step(X[:, j])
        if step is not None:
            X[:, j] += step * (rng.uniform(size=X.shape[0]) - 0.5)
    return X


def load(name: str, max_rows: int | None = None, seed: int = 0) -> Dataset:
    """Make dataset ``name``; 80/20 split with ``random_state=0``.

    Synthetic sets have ``n_full`` rows (25,000: 20,000 for training) unless
    ``max_rows`` caps them; shipped sets are subsampled only when ``max_rows`` is given.
    """
    spec = next((s for s in SPECS if s.name == name), None)
    if spec is None:
        raise ValueError(f"unknown dataset {name!r}; choose from {NAMES}")
    n = spec.n_full if max_rows is None or spec.n_full is None else min(spec.n_full, max_rows)
    rng = np.random.RandomState(seed + 1000 * NAMES.index(name))
    X, log_density = spec.make(n, rng)
    if log_density is None:
        X = dequantize_lattice_columns(X, np.random.RandomState(seed))
    if max_rows is not None and X.shape[0] > max_rows:
        X = X[np.random.RandomState(seed).choice(X.shape[0], max_rows, replace=False)]
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    return Dataset(name, X_train, X_test, log_density, spec.note)
