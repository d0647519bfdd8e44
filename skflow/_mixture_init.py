"""The Gaussian-mixture base's starting point: scikit-learn's GaussianMixture on the preprocessed rows.

The flow's learned layers start at the identity, so the untrained flow with
this base *is* the fitted mixture (after the fixed preprocessing); training
starts from it, and keeps it (epoch 0) when no epoch beats it on validation.

The mixture is chosen the way a user tunes a GaussianMixture: the number of
components, full or diagonal covariances and the variance floor ``reg_covar``
by held-out log-likelihood (3-fold cross-validation on small data, one
held-out fifth on large data), then refitted on all the rows. Every fit,
the chosen one's included, is GaussianMixture's algorithm (its k-means start
and EM) as :mod:`skflow._mixture_em` runs it, equal to GaussianMixture's fit to
rounding and several times faster. Measured in
``benchmarks/results/mixture_base.txt`` and ``mixture_selection.txt``.
Where held-out rows show heavier tails than its Gaussians, its components
become Student t ones of the same covariances (:func:`choose_degrees_of_freedom`).
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

from ._core.base import GaussianMixtureBase, StudentTMixtureBase
from ._core.rows import validation_split
from ._mixture_em import GaussianMixtures, fit_em, kmeans_responsibilities

# Candidate numbers of components, tried in this order for each covariance type and floor.
CANDIDATE_COMPONENTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
# Variance floors (standardized units): small data often needs a large one (iris: 1e-2), near-degenerate
# data a tiny one (compositional_8d: 1e-6), a few rows in several dimensions a shrinkage towards the
# identity (linnerud, 16 rows x 6: 0.3, held out -10.464 -> -9.699 against 0.1).
SMALL_DATA_REG_COVARS = (1e-6, 1e-4, 1e-2, 1e-1, 0.3, 1.0)
LARGE_DATA_REG_COVARS = (1e-6, 1e-4)
# Up to this many rows, 3-fold cross-validation; beyond, one held-out fifth (and only full covariances).
CROSS_VALIDATION_MAX_ROWS = 5000
# More components stop being tried after this many in a row fail to raise the held-out score.
# 1, not 2: half the fits; of five small benchmark sets 2 changed one choice (faithful_like, diagonal K=4
# instead of full K=2: -0.914 against -0.924 on its test part).
PATIENCE = 1
# The one-Gaussian fallback's floor, where no candidate can be fitted or scored (or the chosen one's, if larger).
FALLBACK_REG_COVAR = 0.1
# Rows the mixture is selected and fitted on, at most (a seeded subsample beyond).
MAX_ROWS = 20_000
# Degrees of freedom tried for Student t components in place of the chosen mixture's Gaussians, heaviest
# tails last. On a 5-D t with 4 degrees of freedom (the density benchmark's student_t_5d) the Gaussian
# mixtures of 4 to 12 components score best on held-out rows as t's of 20 degrees of freedom: their
# components already widen the tails, and fewer degrees of freedom overshoot.
CANDIDATE_DEGREES_OF_FREEDOM = (40.0, 20.0, 10.0, 5.0)
# Standard errors of the paired per-row gain by which t components must beat the Gaussians.
TAILS_MARGIN = 2.0
# Below this many rows the Gaussians stay: a Gaussian fitted to two thirds of a handful of rows is
# overfitted, its held-out rows look far, and t components can win by that, not by tails. On 3-D Gaussian
# data a first draft (one Gaussian, the standard error without ddof=1) chose them on 4 of 40 draws of 6
# rows; the rule as it is chose them on none of 20 draws each of 6, 8, 15, 30, 100 and 2,000 rows.
MIN_ROWS_FOR_TAILS = 30

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
    row_map: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """The float64 rows the mixture is fitted on: the training part (not the validation rows
    ``train_flow`` will hold out with the same seed), resampled by weight or subsampled to at most
    ``MAX_ROWS``, with one draw of the training noise (dequantization), all seeded by ``seed``.

    ``row_map``, a map of each row on its own, is applied to the selected rows
    before the noise: the result is that of mapping every row first, without
    a full-size copy of the mapped rows (the selection depends only on the
    number of rows, the weights and the seed).
    """
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
    if row_map is not None:
        selected = row_map(selected)
    if augment is not None:
        noise = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        selected = augment(selected, noise)
    return selected.cpu().numpy().astype(np.float64)


def fit_mixture(x: np.ndarray, seed: int) -> tuple[Mixture, float | None]:
    """The mixture chosen on ``x`` by held-out log-likelihood and fitted on it, and the degrees of freedom of
    its Student t components (None: Gaussian ones), chosen as :func:`choose_degrees_of_freedom` chooses them."""
    candidate, _ = choose_mixture(x, seed)
    mixture = fit_candidate(candidate, x, seed)
    return mixture, kept_degrees_of_freedom(candidate, mixture, choose_degrees_of_freedom(candidate, x, seed))


def kept_degrees_of_freedom(candidate: Candidate, mixture: Mixture, degrees_of_freedom: float | None) -> float | None:
    """``degrees_of_freedom``, chosen for ``candidate``, if ``mixture`` is its fit; None if the fit fell back to
    one wide Gaussian, for which nothing was chosen."""
    return degrees_of_freedom if len(mixture[0]) == candidate.n_components else None


def choose_mixture(x: np.ndarray, seed: int) -> tuple[Candidate, float]:
    """The candidate with the best held-out log-likelihood on ``x``, and that score (see :func:`scored_candidate`)."""
    with quiet_single_threaded():
        return scored_candidate(x, seed)


def fit_candidate(candidate: Candidate, x: np.ndarray, seed: int) -> Mixture:
    """``candidate`` fitted on ``x`` as ``candidate.estimator(seed).fit(x)`` fits it (the same k-means start
    and EM, :mod:`skflow._mixture_em`, in a fraction of its time): weights (K,), means (K, d) and the
    upper-triangular precision Cholesky factors (K, d, d) (diagonal ones for a diagonal mixture).

    Where a covariance stops being positive definite (GaussianMixture raises), one Gaussian with a floor of
    at least ``FALLBACK_REG_COVAR``.
    """
    fallback = Candidate(1, "full", max(FALLBACK_REG_COVAR, candidate.reg_covar))
    with quiet_single_threaded():
        for attempt in (candidate, fallback):
            numbers = _fitted_numbers(attempt, x, seed)
            if numbers is not None:
                return numbers
    raise ValueError("no Gaussian mixture, not even one wide Gaussian, could be fitted to the rows")


def _fitted_numbers(candidate: Candidate, x: np.ndarray, seed: int) -> Mixture | None:
    """``candidate`` fitted on ``x`` once, as (weights, means, full precision Cholesky factors); None where the
    fit fails or a factor is not finite."""
    mixture = _fitted_once(candidate, x, seed)
    if mixture is None or not np.all(np.isfinite(mixture.precisions_cholesky)):
        return None
    return mixture.weights[0], mixture.means[0], _as_full(mixture.precisions_cholesky[0], mixture.covariance_type)


def _fitted_once(candidate: Candidate, x: np.ndarray, seed: int) -> GaussianMixtures | None:
    start = kmeans_responsibilities(x, candidate.n_components, seed)
    (mixture,) = fit_em(x, start, candidate.covariance_type, [candidate.reg_covar])
    return mixture


@contextmanager
def quiet_single_threaded():
    # One BLAS/OpenMP thread, as training: on 2 shared cores more threads made the selection on
    # make_moons (10,000 x 2) 5x slower (8.6 s against 1.8 s).
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # EM that stops at max_iter still gives a good starting point: training goes on from it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def selection_splits(n_rows: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) row indices candidates are scored on: 3 folds, or one held-out fifth beyond
    ``CROSS_VALIDATION_MAX_ROWS``."""
    if n_rows <= CROSS_VALIDATION_MAX_ROWS:
        return list(KFold(3, shuffle=True, random_state=seed).split(np.empty((n_rows, 0))))
    return list(ShuffleSplit(1, test_size=0.2, random_state=seed).split(np.empty((n_rows, 0))))


