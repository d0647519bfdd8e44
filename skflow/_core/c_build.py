"""Optional compiled kernels: C sources of this folder built at first use with the system's compiler.

A kernel's source is compiled with ``$CC`` (else ``cc``) the first time a
process needs it, once for float32 (``-DSINGLE_PRECISION``) and once for
float64, into a cache folder (``$SKFLOW_CACHE_DIR``, else
``~/.cache/skflow``), and loaded with :mod:`ctypes`: no build step at
install and no dependency. Where there is no compiler or the build fails,
:func:`build` returns None and the caller runs its PyTorch code.
``SKFLOW_COMPILED=0`` turns every kernel off (for comparisons and
troubleshooting).
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
from collections.abc import Callable
from pathlib import Path

import torch

PRECISION_FLAGS = {torch.float32: ["-DSINGLE_PRECISION"], torch.float64: []}
_BUILD_LOCK = threading.Lock()


def enabled(switch: str | None = None) -> bool:
    """False when ``SKFLOW_COMPILED=0``, or when the kernel's own ``switch`` variable is ``0``."""
    names = ["SKFLOW_COMPILED"] + ([switch] if switch else [])
    return all(os.environ.get(name, "1") != "0" for name in names)


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


def _compile(source: Path, dtype: torch.dtype) -> Path:
    """The shared library of ``source`` for ``dtype``, built unless a build of the same source and flags is cached."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        raise OSError("no C compiler")
    # -march=native: the vector width of this CPU (AVX2 doubles the speed of SSE2's); the build's name holds
    # the CPU's features, so machines of a cluster that share the cache folder each build their own.
    # -fno-trapping-math lets the selections vectorize (floating-point traps are off in Python anyway).
    flags = ["-O3", "-march=native", "-fno-trapping-math", "-fno-math-errno", "-shared", "-fPIC"]
    flags += PRECISION_FLAGS[dtype]
    fingerprint = [source.read_bytes(), " ".join(flags).encode(), compiler.encode(), _cpu_features().encode()]
    key = hashlib.sha256(b"\0".join(fingerprint))
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{source.stem}_{str(dtype).removeprefix('torch.')}_{key.hexdigest()[:16]}.so"
    if not target.exists():
        # Built under a temporary name and renamed: processes building at once never load half a file.
        handle, partial = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(handle)
        try:
            subprocess.run(
                [compiler, *flags, "-o", partial, str(source), "-lm"], check=True, capture_output=True, timeout=120
            )
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    return target


def build(source: Path, dtype: torch.dtype, declare: Callable[[ctypes.CDLL], ctypes.CDLL]) -> ctypes.CDLL | None:
    """The library of ``source`` for ``dtype``, loaded and passed through ``declare`` (which sets its functions'
    argument and result types), or None where it cannot be built (no compiler, a failed build, no writable cache
    folder, Windows): an optional speed-up is missing, not an error."""
    if sys.platform == "win32":
        return None
    try:
        with _BUILD_LOCK:
            library = ctypes.CDLL(str(_compile(source, dtype)))
    except (OSError, RuntimeError, subprocess.SubprocessError):  # RuntimeError: no home folder
        return None
    return declare(library)


def usable(x: torch.Tensor, params: torch.Tensor) -> bool:
    """Whether a kernel can take these tensors: on the CPU, float32 or float64, of one dtype."""
    return x.device.type == "cpu" and x.dtype in PRECISION_FLAGS and params.dtype == x.dtype
