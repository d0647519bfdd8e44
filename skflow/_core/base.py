"""Base distributions: the density of the latent ``z`` at the end of the flow."""

from __future__ import annotations

import math

import torch
from torch import nn


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """Row-wise log-density of N(0, I)."""
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * math.log(2.0 * math.pi))


class StandardNormal(nn.Module):
    """N(0, I) on ``n_features`` dimensions: no parameters."""

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = int(n_features)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z)

    def sample(
        self, n_samples: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        return torch.randn(n_samples, self.n_features, generator=generator, device=device, dtype=dtype)
