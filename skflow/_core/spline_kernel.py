"""The coupling layers' spline as compiled code on the CPU, built at first use, with PyTorch as the fallback.

At training sizes the PyTorch spline costs its ~100 tensor operations' fixed
overhead a layer, not its arithmetic (``docs/benchmarks.md``, "faster training
steps"). ``spline_kernel.c`` computes the same map and gradient element by
element, one pass over the rows each way, built at first use (:mod:`.c_build`).
Where it cannot be built, the tensors are not on the CPU or
``SKFLOW_COMPILED_SPLINE=0`` (or ``SKFLOW_COMPILED=0``) is set, :func:`load`
returns None and the PyTorch code runs; both compute the same numbers up to
rounding (``tests/test_spline_kernel.py``).
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch

from . import c_build

SOURCE = Path(__file__).with_name("spline_kernel.c")


def enabled() -> bool:
    """False when ``SKFLOW_COMPILED_SPLINE=0`` or ``SKFLOW_COMPILED=0``: always the PyTorch spline."""
    return c_build.enabled("SKFLOW_COMPILED_SPLINE")


@functools.cache
def _library(dtype: torch.dtype) -> ctypes.CDLL | None:
    return c_build.build(SOURCE, dtype, _declared)


def _declared(library: ctypes.CDLL) -> ctypes.CDLL:
    """The library with its functions' argument and result types, which ctypes needs to pass int64 and doubles."""
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    shape = [size, size, size, pointer, size, ctypes.c_double]
    library.coupling_spline_forward.argtypes = [*shape, pointer, pointer, pointer, pointer, pointer]
    library.coupling_spline_backward.argtypes = [*shape, pointer, pointer, pointer, pointer, pointer, pointer, pointer]
    library.coupling_spline_forward.restype = library.coupling_spline_backward.restype = None
    library.max_bins.restype = ctypes.c_int
    library.bins_limit = library.max_bins()  # read once here, not at every layer call
    return library


def load(x: torch.Tensor, params: torch.Tensor) -> ctypes.CDLL | None:
    """The compiled spline for rows ``x`` and ``params`` (features, 3K - 1, rows), or None: the PyTorch one runs."""
    if not c_build.usable(x, params) or not enabled():
        return None
    library = _library(x.dtype)
    if library is None or (params.shape[-2] + 1) // 3 > library.bins_limit:
        return None
    return library


def _shape(x: torch.Tensor, transformed: torch.Tensor, n_bins: int, bound: float) -> list:
    n_rows, n_columns = x.shape
    return [n_rows, n_columns, len(transformed), transformed.data_ptr(), n_bins, bound]


def forward(
    library: ctypes.CDLL,
    x: torch.Tensor,
    params: torch.Tensor,
    transformed: torch.Tensor,
    bound: float,
    for_backward: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The rows with the ``transformed`` features through the spline, the log-det per row, and (with
    ``for_backward``) the bins' probabilities that :func:`backward` takes.

    Shapes as :func:`~skflow._core.splines.coupling_spline`'s; every tensor contiguous, ``transformed`` int64.
    """
    n_bins = (params.shape[1] + 1) // 3
    y = x.clone()
    log_det = x.new_empty(x.shape[0])
    probabilities = x.new_empty((len(transformed), 2 * n_bins, x.shape[0])) if for_backward else None
    library.coupling_spline_forward(
        *_shape(x, transformed, n_bins, bound),
        x.data_ptr(),
        params.data_ptr(),
        y.data_ptr(),
        log_det.data_ptr(),
        None if probabilities is None else probabilities.data_ptr(),
    )
    return y, log_det, probabilities


def backward(
    library: ctypes.CDLL,
    x: torch.Tensor,
    params: torch.Tensor,
    probabilities: torch.Tensor,
    transformed: torch.Tensor,
    bound: float,
    grad_y: torch.Tensor,
    grad_log_det: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the rows and of the parameters, given those of :func:`forward`'s outputs (contiguous)."""
    n_bins = (params.shape[1] + 1) // 3
    grad_x = grad_y.clone()
    grad_params = torch.empty_like(params)
    library.coupling_spline_backward(
        *_shape(x, transformed, n_bins, bound),
        x.data_ptr(),
        params.data_ptr(),
        probabilities.data_ptr(),
        grad_y.data_ptr(),
        grad_log_det.data_ptr(),
        grad_x.data_ptr(),
        grad_params.data_ptr(),
    )
    return grad_x, grad_params
