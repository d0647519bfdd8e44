"""A normalizing flow: a chain of bijections onto a standard normal base.

log p(x) = log N(f(x); 0, I) + sum_layers log|det J_layer|
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .couplings import AffineCoupling, SplineCoupling
from .transforms import ActNorm, AsinhTails, LULinear, Permutation, Standardize, ToUnbounded, Transform

FLOW_KINDS = ("spline", "affine")
MIXINGS = ("lu", "permutation")


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """Row-wise log-density of N(0, I)."""
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * math.log(2.0 * math.pi))


class Flow(nn.Module):
    """Chain of transforms from data x to latent z, with base N(0, I) on z.

    ``config`` holds the plain (JSON-serializable) arguments of ``build_flow``, so
    that a flow is persisted as config + ``state_dict`` and rebuilt anywhere.
    """

    def __init__(self, transforms: Sequence[Transform], config: dict[str, Any] | None = None):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        self.config = dict(config or {})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map data to latent; return z and log|det dz/dx| per row."""
        log_abs_det = x.new_zeros(x.shape[0])
        for transform in self.transforms:
            x, ladj = transform(x)
            log_abs_det = log_abs_det + ladj
        return x, log_abs_det

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map latent to data; return x and log|det dx/dz| per row."""
        log_abs_det = z.new_zeros(z.shape[0])
        for transform in reversed(self.transforms):
            z, ladj = transform.inverse(z)
            log_abs_det = log_abs_det + ladj
        return z, log_abs_det

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, log_abs_det = self(x)
        return standard_normal_log_prob(z) + log_abs_det

    @torch.no_grad()
    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        reference = next(t for t in self.state_dict().values() if t.is_floating_point())
        z = torch.randn(
            n_samples, self.config["n_features"], generator=generator, device=reference.device, dtype=reference.dtype
        )
        return self.inverse(z)[0]


def build_flow(
    n_features: int,
    *,
    flow: str = "spline",
    n_transforms: int = 4,
    hidden_units: Sequence[int] = (64, 64),
    n_bins: int = 8,
    tail_bound: float = 5.0,
    residual: bool = False,
    mixing: str = "lu",
    actnorm: bool = False,
    bounded: bool = False,
    asinh_tails: bool = False,
    seed: int = 0,
) -> Flow:
    """Build an identity-initialized flow.

    The chain is ``[ToUnbounded] -> Standardize -> [AsinhTails] -> (ActNorm -> mixing -> coupling) x n_transforms``.
    The fixed layers start as the identity; the estimator fills their
    buffers (AsinhTails' column mask is empty until then). Coupling masks
    alternate between the two halves of the features.

    Module construction draws from torch's global RNG (``nn.Linear`` init); it runs
    inside ``fork_rng`` seeded by ``seed``, so it is reproducible and leaves the
    caller's RNG state alone.
    """
    if flow not in FLOW_KINDS:
        raise ValueError(f"flow must be one of {FLOW_KINDS}, got {flow!r}")
    if mixing not in MIXINGS:
        raise ValueError(f"mixing must be one of {MIXINGS}, got {mixing!r}")
    config = dict(
        n_features=int(n_features),
        flow=flow,
        n_transforms=int(n_transforms),
        hidden_units=[int(h) for h in hidden_units],
        n_bins=int(n_bins),
        tail_bound=float(tail_bound),
        residual=bool(residual),
        mixing=mixing,
        actnorm=bool(actnorm),
        bounded=bool(bounded),
        asinh_tails=bool(asinh_tails),
        seed=int(seed),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[Transform] = []
        if bounded:
            layers.append(ToUnbounded(torch.full((n_features,), -math.inf), torch.full((n_features,), math.inf)))
        layers.append(Standardize(torch.zeros(n_features), torch.ones(n_features)))
        if asinh_tails:
            layers.append(AsinhTails(n_features))
        parity = torch.arange(n_features) % 2
        for i in range(n_transforms):
            if actnorm:
                layers.append(ActNorm(n_features))
            if n_features > 1:
                if mixing == "lu":
                    layers.append(LULinear(n_features))
                else:
                    layers.append(Permutation(torch.randperm(n_features)))
            mask = parity == (i % 2) if n_features > 1 else torch.ones(1, dtype=torch.bool)
            if flow == "spline":
                layers.append(
                    SplineCoupling(mask, hidden_units, n_bins=n_bins, tail_bound=tail_bound, residual=residual)
                )
            else:
                layers.append(AffineCoupling(mask, hidden_units, residual=residual))
    return Flow(layers, config)


def flow_from_config(config: dict[str, Any]) -> Flow:
    """Rebuild the (untrained) flow that ``config`` describes; load a state_dict into it."""
    kwargs = dict(config)
    return build_flow(kwargs.pop("n_features"), **kwargs)
