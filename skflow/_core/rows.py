"""Training and validation rows, and their log-likelihood under a flow's learned part.

The rows of a split are index sets into one tensor (no copies); evaluation
goes in batches sized to the flow, and the per-row scores serve the paired
comparison that decides whether a trained epoch beats the initial weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .flow import Flow

# Bytes the learned part's intermediates may take per evaluation batch: on 3,000,000 x 16 rows a
# fixed 65,536-row batch took ~280 MiB (spline tables of rows x features x 3 x (bins + 1)).
EVALUATION_MEMORY = 32 * 2**20
# Below this many (effective) validation rows a comparison of two models on them is noise, and the
# simpler one stays: 16 training rows of scikit-learn's linnerud left one validation row, whose
# variance is zero, and a trained flow replaced its start on that row alone (-15.7 against the
# GaussianMixture's -10.5 on the held-out rows).
MIN_VALIDATION_ROWS = 10


def effective_rows(weights) -> float:
    """Kish's effective number of rows, ``(sum w)^2 / sum w^2``, of a numpy array or torch tensor of weights: the
    row count itself for equal weights, fewer where a few rows carry most of the weight."""
    return float(weights.sum() ** 2 / (weights * weights).sum())


def n_validation_rows(n: int, fraction: float) -> int:
    """The rows :func:`validation_split` holds out of ``n``: none where fewer than 2 would be left to train."""
    n_val = int(math.floor(fraction * n))
    return 0 if n_val < 1 or n - n_val < 2 else n_val


def validation_split(
    n: int, fraction: float, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Training and validation row indices; (None, None): every row trains and none validates."""
    n_val = n_validation_rows(n, fraction)
    if n_val == 0:
        return None, None
    perm = torch.randperm(n, generator=generator).to(device)
    return perm[n_val:], perm[:n_val]


def evaluation_rows(flow: Flow, itemsize: int = 4) -> int:
    """Rows per evaluation batch, so that the flow's intermediates stay near ``EVALUATION_MEMORY`` bytes.

    A spline layer holds a few tensors of (rows, features, 3 * n_bins) (its parameters and
    intermediates); the conditioner holds (rows, width) activations.
    """
    config = flow.config
    n_features, n_bins = int(config.get("n_features", 1)), int(config.get("n_bins", 8))
    width = max([n_features, *config.get("hidden_units", [])])
    per_row = itemsize * (6 * n_features * (3 * n_bins + 4) + 4 * width)
    return int(min(65536, max(256, EVALUATION_MEMORY // per_row)))


@torch.inference_mode()
def row_log_likelihoods(flow: Flow, rows: Rows, batch_size: int | None = None) -> torch.Tensor:
    """Log-likelihood of each preprocessed row under the learned part, gathered a batch at a time."""
    batch_size = batch_size or evaluation_rows(flow, rows.x.element_size())
    parts = []
    for start in range(0, len(rows), batch_size):
        x, _, context = rows.batch(rows.positions(start, start + batch_size))
        parts.append(flow.learned_log_prob(x, context))
    return torch.cat(parts) if parts else rows.x.new_zeros(0)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> float:
    return float(torch.dot(values, weights)) / float(weights.sum().clamp_min(torch.finfo(weights.dtype).tiny))


def clearly_better(scores: torch.Tensor, initial: torch.Tensor, weights: torch.Tensor, margin: float) -> bool:
    """Whether per-row ``scores`` beat ``initial`` by more than ``margin`` standard errors of the mean difference.

    The paired difference on the same validation rows: on a few dozen rows a
    trained flow can look better than its start by chance alone. False on
    fewer than ``MIN_VALIDATION_ROWS`` effective rows.
    """
    difference = (scores - initial).double()
    w = weights.double()
    mean = float(torch.dot(difference, w) / w.sum())
    variance = float(torch.dot((difference - mean) ** 2, w) / w.sum())
    n_rows = effective_rows(w)
    if n_rows < MIN_VALIDATION_ROWS:
        return False
    return mean > margin * math.sqrt(variance / n_rows)


@dataclass
class Rows:
    """Training or validation rows: preprocessed x, weights, the context when the flow is conditional.

    ``index`` selects the rows of ``x`` (and of ``w``, ``context``) that
    belong to the set; None means all of them. Batches are gathered through
    it, so a split of one large tensor copies nothing but its indices.
    """

    x: torch.Tensor
    w: torch.Tensor
    context: torch.Tensor | None = None
    index: torch.Tensor | None = None

    @classmethod
    def select(cls, x, w, context, index: torch.Tensor) -> Rows:
        """A copy of the selected rows (for the few that must be materialized, e.g. augmented once)."""
        return cls(x[index], w[index], context[index] if context is not None else None)

    def __len__(self) -> int:
        return self.x.shape[0] if self.index is None else self.index.shape[0]

    def positions(self, start: int, stop: int) -> torch.Tensor:
        """Positions ``start:stop`` of the set, in order (for evaluation batches)."""
        return torch.arange(start, min(stop, len(self)), device=self.x.device)

    def rows_of(self, positions: torch.Tensor) -> torch.Tensor:
        return positions if self.index is None else self.index.index_select(0, positions)

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """x, weights and context of the set's rows at ``positions`` (gathered copies of a batch)."""
        rows = self.rows_of(positions)
        context = self.context.index_select(0, rows) if self.context is not None else None
        return self.x.index_select(0, rows), self.w.index_select(0, rows), context

    def weights(self) -> torch.Tensor:
        """The set's weights, in order."""
        return self.w if self.index is None else self.w.index_select(0, self.index)

    def total_weight(self) -> torch.Tensor:
        return self.weights().sum()
