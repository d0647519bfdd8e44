"""Expectation-maximization for a Gaussian mixture: scikit-learn's algorithm, without its per-call overhead.

The mixture base is chosen among dozens of candidates, each fitted on three
folds: a few hundred fits of EM on small arrays, where the input checks and
array-API dispatch of ``sklearn.mixture.GaussianMixture`` took most of the time
(5.8 s to choose on 1,000 rows of ``make_moons``). This module runs the same
steps, vectorized over the components and over several floors ``reg_covar``
fitted from one start at once: the same k-means start (scikit-learn's
``KMeans`` with the same seed), the same M-step with ``reg_covar`` on the
covariance diagonals (full covariances from the weighted second moments when
there are many components for the dimension, where GaussianMixture centres
the rows per component first), the same stopping rule (the mean
log-likelihood changes by less than ``tol``, at most ``max_iter``
iterations). It agrees with ``GaussianMixture`` to rounding (tested), and
fits the candidates and the chosen mixture. On 8,000 rows of 7 columns the
start's selections took 56 s of a fit's first 62; one product for the
E-step's components brought that to 39 s of 44, the second moments and one
``exp`` per E-step to 20 s of 25.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

# GaussianMixture's defaults.
TOL = 1e-3
MAX_ITER = 100
LOG_2PI = np.log(2 * np.pi)
# Elements of the largest temporary array (32 MB of float64).
CHUNK_ELEMENTS = 2**22
# Rows within this distance of the origin may get their covariances as E[x x^T] - mu mu^T, which loses about
# eps * |x|^2 (2e-10 here, against floors of at least 1e-6). Standardized rows are always within it (a
# standardized column of n rows stays within sqrt(n)); rows far from the origin (standardize=False on data
# around 1e4) are centred per component, as GaussianMixture does.
SECOND_MOMENTS_MAX_ABS = 1e3


@dataclass
class GaussianMixtures:
    """R mixtures of K components in d dimensions: weights (R, K), means (R, K, d), precision Cholesky
    factors (R, K, d, d), or (R, K, d) for diagonal covariances."""

    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str

    def component_log_densities(self, x: np.ndarray) -> np.ndarray:
        """log N(x_n; mu_k, Sigma_k) + log pi_k, shape (R, n, K)."""
        if self.covariance_type == "full":
            # ||L^T (x - mu)||^2 with L the precision's Cholesky factor, for every mixture and component: the
            # chunk's factors side by side make one product with x (not one small product per component),
            # and einsum sums the squares without a temporary (3x faster at 6,400 rows, 7 columns, K = 32).
            n_mixtures, n_rows, n_features = self.weights.shape[0], x.shape[0], x.shape[1]
            squared = np.empty((n_mixtures, n_rows, self.weights.shape[1]))
            for k in _component_chunks(*self.means.shape, n_rows):
                factor = self.precisions_cholesky[:, k]  # (R, chunk, d, d)
                y = x @ np.moveaxis(factor, 2, 0).reshape(n_features, -1)
                y -= np.matmul(self.means[:, k, None, :], factor).reshape(-1)
                y = y.reshape(n_rows, n_mixtures, -1, n_features)
                squared[:, :, k] = np.moveaxis(np.einsum("nrcd,nrcd->nrc", y, y), 0, 1)
            log_det = np.log(np.diagonal(self.precisions_cholesky, axis1=2, axis2=3)).sum(axis=2)
        else:
            precisions = self.precisions_cholesky**2
            squared = (
                np.sum(self.means**2 * precisions, axis=2)[:, None, :]
                - 2.0 * np.matmul(x, np.swapaxes(self.means * precisions, 1, 2))
                + np.matmul(x**2, np.swapaxes(precisions, 1, 2))
            )
            log_det = np.log(self.precisions_cholesky).sum(axis=2)
        return -0.5 * (x.shape[1] * LOG_2PI + squared) + (log_det + np.log(self.weights))[:, None, :]

    def log_likelihoods(self, x: np.ndarray) -> np.ndarray:
        """The log-likelihood of each row under each mixture, as ``GaussianMixture.score_samples``: (R, n)."""
        return logsumexp(self.component_log_densities(x), axis=2)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean log-likelihood per row of each mixture, as ``GaussianMixture.score``: shape (R,)."""
        return np.mean(self.log_likelihoods(x), axis=1)

    def take(self, index: np.ndarray) -> GaussianMixtures:
        """The mixtures at ``index``."""
        return GaussianMixtures(
            self.weights[index], self.means[index], self.precisions_cholesky[index], self.covariance_type
        )


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(a))) along ``axis`` (scipy's has a few hundred microseconds of overhead a call)."""
    peak, shifted = _exp_below_peak(a, axis)
    return np.squeeze(peak, axis=axis) + np.log(np.sum(shifted, axis=axis))


def _exp_below_peak(a: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The maximum of ``a`` along ``axis`` (kept as an axis of 1; 0 where it is not finite) and exp(a - maximum):
    the overflow-free pieces of a log-sum-exp."""
    peak = np.max(a, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    return peak, np.exp(a - peak)


def _normalized(log_joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The E-step's two results from log N(x_n; mu_k, Sigma_k) + log pi_k, shape (R, n, K): the log-likelihood
    of each row (R, n) and the responsibilities (R, n, K), from one pass of ``exp`` (two in GaussianMixture)."""
    peak, responsibilities = _exp_below_peak(log_joint, axis=2)
    total = np.sum(responsibilities, axis=2, keepdims=True)
    responsibilities /= total
    return np.squeeze(peak + np.log(total), axis=2), responsibilities


def kmeans_responsibilities(x: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """GaussianMixture's start: one-hot responsibilities from one run of k-means seeded by ``seed``."""
    if n_components == 1:  # every row in the one cluster, without running k-means
        return np.ones((x.shape[0], 1))
    labels = KMeans(n_clusters=n_components, n_init=1, random_state=np.random.RandomState(seed)).fit(x).labels_
    responsibilities = np.zeros((x.shape[0], n_components))
    responsibilities[np.arange(x.shape[0]), labels] = 1.0
    return responsibilities


def fit_em(
    x: np.ndarray, start: np.ndarray, covariance_type: str, reg_covars: Sequence[float]
) -> list[GaussianMixtures | None]:
    """EM from the responsibilities ``start`` (n, K), once for each floor in ``reg_covars``.

    With :func:`kmeans_responsibilities`, each result is what ``GaussianMixture(K,
    covariance_type=covariance_type, reg_covar=floor, random_state=seed).fit(x)``
    computes: a single mixture (R = 1), or None where a covariance stopped being
    positive definite (where GaussianMixture raises).
    """
    floors = np.asarray(reg_covars, dtype=float)
    results: list[GaussianMixtures | None] = [None] * floors.size
    running = np.arange(floors.size)  # positions in ``reg_covars`` still iterating
    from_second_moments = _second_moments_pay(x, start.shape[1])
    mixtures, fitted = _m_step(
        x, np.broadcast_to(start, (floors.size, *start.shape)), covariance_type, floors, from_second_moments
    )
    running, mixtures = running[fitted], mixtures.take(fitted)
    mixtures.weights = mixtures.weights / x.shape[0]
    lower_bounds = np.full(running.size, -np.inf)
    for iteration in range(MAX_ITER):
        if running.size == 0:
            break
        log_norm, responsibilities = _normalized(mixtures.component_log_densities(x))
        previous, lower_bounds = lower_bounds, np.mean(log_norm, axis=1)
        change = lower_bounds - previous
        mixtures, fitted = _m_step(x, responsibilities, covariance_type, floors[running], from_second_moments)
        mixtures.weights = mixtures.weights / mixtures.weights.sum(axis=1, keepdims=True)
        done = fitted & ((np.abs(change) < TOL) | (iteration == MAX_ITER - 1))
        for position in np.flatnonzero(done):
            results[running[position]] = mixtures.take([position])
        going = fitted & ~done
        running, mixtures, lower_bounds = running[going], mixtures.take(going), lower_bounds[going]
    return results


def _second_moments_pay(x: np.ndarray, n_components: int) -> bool:
    """Whether full covariances of ``n_components`` on ``x`` come from the second moments (see :func:`_m_step`):
    with at least a quarter as many components as columns, on rows within ``SECOND_MOMENTS_MAX_ABS``."""
    return 4 * n_components >= x.shape[1] and bool(np.max(np.abs(x)) <= SECOND_MOMENTS_MAX_ABS)


def _m_step(
    x: np.ndarray,
    responsibilities: np.ndarray,
    covariance_type: str,
    floors: np.ndarray,
    from_second_moments: bool,
) -> tuple[GaussianMixtures, np.ndarray]:
    """The mixtures (weights unnormalized: the soft counts) from responsibilities (R, n, K), one per floor,
    and which of them are fitted (False where a covariance is not positive definite)."""
    counts = responsibilities.sum(axis=1) + 10 * np.finfo(responsibilities.dtype).eps
    means = np.matmul(np.swapaxes(responsibilities, 1, 2), x) / counts[..., None]
    n_features = x.shape[1]
    if covariance_type == "full":
        if from_second_moments:
            # E[x x^T] - mu mu^T, as the diagonal case below (and GaussianMixture's) computes variances: one
            # product of the responsibilities with the rows' outer products (n, d^2), not a centred, weighted
            # copy of the rows (R, K, n, d). 4-10x faster with many components in few dimensions (the M-step
            # was 3.1 of a selection's 7.0 s on 6,400 x 7, K up to 32), slower with few components in many
            # (digits, 64 columns, K < 16).
            covariances = _second_moments(x, responsibilities) / counts[..., None, None]
            covariances -= means[..., :, None] * means[..., None, :]
        else:
            covariances = _centred_second_moments(x, responsibilities, means) / counts[..., None, None]
        covariances += floors[:, None, None, None] * np.eye(n_features)
        cholesky, fitted = _cholesky(covariances)
        identity = np.broadcast_to(np.eye(n_features), covariances.shape)
        precisions_cholesky = np.swapaxes(np.linalg.solve(cholesky, identity), 2, 3)
    else:
        variances = np.matmul(np.swapaxes(responsibilities, 1, 2), x**2) / counts[..., None] - means**2
        variances += floors[:, None, None]
        fitted = np.all(variances > 0.0, axis=(1, 2))
        precisions_cholesky = 1.0 / np.sqrt(np.where(fitted[:, None, None], variances, 1.0))
    return GaussianMixtures(counts, means, precisions_cholesky, covariance_type), fitted


def _second_moments(x: np.ndarray, responsibilities: np.ndarray) -> np.ndarray:
    """sum_n r_nk x_n x_n^T for each mixture and component: (R, K, d, d), the rows' outer products
    built a chunk of rows at a time (under ``CHUNK_ELEMENTS``)."""
    n_rows, n_features = x.shape
    n_mixtures, _, n_components = responsibilities.shape
    moments = np.zeros((n_mixtures, n_components, n_features * n_features))
    chunk = max(1, CHUNK_ELEMENTS // (n_features * n_features))
    for start in range(0, n_rows, chunk):
        rows = x[start : start + chunk]
        outer = (rows[:, :, None] * rows[:, None, :]).reshape(len(rows), -1)
        moments += np.matmul(np.swapaxes(responsibilities[:, start : start + chunk], 1, 2), outer)
    return moments.reshape(n_mixtures, n_components, n_features, n_features)


def _centred_second_moments(x: np.ndarray, responsibilities: np.ndarray, means: np.ndarray) -> np.ndarray:
    """sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T for each mixture and component: (R, K, d, d), as GaussianMixture
    computes it, with temporaries (R, chunk, n, d) under ``CHUNK_ELEMENTS``."""
    moments = np.empty((*means.shape, x.shape[1]))
    for k in _component_chunks(*means.shape, x.shape[0]):
        centred = x - means[:, k, None, :]
        weighted = centred * np.swapaxes(responsibilities[:, :, k], 1, 2)[..., None]
        moments[:, k] = np.matmul(np.swapaxes(weighted, 2, 3), centred)
    return moments


def _component_chunks(n_mixtures: int, n_components: int, n_features: int, n_rows: int) -> list[slice]:
    """Slices of the components small enough that a (R, chunk, n, d) temporary stays under
    ``CHUNK_ELEMENTS``: one slice on small data; on 16,000 rows of 64 columns, 32 components at once
    would take 0.5 GB per temporary."""
    chunk = max(1, CHUNK_ELEMENTS // max(1, n_mixtures * n_rows * n_features))
    return [slice(start, start + chunk) for start in range(0, n_components, chunk)]


def _cholesky(covariances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factors of (R, K, d, d) covariances, and which of the R sets are all positive definite
    (the others get identity factors)."""
    try:
        return np.linalg.cholesky(covariances), np.ones(covariances.shape[0], dtype=bool)
    except np.linalg.LinAlgError:  # rare: find which sets failed, one by one
        fitted = np.array([_positive_definite(c) for c in covariances])
        identity = np.eye(covariances.shape[-1])
        return np.linalg.cholesky(np.where(fitted[:, None, None, None], covariances, identity)), fitted


def _positive_definite(covariances: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        return False
    return True
