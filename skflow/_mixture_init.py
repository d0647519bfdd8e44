"""The Gaussian-mixture base's starting point: scikit-learn's GaussianMixture on the preprocessed rows.

The flow's learned layers start at the identity, so the untrained flow with
this base *is* the fitted mixture (after the fixed preprocessing); training
starts from it, and keeps it (epoch 0) when no epoch beats it on validation.
Measured in ``benchmarks/results/mixture_base.txt``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from ._core.train import validation_split

# Candidate numbers of components; BIC picks one.
CANDIDATE_COMPONENTS = (1, 2, 3, 4, 6, 8, 12, 16)
# Rows the mixture is selected and fitted on, at most (a seeded subsample beyond).
MAX_ROWS = 20_000
# Variance floor of the mixture, in standardized units: 1e-3 blurred near-degenerate data (compositional_8d).
REG_COVAR = 1e-6

Mixture = tuple[np.ndarray, np.ndarray, np.ndarray]


def candidate_components(n_rows: int, n_features: int) -> list[int]:
    """The candidates that leave each component at least max(10, its parameter count) rows."""
    per_component = n_features + n_features * (n_features + 1) // 2
    limit = n_rows // max(10, per_component)
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


def fit_mixture(x: np.ndarray, seed: int) -> Mixture:
    """A full-covariance GaussianMixture on ``x``, its number of components chosen by BIC.

    Returns weights (K,), means (K, d) and the upper-triangular precision
    Cholesky factors (K, d, d), as scikit-learn fits them.
    """
    best, best_bic = None, np.inf
    # One BLAS/OpenMP thread, as training: on 2 shared cores more threads made the selection on
    # make_moons (10,000 x 2) 5x slower (8.6 s against 1.8 s).
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # EM that stops at max_iter still gives a good starting point: training goes on from it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in candidate_components(*x.shape):
            gmm = GaussianMixture(k, covariance_type="full", reg_covar=REG_COVAR, random_state=seed, n_init=1)
            bic = gmm.fit(x).bic(x)
            if bic < best_bic:
                best, best_bic = gmm, bic
    if best is None:  # every fit was non-finite: a single Gaussian
        best = GaussianMixture(1, covariance_type="full", reg_covar=REG_COVAR, random_state=seed).fit(x)
    return best.weights_, best.means_, best.precisions_cholesky_
