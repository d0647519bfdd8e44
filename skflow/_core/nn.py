"""Conditioner networks for coupling layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """A multilayer perceptron whose last layer starts at zero.

    A zero output layer makes every coupling layer start as the identity, so an
    untrained flow is exactly its base distribution (after the fixed
    preprocessing) and training starts from a sane density.

    Parameters
    ----------
    in_features, out_features : int
    hidden_units : sequence of int
    residual : bool
        Add skip connections between hidden layers of equal width.
    """

    def __init__(self, in_features: int, out_features: int, hidden_units: Sequence[int], residual: bool = False):
        super().__init__()
        sizes = [in_features, *hidden_units]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(sizes[-1], out_features)
        self.residual = residual
        self.activation = nn.ReLU()
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.linear and an in-place ReLU instead of module calls: at training batch
        # sizes the per-call overhead is a visible share of the step time.
        for layer in self.hidden:
            h = torch.relu_(F.linear(x, layer.weight, layer.bias))
            x = x + h if self.residual and h.shape == x.shape else h
        return F.linear(x, self.output.weight, self.output.bias)


class Constant(nn.Module):
    """Learned parameters that ignore their input.

    Used as the conditioner when nothing is conditioned on (one feature), which
    turns a coupling layer into a learned elementwise transform.
    """

    def __init__(self, out_features: int):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], -1)
