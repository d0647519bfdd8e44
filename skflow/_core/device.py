"""Device selection and tensor <-> numpy conversion."""

from __future__ import annotations

import numpy as np
import torch


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
