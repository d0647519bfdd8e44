"""The mixture-CDF coupling's elementwise map as compiled code on the CPU, with PyTorch as the fallback.

At training sizes :class:`~skflow._core.mixture_cdf.MixtureCDFCoupling`'s
PyTorch code costs its ~40 tensor operations' fixed overhead a layer each
way, not its arithmetic. ``mixture_cdf_kernel.c`` computes the forward map,
its log-derivatives and their closed-form gradient entry by entry, built at
first use (:mod:`.c_build`). Where it cannot be built, the tensors are not
on the CPU, an entry lies beyond ~35 standard deviations of the latent (the
kernel leaves such calls to the PyTorch code, exact in any tail) or
``SKFLOW_COMPILED=0`` is set, the PyTorch code runs; both compute the same
numbers up to rounding (``tests/test_mixture_cdf_kernel.py``). The inverse
(a root solve, for prediction) is always PyTorch's.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch

from . import c_build

SOURCE = Path(__file__).with_name("mixture_cdf_kernel.c")


@functools.cache
def _library(dtype: torch.dtype) -> ctypes.CDLL | None:
    return c_build.build(SOURCE, dtype, _declared)


def _declared(library: ctypes.CDLL) -> ctypes.CDLL:
    """The library with its functions' argument and result types, which ctypes needs to pass int64 and doubles."""
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    shape = [size, size, size, ctypes.c_double, ctypes.c_double]
    library.mixture_cdf_forward.argtypes = [*shape, *[pointer] * 4]
    library.mixture_cdf_forward.restype = size
    library.mixture_cdf_backward.argtypes = [*shape, *[pointer] * 7]
    library.mixture_cdf_backward.restype = None
    library.max_components.restype = ctypes.c_int
    library.components_limit = library.max_components()
    return library


def load(x: torch.Tensor, params: torch.Tensor) -> ctypes.CDLL | None:
    """The compiled map for entries ``x`` (D, N) and ``params`` (D, 3K, N), or None: the PyTorch code runs."""
    if not c_build.usable(x, params) or not c_build.enabled():
        return None
    library = _library(x.dtype)
    if library is None or params.shape[-2] // 3 > library.components_limit:
        return None
    return library


def forward(
    library: ctypes.CDLL, x: torch.Tensor, params: torch.Tensor, log_scale_bounds: tuple[float, float]
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``z`` and the log-derivatives, each (D, N), for contiguous ``x`` and ``params`` whose log-scales are clamped
    to ``log_scale_bounds``; None where some entry is beyond the kernel's range (or NaN), for the PyTorch code."""
    z, log_derivative = torch.empty_like(x), torch.empty_like(x)
    n_features, n_rows = x.shape
    left = library.mixture_cdf_forward(
        n_rows,
        n_features,
        params.shape[1] // 3,
        *log_scale_bounds,
        x.data_ptr(),
        params.data_ptr(),
        z.data_ptr(),
        log_derivative.data_ptr(),
    )
    return None if left else (z, log_derivative)


def backward(
    library: ctypes.CDLL,
    x: torch.Tensor,
    params: torch.Tensor,
    log_scale_bounds: tuple[float, float],
    z: torch.Tensor,
    grad_z: torch.Tensor,
    grad_log_derivative: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``x`` and ``params`` given those of :func:`forward`'s outputs (every tensor contiguous)."""
    grad_x, grad_params = torch.empty_like(x), torch.empty_like(params)
    n_features, n_rows = x.shape
    library.mixture_cdf_backward(
        n_rows,
        n_features,
        params.shape[1] // 3,
        *log_scale_bounds,
        *(t.data_ptr() for t in (x, params, z, grad_z, grad_log_derivative, grad_x, grad_params)),
    )
    return grad_x, grad_params
