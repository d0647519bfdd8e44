"""The Gaussian-mixture base's starting point: scikit-learn's GaussianMixture on the preprocessed rows.

The flow's learned layers start at the identity, so the untrained flow with
this base *is* the fitted mixture (after the fixed preprocessing); training
starts from it, and keeps it (epoch 0) when no epoch beats it on validation.

The mixture is chosen the way a user tunes a GaussianMixture: the number of
components, full or diagonal covariances and the variance floor ``reg_covar``
by held-out log-likelihood (3-fold cross-validation on small data, one
held-out fifth on large data), then refitted on all the rows. Measured in
``benchmarks/results/mixture_base.txt`` and ``mixture_selection.txt``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold, ShuffleSplit
from threadpoolctl import threadpool_limits

from ._core.rows import validation_split

# Candidate numbers of components, tried in this order for each covariance type and floor.
CANDIDATE_COMPONENTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
# Variance floors (standardized units): small data often needs a large one (iris: 1e-2), near-degenerate
# data a tiny one (compositional_8d: 1e-6).
SMALL_DATA_REG_COVARS = (1e-6, 1e-4, 1e-2, 1e-1)
LARGE_DATA_REG_COVARS = (1e-6, 1e-4)
# Up to this many rows, 3-fold cross-validation; beyond, one held-out fifth (and only full covariances).
CROSS_VALIDATION_MAX_ROWS = 5000
# More components stop being tried after this many in a row fail to raise the held-out score.
# 1, not 2: half the fits; of five small benchmark sets 2 changed one choice (faithful_like, diagonal K=4
# instead of full K=2: -0.914 against -0.924 on its test part).
PATIENCE = 1
# Rows the mixture is selected and fitted on, at most (a seeded subsample beyond).
MAX_ROWS = 20_000

Mixture = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Candidate:
    n_components: int
    covariance_type: str  # "full" or "diag"
    reg_covar: float

    def estimator(self, seed: int) -> GaussianMixture:
        return GaussianMixture(
            self.n_components, covariance_type=self.covariance_type, reg_covar=self.reg_covar, random_state=seed
        )


def candidate_components(n_rows: int, n_features: int) -> list[int]:
    """The candidates that leave each component at least max(10, 2 (d + 1)) rows.

    Not the parameter count: cross-validation judges overfitting, and with a
    large ``reg_covar`` a full mixture of three components on 13-D data of 140
    rows (wine) generalizes best; the floor only spares fits that cannot.
    """
    limit = n_rows // max(10, 2 * (n_features + 1))
    return [k for k in CANDIDATE_COMPONENTS if k <= limit] or [1]


def mixture_rows(
    rows: torch.Tensor,
    weights: np.ndarray,
    validation_fraction: float,
    seed: int,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None,
) -> np.ndarray:
    """The float64 rows the mixture is fitted on: the training part (not the validation rows
    ``train_flow`` will hold out with the same seed), resampled by weight or subsampled to at most
    ``MAX_ROWS``, with one draw of the training noise (dequantization), all seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    train_idx, _ = validation_split(rows.shape[0], validation_fraction, generator, rows.device)
    # None: nothing is held out, every row trains.
    train_idx = np.arange(rows.shape[0]) if train_idx is None else train_idx.cpu().numpy()
    rng = np.random.RandomState(seed)
    w = weights[train_idx]
    if not np.allclose(w, w[0], rtol=1e-12, atol=0.0):
        train_idx = rng.choice(train_idx, size=min(train_idx.size, MAX_ROWS), replace=True, p=w / w.sum())
    elif train_idx.size > MAX_ROWS:
        train_idx = np.sort(rng.choice(train_idx, size=MAX_ROWS, replace=False))
    selected = rows[torch.as_tensor(train_idx, device=rows.device)]
    if augment is not None:
        noise = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        selected = augment(selected, noise)
    return selected.cpu().numpy().astype(np.float64)


