"""The coupling layers' spline as compiled code on the CPU, built at first use, with PyTorch as the fallback.

At training sizes the PyTorch spline costs its ~100 tensor operations' fixed
overhead a layer, not its arithmetic (``docs/benchmarks.md``, "faster training
steps"). ``spline_kernel.c`` computes the same map and gradient element by
element, one pass over the rows each way. It is compiled with the system's C
compiler (``$CC``, else ``cc``) the first time a process needs it, once for
float32 and once for float64, into a cache folder (``$SKFLOW_CACHE_DIR``, else
``~/.cache/skflow``), and loaded with :mod:`ctypes`: no build step at install
and no dependency. Where there is no compiler, the build fails, the tensors are
not on the CPU or ``SKFLOW_COMPILED_SPLINE=0`` is set, :func:`load` returns
None and the PyTorch code runs; both compute the same numbers up to rounding
(``tests/test_spline_kernel.py``).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("spline_kernel.c")
_PRECISION_FLAGS = {torch.float32: ["-DSINGLE_PRECISION"], torch.float64: []}
_BUILD_LOCK = threading.Lock()


def enabled() -> bool:
    """False when ``SKFLOW_COMPILED_SPLINE=0``: always the PyTorch spline (for comparisons and troubleshooting)."""
    return os.environ.get("SKFLOW_COMPILED_SPLINE", "1") != "0"


def cache_dir() -> Path:
    """Where builds are kept: ``$SKFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/skflow`` or ``~/.cache/skflow``."""
    if "SKFLOW_CACHE_DIR" in os.environ:
        return Path(os.environ["SKFLOW_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "skflow"


@functools.cache
def _cpu_features() -> str:
    """What -march=native compiles for: the CPU's model and feature flags where the system says them."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _compile(dtype: torch.dtype) -> Path:
    """The shared library for ``dtype``, built unless a build of the same source and flags is cached."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        raise OSError("no C compiler")
    # -march=native: the vector width of this CPU (AVX2 doubles the speed of SSE2's); the build's name holds
    # the CPU's features, so machines of a cluster that share the cache folder each build their own.
    # -fno-trapping-math lets the selections vectorize (floating-point traps are off in Python anyway).
    flags = ["-O3", "-march=native", "-fno-trapping-math", "-fno-math-errno", "-shared", "-fPIC"]
    flags += _PRECISION_FLAGS[dtype]
    fingerprint = [SOURCE.read_bytes(), " ".join(flags).encode(), compiler.encode(), _cpu_features().encode()]
    key = hashlib.sha256(b"\0".join(fingerprint))
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"spline_kernel_{str(dtype).removeprefix('torch.')}_{key.hexdigest()[:16]}.so"
    if not target.exists():
        # Built under a temporary name and renamed: processes building at once never load half a file.
        handle, partial = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(handle)
        try:
            subprocess.run(
                [compiler, *flags, "-o", partial, str(SOURCE), "-lm"], check=True, capture_output=True, timeout=120
            )
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    return target


@functools.cache
def _library(dtype: torch.dtype) -> ctypes.CDLL | None:
    if sys.platform == "win32":
        return None
    try:
        with _BUILD_LOCK:
            library = ctypes.CDLL(str(_compile(dtype)))
    except (OSError, RuntimeError, subprocess.SubprocessError):
        # No compiler, a failed build, no writable cache folder, no home folder (RuntimeError): an
        # optional speed-up is missing, not an error.
        return None
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
    if x.device.type != "cpu" or x.dtype not in _PRECISION_FLAGS or params.dtype != x.dtype or not enabled():
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
