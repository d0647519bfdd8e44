"""Device selection, tensor <-> numpy conversion, and the CPU thread setting for training."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np
import torch

# Not "mps": the fixed maps compute in float64, which MPS does not have.
SUPPORTED_DEVICE_TYPES = ("cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when it is available. Asking for CUDA on a machine
    without it is an error, not a silent fallback.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a valid torch device: {exc}") from None
    if resolved.type not in SUPPORTED_DEVICE_TYPES:
        reason = "; the fixed maps compute in float64, which MPS lacks" if resolved.type == "mps" else ""
        raise ValueError(f"device={device!r} is not supported: use 'auto', 'cpu' or 'cuda' (or 'cuda:N'){reason}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine; use 'auto' or 'cpu'"
        )
    return resolved


def loadable_device(device: torch.device) -> torch.device:
    """The device a persisted model can live on here: its own, or the CPU."""
    if device.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return device


def to_tensor(array: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        # torch cannot share read-only memory (memmaps, pandas views): copy it.
        array = array.copy()
    return torch.as_tensor(array, dtype=dtype, device=device)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy()


_threads_lock = threading.Lock()
_single_threaded_users = 0
_saved_num_threads = 1


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch's CPU operations on one intra-op thread inside the block, then restore the setting.

    A training step of a small flow is thousands of tiny operations. With
    several threads each one waits for all of them to be scheduled: measured on
    a 2-core CPU, one thread was within 15% of two on an idle machine, and a
    2,000-row fit took 370 s instead of 40 s with two threads while another
    process used the cores. Like scikit-learn's ``threadpool_limits`` around
    its own fits, this is process-wide; nested or concurrent blocks restore
    the setting only when the last one exits.
    """
    global _single_threaded_users, _saved_num_threads
    with _threads_lock:
        if _single_threaded_users == 0:
            _saved_num_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _single_threaded_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _single_threaded_users -= 1
            if _single_threaded_users == 0:
                torch.set_num_threads(_saved_num_threads)
