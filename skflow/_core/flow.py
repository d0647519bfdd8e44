"""A normalizing flow: fixed fitted preprocessing, learned bijections, a base density.

log p(x | c) = log p_base(f(x; c)) + sum_layers log|det J_layer|
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .autoregressive import AutoregressiveSpline
from .base import GaussianMixtureBase, StandardNormal, StudentTMixtureBase
from .couplings import AffineCoupling, SplineCoupling
from .fixed import AsinhTails, Standardize, ToUnbounded, YeoJohnson
from .mixture_cdf import MixtureCDFCoupling
from .student_t import MultivariateStudentToNormal, StudentToNormal
from .transforms import Context, LinearShift, LinearShiftNumbers, LULinear, Permutation, Transform

FLOW_KINDS = ("spline", "affine", "autoregressive", "mixture_cdf")
MIXINGS = ("lu", "permutation")


@dataclass(frozen=True)
class FlowSpec:
    """The learned layers' architecture, with the defaults every caller shares.

    ``mixing`` is the invertible linear map between couplings: a learned
    ``"lu"`` (the estimators') or a fixed random ``"permutation"`` (zuko's and
    nflows' coupling flows; the speed benchmark compares with them at equal
    architecture).
    """

    flow: str = "spline"
    n_transforms: int = 5
    hidden_units: tuple[int, ...] = (64, 64)
    n_bins: int = 8
    tail_bound: float = 5.0
    mixing: str = "lu"

    def __post_init__(self):
        if self.flow not in FLOW_KINDS:
            raise ValueError(f"flow must be one of {FLOW_KINDS}, got {self.flow!r}")
        if self.mixing not in MIXINGS:
            raise ValueError(f"mixing must be one of {MIXINGS}, got {self.mixing!r}")


class Flow(nn.Module):
    """``preprocessing`` (fixed, fitted) then ``transforms`` (learned), from data x to latent z ~ ``base``.

    The fixed part holds the fitted statistics as buffers and has no
    parameters; training optimizes the learned part (and the base, if it has
    parameters) on rows that went through the fixed part once. ``config``
    holds the plain (JSON-serializable) arguments that rebuild the flow's
    structure (:func:`flow_from_config`); the fitted numbers and weights are in
    its ``state_dict``.
    """

    def __init__(
        self,
        preprocessing: Sequence[Transform],
        transforms: Sequence[Transform],
        base: nn.Module,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.preprocessing = nn.ModuleList(preprocessing)
        self.transforms = nn.ModuleList(transforms)
        self.base = base
        self.config = dict(config or {})

    @staticmethod
    def _chain(layers, x: torch.Tensor, context: Context, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        log_abs_det = None  # no zeros to start from: one addition less per pass, forward and backward
        for layer in reversed(layers) if inverse else layers:
            x, ladj = layer.inverse(x, context) if inverse else layer(x, context)
            log_abs_det = ladj if log_abs_det is None else log_abs_det + ladj
        if log_abs_det is None:
            return x, x.new_zeros(x.shape[0])
        return x, log_abs_det

    def preprocess(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed part: data to the rows the learned part sees, and its log|det| per row."""
        return self._chain(self.preprocessing, x, None, inverse=False)

    def _learned_dtype(self, default: torch.dtype) -> torch.dtype:
        """The learned part's dtype: float32 while it trains, while the fixed part stays in float64."""
        return next((p.dtype for p in self.transforms.parameters()), default)

    def forward(self, x: torch.Tensor, context: Context = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Map data to latent; return z and log|det dz/dx| per row."""
        u, fixed_log_abs_det = self.preprocess(x)
        dtype = self._learned_dtype(u.dtype)
        context = context.to(dtype) if context is not None else None
        z, learned_log_abs_det = self._chain(self.transforms, u.to(dtype), context, inverse=False)
        return z, fixed_log_abs_det + learned_log_abs_det.to(fixed_log_abs_det.dtype)

    def inverse(self, z: torch.Tensor, context: Context = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Map latent to data; return x and log|det dx/dz| per row."""
        u, learned_log_abs_det = self._chain(self.transforms, z, context, inverse=True)
        x, fixed_log_abs_det = self._chain(self.preprocessing, u, None, inverse=True)
        return x, learned_log_abs_det + fixed_log_abs_det

    def log_prob(self, x: torch.Tensor, context: Context = None) -> torch.Tensor:
        """log p(x | context) per row, in the units of x."""
        z, log_abs_det = self(x, context)
        return self.base.log_prob(z) + log_abs_det

    def learned_log_prob(self, u: torch.Tensor, context: Context = None) -> torch.Tensor:
        """log-density of preprocessed rows ``u``: what training maximizes (the fixed log-det is a constant)."""
        z, log_abs_det = self._chain(self.transforms, u, context, inverse=False)
        return self.base.log_prob(z) + log_abs_det

    @torch.no_grad()
    def sample(self, n_samples: int, generator: torch.Generator | None = None, context: Context = None) -> torch.Tensor:
        """``n_samples`` draws; with a context, one draw per context row (``n_samples`` must match)."""
        if context is not None and context.shape[0] != n_samples:
            raise ValueError(f"context has {context.shape[0]} rows for {n_samples} samples")
        reference = next(t for t in self.state_dict().values() if t.is_floating_point())
        z = self.base.sample(n_samples, generator, reference.dtype, reference.device)
        return self.inverse(z, context)[0]


def _tensor(values, n_features: int, fill: float) -> torch.Tensor:
    if values is None:
        return torch.full((n_features,), fill, dtype=torch.float64)
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def preprocessing_layers(
    n_features: int, low, high, loc, scale, lower_tails, upper_tails, power=None, power_loc=None, power_scale=None
) -> list[Transform]:
    """``[ToUnbounded] -> Standardize -> [AsinhTails] -> [YeoJohnson -> [Standardize]]``; the bracketed ones
    only where some column needs them (``power``: the Yeo-Johnson lambdas, None for none; ``power_loc``,
    ``power_scale``: the standardization of its output, None for none)."""
    low_t, high_t = _tensor(low, n_features, -np.inf), _tensor(high, n_features, np.inf)
    layers: list[Transform] = []
    if bool(torch.isfinite(low_t).any() or torch.isfinite(high_t).any()):
        layers.append(ToUnbounded(low_t, high_t))
    layers.append(Standardize(_tensor(loc, n_features, 0.0), _tensor(scale, n_features, 1.0)))
    lower_t = _tensor(lower_tails, n_features, 0.0).bool()
    upper_t = _tensor(upper_tails, n_features, 0.0).bool()
    if bool(lower_t.any() or upper_t.any()):
        layers.append(AsinhTails(lower_t, upper_t))
    if power is not None:
        layers.append(YeoJohnson(_tensor(power, n_features, 1.0)))
        if power_loc is not None:
            layers.append(Standardize(_tensor(power_loc, n_features, 0.0), _tensor(power_scale, n_features, 1.0)))
    return layers


def _learned_layers(
    n_features: int, spec: FlowSpec, context_features: int, generator: torch.Generator
) -> list[Transform]:
    """``(mixing -> coupling) x n_transforms``; coupling masks alternate between the two halves of the features.

    ``flow="autoregressive"`` puts an autoregressive spline where the coupling
    would be, its feature order reversed every other layer.
    """
    layers: list[Transform] = []
    parity = torch.arange(n_features) % 2
    for i in range(spec.n_transforms):
        if n_features > 1:
            if spec.mixing == "lu":
                layers.append(LULinear(n_features))
            else:
                layers.append(Permutation(torch.randperm(n_features, generator=generator)))
        mask = parity == (i % 2) if n_features > 1 else torch.ones(1, dtype=torch.bool)
        if spec.flow == "autoregressive":
            layers.append(
                AutoregressiveSpline(
                    n_features,
                    spec.hidden_units,
                    spec.n_bins,
                    spec.tail_bound,
                    context_features,
                    reverse=i % 2 == 1,
                    generator=generator,
                )
            )
        elif spec.flow == "spline":
            layers.append(
                SplineCoupling(
                    mask, spec.hidden_units, spec.n_bins, spec.tail_bound, context_features, generator=generator
                )
            )
        elif spec.flow == "mixture_cdf":
            layers.append(
                MixtureCDFCoupling(mask, spec.hidden_units, context_features=context_features, generator=generator)
            )
        else:
            layers.append(AffineCoupling(mask, spec.hidden_units, context_features, generator=generator))
    return layers


def build_flow(
    n_features: int,
    *,
    context_features: int = 0,
    low=None,
    high=None,
    loc=None,
    scale=None,
    lower_tails=None,
    upper_tails=None,
    power=None,
    power_loc=None,
    power_scale=None,
    seed: int = 0,
    mixture: tuple[Any, Any, Any] | None = None,
    degrees_of_freedom: float | None = None,
    linear_shift: tuple | None = None,
    **spec: Any,
) -> Flow:
    """Build a flow whose learned layers start at the identity.

    Parameters
    ----------
    n_features : int
    context_features : int, default=0
        Columns of the context every conditioner sees (0: an unconditional flow).
    low, high : array of shape (n_features,) or None
        Fitted bounds (``-inf``/``inf`` where a column has none).
    loc, scale : array of shape (n_features,) or None
        Fitted standardization (after the bounds map).
    lower_tails, upper_tails : bool array of shape (n_features,) or None
        Columns whose standardized lower / upper tail goes through ``asinh``.
    power : array of shape (n_features,) or None
        Yeo-Johnson lambdas in [0, 2] of a fixed power map after the
        standardization (1: the identity); None: no such layer.
    power_loc, power_scale : array of shape (n_features,) or None
        Standardization of the power map's output (so that the splines'
        ``[-tail_bound, tail_bound]`` covers it); None: no such layer.
    seed : int
        Seeds the initial weights through a local ``torch.Generator``
        (torch's global generator, shared by all threads, is left alone).
    **spec
        :class:`FlowSpec` fields (``flow``, ``n_transforms``, ...).
    mixture : (weights, means, precisions_cholesky) or None, default=None
        A learnable Gaussian-mixture base (:class:`GaussianMixtureBase`) with
        these numbers, as ``sklearn.mixture.GaussianMixture(covariance_type=
        "full")`` fits them in the preprocessed space: weights (K,), means
        (K, n_features), upper-triangular precision Cholesky factors (K,
        n_features, n_features). None: the standard normal.
    degrees_of_freedom : float > 2 or None, default=None
        With ``mixture``: Student t components of these degrees of freedom
        and the same covariances (:class:`StudentTMixtureBase`); None:
        Gaussian components.
    linear_shift : LinearShiftNumbers, a tuple of its fields, or None, default=None
        A conditional flow's last learned layer, a :class:`LinearShift` with
        these numbers: weight (n_features, context_features), bias and
        log_scale (n_features,), optionally leverage, ``(center, matrix,
        offset)``, the layer's context-dependent scale, mixing, the unit
        lower-triangular factor that correlates the features' noise, and
        degrees_of_freedom: the noise is Student's t (a
        :class:`StudentToNormal` follows the layer; for several features
        the multivariate t, radially). None: no such layer.

    The untrained flow is the preprocessing followed by the base density.
    ``config["base"]`` records the base's kind (and its number of components and
    degrees of freedom).
    """
    spec_ = FlowSpec(**{**spec, "hidden_units": tuple(int(h) for h in spec.get("hidden_units", FlowSpec.hidden_units))})
    generator = torch.Generator().manual_seed(int(seed))
    preprocessing = preprocessing_layers(
        n_features, low, high, loc, scale, lower_tails, upper_tails, power, power_loc, power_scale
    )
    learned = _learned_layers(n_features, spec_, int(context_features), generator)
    if linear_shift is not None:
        linear_shift = LinearShiftNumbers(*linear_shift)
        if not context_features:
            raise ValueError("a linear shift needs a context")
        if np.shape(linear_shift.weight) != (n_features, int(context_features)):
            raise ValueError(
                f"a linear shift of {n_features} feature(s) on {context_features} context column(s) needs "
                f"a weight of that shape, not {np.shape(linear_shift.weight)}"
            )
        for layer in learned:  # the ridge regression's flow: its other layers are the identity
            if isinstance(layer, MixtureCDFCoupling):
                layer.set_identity()
        learned.append(LinearShift.from_numbers(linear_shift))
        if linear_shift.degrees_of_freedom is not None:
            student = StudentToNormal if n_features == 1 else MultivariateStudentToNormal
            learned.append(student(linear_shift.degrees_of_freedom))
    config = dict(
        n_features=int(n_features),
        context_features=int(context_features),
        **{**asdict(spec_), "hidden_units": list(spec_.hidden_units)},
        bounded=any(isinstance(layer, ToUnbounded) for layer in preprocessing),
        tails=any(isinstance(layer, AsinhTails) for layer in preprocessing),
        power=any(isinstance(layer, YeoJohnson) for layer in preprocessing),
        power_standardized=power is not None and power_loc is not None,
        linear_shift=linear_shift is not None,
    )
    # Absent (flows saved before these parts existed): no such part.
    if linear_shift is not None and linear_shift.leverage is not None:
        config["linear_shift_leverage"] = True
    if linear_shift is not None and linear_shift.mixing is not None:
        config["linear_shift_mixing"] = True
    if linear_shift is not None and linear_shift.degrees_of_freedom is not None:
        config["linear_shift_student"] = True
    if mixture is None:
        base: nn.Module = StandardNormal(n_features)
        config["base"] = {"kind": "normal"}
    else:
        if degrees_of_freedom is None:
            base = GaussianMixtureBase.from_mixture(*mixture)
        else:
            base = StudentTMixtureBase.from_mixture(*mixture, degrees_of_freedom=degrees_of_freedom)
        if base.n_features != n_features:
            raise ValueError(f"the mixture has {base.n_features} feature(s), the flow {n_features}")
        config["base"] = {"kind": "mixture", "n_components": base.n_components}
        if degrees_of_freedom is not None:
            config["base"]["degrees_of_freedom"] = base.degrees_of_freedom
    return Flow(preprocessing, learned, base, config)


def placeholder_mixture(n_components: int, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal weights, zero means, identity precisions: a mixture's shape, for a state dict to fill."""
    k, d = int(n_components), int(n_features)
    return np.full(k, 1.0 / k), np.zeros((k, d)), np.broadcast_to(np.eye(d), (k, d, d)).copy()


def flow_from_config(config: dict[str, Any]) -> Flow:
    """Rebuild the structure that ``config`` describes; load a ``state_dict`` into it for the fitted numbers."""
    kwargs = dict(config)
    n_features = kwargs.pop("n_features")
    # Placeholders that only mark which fixed layers exist: the state_dict fills them.
    bounded, tails = kwargs.pop("bounded", False), kwargs.pop("tails", False)
    low = np.where(np.arange(n_features) == 0, 0.0, -np.inf) if bounded else None
    flags = np.ones(n_features, dtype=bool) if tails else None
    power = np.ones(n_features) if kwargs.pop("power", False) else None
    # Flows saved before the power map's output was standardized have no such layer.
    power_standardized = kwargs.pop("power_standardized", False)
    power_loc, power_scale = (np.zeros(n_features), np.ones(n_features)) if power_standardized else (None, None)
    # No "base" (configs written before the mixture base existed): the standard normal.
    base = kwargs.pop("base", None) or {"kind": "normal"}
    if not isinstance(base, dict) or base.get("kind") not in ("normal", "mixture"):
        raise ValueError(f"unknown base {base!r}")
    mixture = placeholder_mixture(base["n_components"], n_features) if base["kind"] == "mixture" else None
    degrees_of_freedom = base.get("degrees_of_freedom")  # absent: Gaussian components
    linear_shift = None
    if kwargs.pop("linear_shift", False):
        context_features = int(kwargs.get("context_features", 0))
        leverage = None
        if kwargs.pop("linear_shift_leverage", False):
            leverage = (np.zeros(context_features), np.zeros((context_features, context_features)), 0.0)
        mixing = np.eye(n_features) if kwargs.pop("linear_shift_mixing", False) else None
        student = 1e6 if kwargs.pop("linear_shift_student", False) else None  # its state holds the number
        zeros = (np.zeros((n_features, context_features)), np.zeros(n_features), np.zeros(n_features))
        linear_shift = LinearShiftNumbers(*zeros, leverage, mixing, student)
    fixed_layers = dict(
        low=low, lower_tails=flags, upper_tails=flags, power=power, power_loc=power_loc, power_scale=power_scale
    )
    return build_flow(
        n_features,
        **fixed_layers,
        mixture=mixture,
        degrees_of_freedom=degrees_of_freedom,
        linear_shift=linear_shift,
        **kwargs,
    )


def upgrade_version_1(config: dict[str, Any], state_dict: dict[str, torch.Tensor]):
    """The config and state_dict of a flow saved by skflow's file format version 1, in today's layout.

    Version 1 kept every layer in one list (``[ToUnbounded] Standardize
    [AsinhTails] (LULinear coupling) x n``), an ``AsinhTails.mask`` for both
    tails, and an unused ``LULinear.strict_lower_mask``.
    """
    config = dict(config)
    if config.pop("residual", False) or config.pop("actnorm", False):
        raise ValueError("the flow uses residual conditioners or ActNorm, which this skflow no longer builds")
    config.pop("seed", None)
    config["tails"] = bool(config.pop("asinh_tails", False))
    config.setdefault("context_features", 0)
    n_fixed = 1 + int(config.get("bounded", False)) + int(config["tails"])
    upgraded = {}
    for key, value in state_dict.items():
        _, index, rest = key.split(".", 2)
        if rest == "strict_lower_mask":
            continue
        if int(index) < n_fixed:
            if rest == "mask":  # AsinhTails: the same columns on both sides
                upgraded[f"preprocessing.{index}.lower"] = value
                upgraded[f"preprocessing.{index}.upper"] = value
                continue
            upgraded[f"preprocessing.{index}.{rest}"] = value
        else:
            upgraded[f"transforms.{int(index) - n_fixed}.{rest}"] = value
    return config, upgraded