def fit_mixture(x: np.ndarray, seed: int, selection_rows: np.ndarray | None = None) -> Mixture:
    """A GaussianMixture fitted on ``x``, chosen by held-out log-likelihood on ``selection_rows`` (``x`` if None)."""
    return fit_candidate(choose_mixture(x if selection_rows is None else selection_rows, seed), x, seed)


def choose_mixture(x: np.ndarray, seed: int) -> Candidate:
    """The candidate with the best held-out log-likelihood on ``x`` (see :func:`select_candidate`)."""
    with _quiet_single_threaded():
        return select_candidate(x, seed)


def fit_candidate(candidate: Candidate, x: np.ndarray, seed: int) -> Mixture:
    """``candidate`` fitted on ``x``: weights (K,), means (K, d) and the upper-triangular precision
    Cholesky factors (K, d, d) (diagonal ones for a diagonal mixture)."""
    with _quiet_single_threaded():
        gmm = candidate.estimator(seed).fit(x)
        if not np.all(np.isfinite(gmm.precisions_cholesky_)):
            gmm = Candidate(1, "full", SMALL_DATA_REG_COVARS[-1]).estimator(seed).fit(x)
    return gmm.weights_, gmm.means_, full_precisions_cholesky(gmm)


@contextmanager
def _quiet_single_threaded():
    # One BLAS/OpenMP thread, as training: on 2 shared cores more threads made the selection on
    # make_moons (10,000 x 2) 5x slower (8.6 s against 1.8 s).
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # EM that stops at max_iter still gives a good starting point: training goes on from it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def select_candidate(x: np.ndarray, seed: int) -> Candidate:
    """The candidate with the best mean held-out log-likelihood over the splits of ``x``.

    For each covariance type and floor, more components are tried until
    ``PATIENCE`` in a row fail to improve: the scores rise, then fall, with K.
    """
    n_rows, n_features = x.shape
    fallback = Candidate(1, "full", SMALL_DATA_REG_COVARS[-1])
    if n_rows < 2 * 3:  # fewer than two rows a fold: nothing to choose with
        return fallback
    if n_rows <= CROSS_VALIDATION_MAX_ROWS:
        splits = list(KFold(3, shuffle=True, random_state=seed).split(x))
        grid = [(cov, reg) for cov in ("full", "diag") for reg in SMALL_DATA_REG_COVARS]
    else:
        splits = list(ShuffleSplit(1, test_size=0.2, random_state=seed).split(x))
        grid = [("full", reg) for reg in LARGE_DATA_REG_COVARS]
    fit_rows = min(len(train) for train, _ in splits)
    best, best_score = fallback, -np.inf
    for covariance_type, reg_covar in grid:
        misses, line_best = 0, -np.inf
        for k in candidate_components(fit_rows, n_features):
            candidate = Candidate(k, covariance_type, reg_covar)
            score = held_out_score(candidate, x, splits, seed)
            if score > best_score:
                best, best_score = candidate, score
            misses = 0 if score > line_best else misses + 1
            line_best = max(line_best, score)
            if misses >= PATIENCE:
                break
    return best


def held_out_score(candidate: Candidate, x: np.ndarray, splits, seed: int) -> float:
    """Mean held-out log-likelihood per row over ``splits``; -inf when a fit fails."""
    scores = []
    for train, test in splits:
        try:
            scores.append(candidate.estimator(seed).fit(x[train]).score(x[test]))
        except ValueError:  # a component collapsed (ill-defined covariance)
            return -np.inf
    score = float(np.mean(scores))
    return score if np.isfinite(score) else -np.inf


def full_precisions_cholesky(gmm: GaussianMixture) -> np.ndarray:
    """The fitted precision Cholesky factors as (K, d, d) matrices, whatever the covariance type."""
    if gmm.covariance_type == "full":
        return gmm.precisions_cholesky_
    return np.stack([np.diag(row) for row in gmm.precisions_cholesky_])