def scored_candidate(x: np.ndarray, seed: int) -> tuple[Candidate, float]:
    """The candidate with the best mean held-out log-likelihood over the splits of ``x``, and that score
    (-inf for the fallback on too few rows).

    For each covariance type and floor, more components are tried until
    ``PATIENCE`` in a row fail to improve: the scores rise, then fall, with K.
    The floors of one covariance type are fitted side by side (one EM from each
    k-means start, :mod:`skflow._mixture_em`); the choice is the one the
    floor-by-floor search with ``GaussianMixture`` makes, in a fifth to a half of its time.
    """
    n_rows, n_features = x.shape
    fallback = Candidate(1, "full", FALLBACK_REG_COVAR)
    if n_rows < 2 * 3:  # fewer than two rows a fold: nothing to choose with
        return fallback, -np.inf
    splits = selection_splits(n_rows, seed)
    if n_rows <= CROSS_VALIDATION_MAX_ROWS:
        grid = [(cov, reg) for cov in ("full", "diag") for reg in SMALL_DATA_REG_COVARS]
    else:
        grid = [("full", reg) for reg in LARGE_DATA_REG_COVARS]
    fit_rows = min(len(train) for train, _ in splits)
    held_out = HeldOutScores(x, splits, seed)
    scores: dict[Candidate, float] = {}
    for covariance_type in dict.fromkeys(cov for cov, _ in grid):
        # Every floor's line of K, side by side: the floors share each k-means start and one EM.
        floors = [reg for cov, reg in grid if cov == covariance_type]
        line_best, misses = dict.fromkeys(floors, -np.inf), dict.fromkeys(floors, 0)
        for k in candidate_components(fit_rows, n_features):
            floors = [reg for reg in floors if misses[reg] < PATIENCE]
            if not floors:
                break
            for reg, score in zip(floors, held_out.scores(k, covariance_type, floors)):
                scores[Candidate(k, covariance_type, reg)] = score
                misses[reg] = 0 if score > line_best[reg] else misses[reg] + 1
                line_best[reg] = max(line_best[reg], score)
    # The best score; on a tie, the first in the grid's order (fewest components).
    ordered = sorted(scores, key=lambda c: (grid.index((c.covariance_type, c.reg_covar)), c.n_components))
    best = max(ordered, key=scores.__getitem__, default=fallback)
    return (best, scores[best]) if scores.get(best, -np.inf) > -np.inf else (fallback, -np.inf)


