"""Invertible transforms with a tractable log-determinant.

Every transform maps data-side ``x`` to latent-side ``z``:

* ``forward(x, context=None) -> (z, log|det dz/dx|)``
* ``inverse(z, context=None) -> (x, log|det dx/dz|)``

with one log-determinant per row. ``context`` (rows of conditioning
variables) reaches the coupling layers' conditioners; the other transforms
ignore it. Coupling layers live in ``couplings.py``, the fixed fitted maps of
the preprocessing in ``fixed.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class IndexedContext:
    """Context given as distinct rows and, per row of the flow's input, the index of its context row.

    Means ``rows[index]`` without building it: a conditioner that sees only
    the context (every coupling layer of a single-target conditional flow)
    then runs once per distinct row rather than once per flow row. Quantiles,
    means and draws evaluate many points per context row, and the
    conditioners were most of their cost.
    """

    rows: torch.Tensor
    index: torch.Tensor

    @classmethod
    def repeated(cls, rows: torch.Tensor, repeats: int) -> IndexedContext:
        """Each row for ``repeats`` consecutive flow rows: ``rows.repeat_interleave(repeats, dim=0)``."""
        return cls(rows, torch.arange(rows.shape[0], device=rows.device).repeat_interleave(repeats))

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.index.shape[0], *self.rows.shape[1:]))

    def to(self, *args, **kwargs) -> IndexedContext:
        return IndexedContext(self.rows.to(*args, **kwargs), self.index)

    def expanded(self) -> torch.Tensor:
        return self.rows.index_select(0, self.index)


Context = torch.Tensor | IndexedContext | None


def expanded_context(context: Context) -> torch.Tensor | None:
    """``context`` as one row per flow row."""
    return context.expanded() if isinstance(context, IndexedContext) else context


class Transform(nn.Module):
    """Base class: a bijection applied to a batch of shape (N, D), optionally given a context (N, C)."""

    def forward(self, x: torch.Tensor, context: Context = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, z: torch.Tensor, context: Context = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class Permutation(Transform):
    """Fixed reordering of the features; its log-det is zero."""

    def __init__(self, order: torch.Tensor):
        super().__init__()
        self.register_buffer("order", order.clone())
        self.register_buffer("inverse_order", torch.argsort(order))

    # index_select rather than x[:, order]: half the cost, forward and backward.
    def forward(self, x, context=None):
        return x.index_select(1, self.order), x.new_zeros(x.shape[0])

    def inverse(self, z, context=None):
        return z.index_select(1, self.inverse_order), z.new_zeros(z.shape[0])


def _lu_weight(lower: torch.Tensor, upper: torch.Tensor, log_diag: torch.Tensor):
    """W = L U and the factors its backward needs: L = I + strict_lower(lower), U = strict_upper(upper) + diag(exp)."""
    unit_lower = torch.tril(lower, -1)
    unit_lower.diagonal().fill_(1.0)
    diag = log_diag.exp()
    upper_diag = torch.triu(upper, 1)
    upper_diag.diagonal().copy_(diag)
    return unit_lower @ upper_diag, (unit_lower, upper_diag, diag)


def _lu_weight_backward(factors, grad_weight: torch.Tensor):
    """Gradients of ``lower``, ``upper`` and ``log_diag`` from that of W = L U."""
    unit_lower, upper_diag, diag = factors
    grad_lower = grad_weight @ upper_diag.T
    grad_upper = unit_lower.T @ grad_weight
    return torch.tril(grad_lower, -1), torch.triu(grad_upper, 1), grad_upper.diagonal() * diag


class _LUWeight(torch.autograd.Function):
    """W = L U from the unconstrained factors, with a hand-written backward.

    L = I + strict_lower(lower), U = strict_upper(upper) + diag(exp(log_diag)).
    As a single graph node its forward and backward take ~16 tensor
    operations instead of ~40 traced ones.
    """

    @staticmethod
    def forward(ctx, lower: torch.Tensor, upper: torch.Tensor, log_diag: torch.Tensor) -> torch.Tensor:
        weight, factors = _lu_weight(lower, upper, log_diag)
        ctx.save_for_backward(*factors)
        return weight

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_weight: torch.Tensor):
        return _lu_weight_backward(ctx.saved_tensors, grad_weight)


class _LUForward(torch.autograd.Function):
    """The whole forward map of :class:`LULinear`, z = x W^T + b and its log-det per row, as one graph node.

    At training sizes the map's cost is the operations' and the graph nodes'
    (W is 16 x 16 in the step benchmark): traced, the weight, its transpose,
    the product and the log-det's sum and broadcast are five nodes.
    """

    @staticmethod
    def forward(ctx, x, lower, upper, log_diag, bias):
        weight, factors = _lu_weight(lower, upper, log_diag)
        ctx.save_for_backward(x, weight, *factors)
        return torch.addmm(bias, x, weight.T), log_diag.sum().expand(x.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_z: torch.Tensor, grad_log_det: torch.Tensor):
        x, weight, *factors = ctx.saved_tensors
        grad_x = grad_z @ weight if ctx.needs_input_grad[0] else None
        grad_lower, grad_upper, grad_log_diag = _lu_weight_backward(factors, grad_z.T @ x)
        return grad_x, grad_lower, grad_upper, grad_log_diag.add_(grad_log_det.sum()), grad_z.sum(0)


class LULinear(Transform):
    """Invertible linear map z = W x + b with W = L U (Kingma & Dhariwal 2018).

    L is unit lower-triangular and U upper-triangular with diagonal exp(log_diag),
    so log|det W| = sum(log_diag) and inversion is two triangular solves.
    Starts at the identity.
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.lower = nn.Parameter(torch.zeros(n_features, n_features))
        self.upper = nn.Parameter(torch.zeros(n_features, n_features))
        self.log_diag = nn.Parameter(torch.zeros(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("eye", torch.eye(n_features))

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        # tril/triu rather than multiplying by masks: fewer operations per step.
        lower = torch.tril(self.lower, -1) + self.eye
        upper = torch.triu(self.upper, 1) + torch.diag_embed(self.log_diag.exp())
        return lower, upper

    def weight(self) -> torch.Tensor:
        """The matrix W = L U."""
        return _LUWeight.apply(self.lower, self.upper, self.log_diag)

    def forward(self, x, context=None):
        return _LUForward.apply(x, self.lower, self.upper, self.log_diag, self.bias)

    def inverse(self, z, context=None):
        lower, upper = self._factors()
        # Solve (L U) x^T = (z - b)^T.
        rhs = (z - self.bias).T
        y = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, y, upper=True).T
        return x, (-self.log_diag.sum()).expand(z.shape[0])


class LinearShiftNumbers(NamedTuple):
    """A :class:`LinearShift`'s numbers: ``weight`` (n_features, context_features), ``bias`` and ``log_scale``
    (n_features,), optionally ``leverage``, ``(center, matrix, offset)`` of shapes (context_features,),
    (context_features, context_features) and (), ``mixing``, the unit lower-triangular (n_features,
    n_features) ``L``, and ``degrees_of_freedom``: the layer's output is Student's t with these, which a
    :class:`skflow._core.student_t.StudentToNormal` after it maps to the normal. None: no such part."""

    weight: Any
    bias: Any
    log_scale: Any
    leverage: tuple[Any, Any, Any] | None = None
    mixing: Any = None
    degrees_of_freedom: float | None = None


class LinearShift(Transform):
    """z = exp(-log_scale) L^-1 (x - (W c + b)) / sqrt(1 + h(c)): a shift linear in the context c, then a scale.

    log|det dz/dx| = -sum(log_scale) - (d / 2) log(1 + h(c)) for d features
    (L is unit lower-triangular: its determinant is 1). As the last learned
    layer of a conditional flow whose other layers are at the identity, the
    flow is the linear-Gaussian regression ``N(x; W c + b, (1 + h(c)) S)``,
    ``S = L diag(exp(2 log_scale)) L^T``: the estimators set it from a ridge
    fit (:mod:`skflow._linear_start`). With ``mixing``, ``L`` is a buffer
    that correlates the features' noise (``S``'s Cholesky factor is ``L
    diag(exp(log_scale))``); without it, ``L = I`` and the noise is
    diagonal. With ``leverage``, ``h(c) = offset + (c - center)^T M (c -
    center)`` is the fit's leverage of the row c, the variance of its
    estimate ``W c + b`` in units of the noise's, which grows away from the
    training rows (quadratically in the distance); without it, ``h = 0``.
    """

    def __init__(self, n_features: int, context_features: int, leverage: bool = False, mixing: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_features, context_features))
        self.bias = nn.Parameter(torch.zeros(n_features))
        self.log_scale = nn.Parameter(torch.zeros(n_features))
        self.leverage = bool(leverage)
        if self.leverage:
            self.register_buffer("context_center", torch.zeros(context_features))
            self.register_buffer("leverage_matrix", torch.zeros(context_features, context_features))
            self.register_buffer("leverage_offset", torch.zeros(1))  # 1-D: the safe format stores no 0-d arrays
        self.mixing = bool(mixing)
        if self.mixing:
            self.register_buffer("noise_mixing", torch.eye(n_features))

    def _shift(self, context: Context) -> torch.Tensor:
        if isinstance(context, IndexedContext):  # once per distinct row
            return torch.addmm(self.bias, context.rows, self.weight.T).index_select(0, context.index)
        return torch.addmm(self.bias, context, self.weight.T)

    def _log_scale(self, context: Context) -> torch.Tensor:
        """log(exp(log_scale) sqrt(1 + h(c))), per row and feature (a row of log_scale without leverage)."""
        if not self.leverage:
            return self.log_scale.unsqueeze(0)
        rows = context.rows if isinstance(context, IndexedContext) else context
        centred = rows - self.context_center
        half_log_spread = 0.5 * torch.log1p(self.leverage_offset + ((centred @ self.leverage_matrix) * centred).sum(1))
        if isinstance(context, IndexedContext):
            half_log_spread = half_log_spread.index_select(0, context.index)
        return self.log_scale + half_log_spread.unsqueeze(1)

    def forward(self, x, context=None):
        log_scale = self._log_scale(context)
        noise = x - self._shift(context)
        if self.mixing:  # rows times L^-T: each row's L^-1 (x - shift)
            noise = torch.linalg.solve_triangular(
                self.noise_mixing.T, noise, upper=True, left=False, unitriangular=True
            )
        z = noise * torch.exp(-log_scale)
        return z, (-log_scale.sum(1)).expand(x.shape[0])

    def inverse(self, z, context=None):
        log_scale = self._log_scale(context)
        noise = z * torch.exp(log_scale)
        if self.mixing:
            noise = noise @ self.noise_mixing.T
        return noise + self._shift(context), log_scale.sum(1).expand(z.shape[0])

    def check(self) -> None:
        """Raise ``ValueError`` unless ``noise_mixing`` (where there is one) is finite and unit lower-triangular, as
        forward and inverse both take it."""
        if not self.mixing:
            return
        mixing = self.noise_mixing
        unit_lower = torch.tril(mixing, -1) + torch.eye(mixing.shape[0], dtype=mixing.dtype, device=mixing.device)
        if not (bool(torch.isfinite(mixing).all()) and torch.equal(mixing, unit_lower)):
            raise ValueError("a linear shift's noise_mixing must be finite and unit lower-triangular")

    @classmethod
    def from_numbers(cls, numbers: LinearShiftNumbers) -> LinearShift:
        """The layer holding ``numbers`` (in the default dtype until the flow is cast)."""
        weight = np.asarray(numbers.weight, dtype=np.float64)
        layer = cls(*weight.shape, leverage=numbers.leverage is not None, mixing=numbers.mixing is not None)
        values = {"weight": weight, "bias": numbers.bias, "log_scale": numbers.log_scale}
        if numbers.leverage is not None:
            values.update(zip(("context_center", "leverage_matrix", "leverage_offset"), numbers.leverage, strict=True))
        if numbers.mixing is not None:
            values["noise_mixing"] = numbers.mixing
        state = layer.state_dict()
        layer.load_state_dict(
            {name: torch.as_tensor(np.asarray(v, np.float64)).reshape(state[name].shape) for name, v in values.items()}
        )
        return layer
