"""Conditioner networks for coupling layers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _initialized_linear(in_features: int, out_features: int, generator: torch.Generator | None) -> nn.Linear:
    """``nn.Linear`` with PyTorch's default initialization, drawn from ``generator``.

    The same draws as ``nn.Linear.reset_parameters`` (Kaiming-uniform weights,
    uniform biases), but from a local generator instead of torch's global one,
    which every thread shares: fits in threads then reproduce serial fits.
    """
    layer = torch.nn.utils.skip_init(nn.Linear, in_features, out_features)
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


class MLP(nn.Module):
    """A multilayer perceptron whose last layer starts at zero.

    A zero output layer makes every coupling layer start as the identity, so an
    untrained flow is exactly its base distribution (after the fixed
    preprocessing) and training starts from a sane density.

    Parameters
    ----------
    in_features, out_features : int
    hidden_units : sequence of int
    generator : torch.Generator or None
        Source of the initial weights (torch's global generator if None).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_units: Sequence[int],
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        sizes = [in_features, *hidden_units]
        self.hidden = nn.ModuleList(_initialized_linear(a, b, generator) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output = _initialized_linear(sizes[-1], out_features, generator)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.linear and an in-place ReLU instead of module calls: at training batch
        # sizes the per-call overhead is a visible share of the step time.
        for layer in self.hidden:
            x = torch.relu_(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, self.output.weight, self.output.bias)

    def features_major(self, x: torch.Tensor) -> torch.Tensor:
        """The same map on transposed rows: ``x`` of shape (in_features, N), result (out_features, N).

        Equal to ``self(x.T).T`` up to rounding. The coupling layers use it: the
        splines run fastest with the rows as the contiguous last axis, and
        producing that layout here costs nothing (the matrix products take
        either operand order), where transposing a (N, out_features) result
        would copy it, and its gradient, at every step.
        """
        for layer in self.hidden:
            x = torch.relu_(torch.addmm(layer.bias.unsqueeze(-1), layer.weight, x))
        return torch.addmm(self.output.bias.unsqueeze(-1), self.output.weight, x)


class Constant(nn.Module):
    """Learned parameters that ignore their input.

    Used as the conditioner when there is nothing to condition on (one
    feature, no context), which turns a coupling layer into a learned
    elementwise transform.
    """

    def __init__(self, out_features: int):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], -1)

    def features_major(self, x: torch.Tensor) -> torch.Tensor:
        """The value for each of the N columns of ``x`` (in_features, N): shape (out_features, N)."""
        return self.value.unsqueeze(-1).expand(-1, x.shape[-1])