class HeldOutScores:
    """Mean held-out log-likelihood per row of candidates over fixed ``splits`` of ``x``; -inf when a fit fails.

    Each fold's k-means start depends only on its rows, K and the seed, so it
    is computed once and shared by every covariance type and floor.
    """

    def __init__(self, x: np.ndarray, splits, seed: int):
        self.x, self.splits, self.seed = x, splits, seed
        self._starts: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, candidate: Candidate) -> float:
        return self.scores(candidate.n_components, candidate.covariance_type, [candidate.reg_covar])[0]

    def scores(self, n_components: int, covariance_type: str, reg_covars: list[float]) -> list[float]:
        """The scores of ``Candidate(n_components, covariance_type, reg)`` for each ``reg`` in ``reg_covars``."""
        per_fold = np.array(
            [
                self._fold_scores(n_components, covariance_type, reg_covars, fold, self.x[train], self.x[test])
                for fold, (train, test) in enumerate(self.splits)
            ]
        )
        means = per_fold.mean(axis=0)
        return [float(m) if np.isfinite(m) else -np.inf for m in means]

    def _fold_scores(self, k, covariance_type, reg_covars, fold, train, test) -> list[float]:
        if (fold, k) not in self._starts:
            self._starts[fold, k] = kmeans_responsibilities(train, k, self.seed)
        fits = fit_em(train, self._starts[fold, k], covariance_type, reg_covars)
        return [-np.inf if mixture is None else float(mixture.score(test)[0]) for mixture in fits]


def held_out_rows(candidate: Candidate, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    """The log-likelihood of each ``test`` row under ``candidate`` fitted on ``train`` as the selection fits
    it (-inf everywhere if the fit fails)."""
    mixture = _fitted_once(candidate, train, seed)
    if mixture is None:
        return np.full(len(test), -np.inf)
    return mixture.log_likelihoods(test)[0]


def choose_degrees_of_freedom(candidate: Candidate, x: np.ndarray, seed: int) -> float | None:
    """Student t components for ``candidate``'s mixture, or None (Gaussian ones), by held-out log-likelihood.

    On 3 folds of ``x`` (on large data too: the gain sits in a few far rows,
    so every row is held out once), the candidate is fitted once per fold
    and each held-out row scored under its Gaussian components and under t
    components of each of ``CANDIDATE_DEGREES_OF_FREEDOM`` with the same
    weights, means and covariances (:class:`~skflow._core.StudentTMixtureBase`).
    The best t is kept only where its paired per-row gain over the Gaussians
    clearly exceeds zero (``TAILS_MARGIN`` standard errors): heavy tails
    show in a few rows, and on lighter-tailed data the Gaussians stay. The
    gain is that of a few far rows, so a handful of gross outliers is enough
    to choose t components, which is what they are for (five rows at 50
    standard deviations among 500 3-D Gaussian ones: 8 of 10 draws). The number of components
    and any map of the columns were chosen with Gaussians, and the t's take
    the Gaussians' covariances, which far rows widen: both lean towards
    keeping the Gaussians.
    """
    if len(x) < MIN_ROWS_FOR_TAILS:
        return None
    per_row_gains = {nu: [] for nu in CANDIDATE_DEGREES_OF_FREEDOM}
    with quiet_single_threaded(), torch.no_grad():
        for train, test in KFold(3, shuffle=True, random_state=seed).split(x):
            numbers = _fitted_numbers(candidate, x[train], seed)
            if numbers is None:  # a fold whose fit fails or degenerates leaves the Gaussians
                return None
            rows = torch.from_numpy(x[test])
            gaussian = GaussianMixtureBase.from_mixture(*numbers, dtype=torch.float64).log_prob(rows)
            for nu in CANDIDATE_DEGREES_OF_FREEDOM:
                t = StudentTMixtureBase.from_mixture(*numbers, torch.float64, degrees_of_freedom=nu).log_prob(rows)
                per_row_gains[nu].append((t - gaussian).numpy())
    gains = {nu: np.concatenate(parts) for nu, parts in per_row_gains.items()}
    best = max(gains, key=lambda nu: gains[nu].mean())
    gain = gains[best]
    standard_error = gain.std(ddof=1) / np.sqrt(len(gain))
    if not np.isfinite(gain).all() or gain.mean() <= TAILS_MARGIN * standard_error:
        return None
    return best


def _as_full(precisions_cholesky: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type == "full":
        return precisions_cholesky
    return np.stack([np.diag(row) for row in precisions_cholesky])
