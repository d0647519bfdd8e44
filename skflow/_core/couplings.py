"""Coupling layers: half of the features pass unchanged and parametrize an
elementwise bijection of the other half, so the Jacobian is triangular and its
log-determinant is the sum of the elementwise log-derivatives.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .nn import MLP, Constant
from .splines import coupling_spline, n_spline_params, spline
from .transforms import Context, IndexedContext, Transform, expanded_context

# Affine log-scales are squashed into (-SCALE_BOUND, SCALE_BOUND): one layer can
# stretch by at most e^3, so training cannot blow up through exp().
SCALE_BOUND = 3.0


class Coupling(Transform):
    """Shared machinery: split by ``mask`` (True = transformed), condition, merge.

    The conditioner sees the untransformed features and, when the flow is
    conditional, the ``context_features`` columns of the context. With nothing
    to condition on (one feature, no context), the conditioner is a learned
    constant and the layer is an elementwise transform.
    """

    params_per_feature: int

    def __init__(
        self,
        mask: torch.Tensor,
        hidden_units: Sequence[int],
        context_features: int = 0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        mask = mask.bool()
        self.register_buffer("transformed", torch.nonzero(mask).flatten())
        self.register_buffer("conditioning", torch.nonzero(~mask).flatten())
        n_out = int(mask.sum()) * self.params_per_feature
        n_in = int((~mask).sum()) + int(context_features)
        self.conditioner = MLP(n_in, n_out, hidden_units, generator) if n_in > 0 else Constant(n_out)

    def _elementwise(self, x: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Map the transformed half, features-major: x (D, N), params (D, params_per_feature, N).

        Return the mapped half and its elementwise log-derivatives, both (D, N).
        """
        raise NotImplementedError

    def _params(self, x: torch.Tensor, context: Context) -> torch.Tensor:
        """The conditioner's output for rows ``x`` (N, D), features-major: (len(transformed), params_per_feature, N)."""
        # The conditioner and the elementwise map work on transposed rows (features, N):
        # see splines.py for why; the matrix products take x.T without a copy.
        if isinstance(context, IndexedContext) and self.conditioning.numel() == 0:
            params = self.conditioner.features_major(context.rows.T).index_select(-1, context.index)
            return params.view(self.transformed.numel(), self.params_per_feature, x.shape[0])
        context = expanded_context(context)
        conditioning = x.T.index_select(0, self.conditioning)
        if context is not None:
            conditioning = torch.cat([conditioning, context.T], dim=0)
        params = self.conditioner.features_major(conditioning)
        return params.view(self.transformed.numel(), self.params_per_feature, x.shape[0])

    def _couple(self, x: torch.Tensor, context: Context, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        params = self._params(x, context)
        y_part, log_derivatives = self._elementwise(x.T.index_select(0, self.transformed), params, inverse)
        y = x.index_copy(1, self.transformed, y_part.T)
        return y, log_derivatives.sum(0)

    def forward(self, x, context=None):
        return self._couple(x, context, inverse=False)

    def inverse(self, z, context=None):
        return self._couple(z, context, inverse=True)


class AffineCoupling(Coupling):
    """RealNVP coupling (Dinh et al. 2017): z = x * exp(s(x_c)) + t(x_c)."""

    params_per_feature = 2

    def _elementwise(self, x, params, inverse):
        shift, raw_scale = params.unbind(-2)
        log_scale = SCALE_BOUND * torch.tanh(raw_scale / SCALE_BOUND)
        if inverse:
            return (x - shift) * torch.exp(-log_scale), -log_scale
        return x * torch.exp(log_scale) + shift, log_scale


class SplineCoupling(Coupling):
    """Rational-quadratic spline coupling (Durkan et al. 2019).

    Each transformed feature goes through a monotonic spline with ``n_bins`` bins
    on ``[-tail_bound, tail_bound]`` and identity tails outside.
    """

    def __init__(
        self,
        mask: torch.Tensor,
        hidden_units: Sequence[int],
        n_bins: int = 8,
        tail_bound: float = 5.0,
        context_features: int = 0,
        generator: torch.Generator | None = None,
    ):
        self.params_per_feature = n_spline_params(n_bins)
        super().__init__(mask, hidden_units, context_features, generator)
        self.tail_bound = float(tail_bound)

    def _elementwise(self, x, params, inverse):
        return spline(x, params, self.tail_bound, inverse=inverse)

    def forward(self, x, context=None):
        # One graph node for the spline, its gather and scatter of the features and the sum of the log-derivatives.
        return coupling_spline(x, self._params(x, context), self.transformed, self.tail_bound)
