"""Autoregressive rational-quadratic splines: every feature's spline conditioned on the features before it.

A coupling layer transforms half of the features given the other half; an
autoregressive layer transforms feature i given features 0..i-1 (MADE masks,
Germain et al. 2015; the spline flow of Durkan et al. 2019, zuko's ``NSF``).
The density is one pass of the network, like a coupling layer's; the inverse
(``sample``, ``inverse_transform``) needs one pass per feature, since feature
i's spline is known only once features 0..i-1 are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .nn import _initialized_linear
from .splines import coupling_spline, n_spline_params, spline
from .transforms import Context, Transform, expanded_context


class MADE(nn.Module):
    """An MLP whose output block i sees only the inputs of degree < i's (masked weights).

    Inputs: ``n_features`` features of degrees ``order`` (a permutation of 1..n)
    and ``context_features`` context columns of degree 0 (seen by every output).
    Hidden units get degrees 1..n-1 in turn (0..n-1 with a context, so that
    the first feature sees it too); output block i (``params_per_feature``
    values) has feature i's degree. The last layer starts at zero, so the layer
    starts as the identity.
    """

    def __init__(
        self,
        order: torch.Tensor,
        params_per_feature: int,
        hidden_units: Sequence[int],
        context_features: int = 0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        n = order.numel()
        degrees = torch.cat([order.long(), torch.zeros(context_features, dtype=torch.long)])
        sizes = [degrees.numel(), *hidden_units]
        self.hidden = nn.ModuleList(_initialized_linear(a, b, generator) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output = _initialized_linear(sizes[-1], n * params_per_feature, generator)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        masks = []
        for width in hidden_units:
            if context_features:
                hidden_degrees = torch.arange(width) % n
            else:
                hidden_degrees = torch.arange(width) % max(1, n - 1) + 1
            masks.append(hidden_degrees[:, None] >= degrees[None, :])
            degrees = hidden_degrees
        output_degrees = order.long().repeat_interleave(params_per_feature)
        masks.append(output_degrees[:, None] > degrees[None, :])
        # Not persistent: the masks follow from the config, and files stay the size of the weights.
        for i, mask in enumerate(masks):
            self.register_buffer(f"mask_{i}", mask.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = [*self.hidden, self.output]
        for i, layer in enumerate(layers):
            x = F.linear(x, layer.weight * getattr(self, f"mask_{i}"), layer.bias)
            if i < len(layers) - 1:
                x = torch.relu_(x)
        return x

    def features_major(self, x: torch.Tensor, outputs: slice | None = None) -> torch.Tensor:
        """The same map on transposed rows, ``x`` (inputs, N) to (outputs, N), as :meth:`MLP.features_major`.

        ``outputs``: only those rows of the output (one feature's block, when inverting: the other
        blocks' last-layer products are not computed).
        """
        layers = [*self.hidden, self.output]
        for i, layer in enumerate(layers):
            weight, bias, mask = layer.weight, layer.bias, getattr(self, f"mask_{i}")
            if i == len(layers) - 1 and outputs is not None:
                weight, bias, mask = weight[outputs], bias[outputs], mask[outputs]
            x = torch.addmm(bias.unsqueeze(-1), weight * mask, x)
            if i < len(layers) - 1:
                x = torch.relu_(x)
        return x


class AutoregressiveSpline(Transform):
    """Every feature through a monotonic spline whose parameters depend on the features before it.

    ``reverse`` orders the features last to first (alternate it between
    layers, as in MAF, so that each feature is conditioned on the others in
    some layer).
    """

    def __init__(
        self,
        n_features: int,
        hidden_units: Sequence[int],
        n_bins: int = 8,
        tail_bound: float = 5.0,
        context_features: int = 0,
        reverse: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        order = torch.arange(1, n_features + 1)
        order = order.flip(0) if reverse else order
        self.params_per_feature = n_spline_params(n_bins)
        self.conditioner = MADE(order, self.params_per_feature, hidden_units, context_features, generator)
        self.tail_bound = float(tail_bound)
        # Every feature goes through the spline: the coupling spline's call with all of them transformed.
        self.register_buffer("features", torch.arange(n_features), persistent=False)
        # The features by degree: the order in which the inverse can solve them.
        self.inversion_order = order.argsort().tolist()

    def _params(self, x: torch.Tensor, context: Context, feature: int | None = None) -> torch.Tensor:
        """Features-major, (features, params_per_feature, rows), the layout the splines run fastest in;
        with ``feature``, that feature's block only, (1, params_per_feature, rows)."""
        inputs = x if context is None else torch.cat([x, expanded_context(context)], dim=1)
        size = self.params_per_feature
        outputs = None if feature is None else slice(feature * size, (feature + 1) * size)
        n_blocks = x.shape[1] if feature is None else 1
        return self.conditioner.features_major(inputs.T, outputs).view(n_blocks, size, x.shape[0])

    def forward(self, x, context=None):
        return coupling_spline(x, self._params(x, context), self.features, self.tail_bound)

    def inverse(self, z, context=None):
        # A feature's spline depends only on the features of lower degree: solved in degree order,
        # each pass inverts one feature whose inputs are already exact, and its log-derivative is final.
        x = torch.zeros_like(z)
        context = expanded_context(context)  # once, not once per pass
        log_det = z.new_zeros(z.shape[0])
        for feature in self.inversion_order:
            params = self._params(x, context, feature)
            column, log_derivative = spline(z[:, feature].unsqueeze(0), params, self.tail_bound, inverse=True)
            x = x.index_copy(1, self.features[feature : feature + 1], column.T)
            log_det = log_det + log_derivative[0]
        return x, log_det
