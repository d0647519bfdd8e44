"""The archive layer of skflow's safe model files: limits, atomic writing, capped reading.

A model file is a zip archive of ``skflow.json`` and ``arrays/<n>.npy``
members (see :mod:`skflow._persistence`, which builds and reads the JSON).
Here the listing is checked against the limits below before any member is
read, members are read through a cap, and ``.npy`` members are parsed without
pickle and without trusting their headers.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import secrets
import stat
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np
import torch

from ._core.device import loadable_device
from ._version import __version__

FORMAT_NAME = "skflow-estimator"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
METADATA_MEMBER = "skflow.json"
ARRAY_PREFIX = "arrays/"
_ARRAY_NAME = re.compile(r"arrays/(0|[1-9][0-9]{0,5})\.npy")

# First bytes of a pickle stream (protocol 2+) and of a zip archive.
PICKLE_MAGIC = b"\x80"
ZIP_MAGIC = b"PK\x03\x04"

# Resource limits of the loader, checked on the archive listing before any member is read.
# Measured: a fitted FlowDensity with 64 features, 10 transforms and hidden units (512, 512)
# takes 51 MiB and expands 4.5-fold; one with 1,000 features (2 transforms, hidden (32,))
# takes 67 MiB and expands up to 285-fold (its LU factors and masks are mostly zeros and
# ones). A hidden array of zeros expands about 1,000-fold.
MAX_MEMBERS = 10_000  #: members in the archive
MAX_METADATA_BYTES = 16 * 2**20  #: size of skflow.json
MAX_ARRAY_BYTES = 256 * 2**20  #: uncompressed size of one array member
MAX_TOTAL_BYTES = 512 * 2**20  #: uncompressed size of all members together
MAX_COMPRESSION_RATIO = 500  #: uncompressed / compressed size of the archive, checked when over 16 MiB
_RATIO_CHECKED_FROM = 16 * 2**20

_DEVICE_TYPES = ("cpu", "cuda")
_registry: dict[str, type] = {}


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_safe_class(cls: type) -> type:
    """Class decorator: allow ``cls`` in model files (the estimators register themselves)."""
    _registry[_class_name(cls)] = cls
    return cls


def _safe_classes() -> dict[str, type]:
    """The only classes a file may name: skflow's own registered estimators."""
    return dict(_registry)


def _restore_device(saved: Any) -> torch.device:
    """The device a model saved on ``saved`` lives on here: its own, or the CPU with a warning."""
    try:
        device = torch.device(saved)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device_={saved!r} is not a device") from None
    if device.type not in _DEVICE_TYPES:
        raise ValueError(f"device_={saved!r} is not a device skflow runs on (one of {_DEVICE_TYPES})")
    here = loadable_device(device)
    if here != device:
        warnings.warn(
            f"model was fitted on {device}, which is not available here; loading it on the CPU",
            UserWarning,
            stacklevel=3,
        )
    return here


class _Encoder:
    """Turns an estimator state into JSON-able values plus a list of arrays."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.dropped_callbacks: list[str] = []  # callback parameters, code, stored as None
        # Equal arrays are written once (an ensemble's flows each hold the same boosted trees): content -> index.
        self._stored: dict[tuple[str, tuple[int, ...], bytes], int] = {}

    def _entry(self, key: str, value: Any, where: str) -> Any:
        """A state entry; the callback parameter (also of an ensemble's flows or a detector's density) is code,
        which the format does not store: it is saved as None."""
        if key == "callback" and callable(value) and not isinstance(value, type):
            self.dropped_callbacks.append(where)
            return None
        return self.encode(value, where)

    def _array(self, array: np.ndarray, kind: str) -> dict[str, Any]:
        if array.dtype.kind not in "biuf":
            if array.dtype.kind in "OU" and all(isinstance(v, str) for v in array.ravel()):
                return {"__strings__": array.tolist(), "dtype": "object" if array.dtype.kind == "O" else "str"}
            raise TypeError(f"cannot save an array of dtype {array.dtype} safely")
        array = np.ascontiguousarray(array)
        content = (array.dtype.str, array.shape, hashlib.sha256(array.tobytes()).digest())
        if content not in self._stored:
            self.arrays.append(array)
            self._stored[content] = len(self.arrays) - 1
        return {kind: self._stored[content]}

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | float | np.integer | np.floating | np.bool_):
            value = value.item() if isinstance(value, np.generic) else value
            if isinstance(value, float) and not np.isfinite(value):
                return {"__float__": repr(value)}
            return value
        if isinstance(value, torch.Tensor):
            return self._array(value.detach().cpu().numpy(), "__tensor__")
        if isinstance(value, np.ndarray):
            return self._array(value, "__ndarray__")
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, np.random.RandomState):
            name, keys, pos, has_gauss, cached = value.get_state()
            return {"__random_state__": [name, self._array(keys, "__ndarray__"), pos, has_gauss, cached]}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, where) for v in value]}
        if isinstance(value, list):
            return [self.encode(v, where) for v in value]
        if type(value) in _registry.values():  # a nested skflow estimator (e.g. a detector's density)
            return {"__estimator__": [_class_name(type(value)), self.encode(value.__getstate__(), where)]}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"cannot save {where}: a dict with non-string keys")
            return {"__dict__": {k: self._entry(k, v, f"{where}[{k!r}]") for k, v in value.items()}}
        if callable(value) and not isinstance(value, type):
            raise TypeError(f"cannot save {where}, a {type(value).__name__}: the safe format stores data, not code")
        raise TypeError(f"cannot save {where} of type {type(value).__name__} in the safe format")


def _write_archive(file: Any, metadata: dict[str, Any], arrays: list[np.ndarray]) -> None:
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(METADATA_MEMBER, json.dumps(metadata, indent=1, allow_nan=False))
        for i, array in enumerate(arrays):
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            archive.writestr(f"{ARRAY_PREFIX}{i}.npy", buffer.getvalue())


def _write_atomically(path: str | os.PathLike, metadata: dict[str, Any], arrays: list[np.ndarray]) -> None:
    """Write to a new file beside ``path``, fsync it, then rename it over ``path``.

    A failure at any point leaves an existing ``path`` untouched and no
    temporary file behind.
    """
    target = os.path.realpath(os.fspath(path))  # through a symlink, as a plain open() would write
    directory, base = os.path.split(target)
    temporary = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)  # permissions follow the umask, as open() does
    try:
        with os.fdopen(descriptor, "wb") as file:
            _write_archive(file, metadata, arrays)
            file.flush()
            os.fsync(file.fileno())
        if os.path.exists(target):  # keep the permissions of the file being replaced
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _read_head(path: str | os.PathLike | io.IOBase) -> bytes:
    if hasattr(path, "read"):
        position = path.tell()
        head = path.read(4)
        path.seek(position)
        return head
    with open(path, "rb") as file:
        return file.read(4)


def _check_listing(archive: zipfile.ZipFile) -> list[str]:
    """Check member names and declared sizes before any member is read; return the array members in order."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ValueError(f"the archive has {len(infos)} members, more than MAX_MEMBERS={MAX_MEMBERS}")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise ValueError("the archive has duplicate members")
    if METADATA_MEMBER not in names:
        raise ValueError(f"not a skflow model file (no {METADATA_MEMBER})")
    unexpected = sorted(n for n in names if n != METADATA_MEMBER and not _ARRAY_NAME.fullmatch(n))
    if unexpected:
        pickles = [n for n in unexpected if n.endswith((".pkl", ".pickle", ".joblib"))]
        what = "a pickle payload" if pickles else "unexpected content"
        raise ValueError(f"the archive carries {what} ({', '.join(unexpected[:5])}); a safe skflow file has none")
    for info in infos:
        limit = MAX_METADATA_BYTES if info.filename == METADATA_MEMBER else MAX_ARRAY_BYTES
        if info.file_size > limit:
            raise ValueError(f"member {info.filename} declares {info.file_size} bytes, over the limit of {limit}")
    total = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    if total > MAX_TOTAL_BYTES:
        raise ValueError(f"the archive declares {total} bytes in all, over MAX_TOTAL_BYTES={MAX_TOTAL_BYTES}")
    if total > _RATIO_CHECKED_FROM and total > MAX_COMPRESSION_RATIO * max(compressed, 1):
        raise ValueError(
            f"the archive expands {total / max(compressed, 1):.0f}-fold (over MAX_COMPRESSION_RATIO="
            f"{MAX_COMPRESSION_RATIO}): a model's weights do not compress like that"
        )
    return sorted((n for n in names if n != METADATA_MEMBER), key=lambda n: int(n[len(ARRAY_PREFIX) : -4]))


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, reading at most one byte more than it declares."""
    cap = archive.getinfo(name).file_size
    with archive.open(name) as member:
        data = member.read(cap + 1)
    if len(data) != cap:
        raise ValueError(f"member {name} holds more or fewer bytes than its declared {cap}")
    return data


def _parse_npy(name: str, data: bytes) -> np.ndarray:
    """A plain numeric array from ``.npy`` bytes, its header checked against the bytes before any allocation."""
    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buffer)
    except (ValueError, TypeError, SyntaxError, OverflowError, EOFError) as exc:
        raise ValueError(f"array {name} is not a plain numeric array ({exc})") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise ValueError(f"array {name} has dtype {dtype}, not a plain numeric array")
    declared = math.prod(shape) * dtype.itemsize
    if declared != len(data) - buffer.tell():
        raise ValueError(
            f"array {name} declares shape {shape} ({declared} bytes) but holds {len(data) - buffer.tell()}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=buffer.tell()).reshape(shape, order="F" if fortran else "C")
    return array.astype(dtype.newbyteorder("="), copy=True)


# Errors a corrupt archive raises from zipfile and zlib; OSError (real I/O failures) passes through.
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, KeyError)


def _parse_metadata(data: bytes, cls: type) -> dict[str, Any]:
    def refuse_constant(name: str) -> None:
        raise ValueError(f"{METADATA_MEMBER} holds the non-JSON constant {name}")

    try:
        metadata = json.loads(data, parse_constant=refuse_constant)
    except RecursionError:
        raise ValueError(f"{METADATA_MEMBER} is nested too deeply") from None
    except ValueError as exc:  # also UnicodeDecodeError and JSONDecodeError
        raise ValueError(f"{METADATA_MEMBER} is not valid JSON ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ValueError("not a skflow model file (wrong format name)")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ValueError(
            f"format version {version!r} is newer than this skflow reads ({FORMAT_VERSION}); upgrade skflow"
            if newer
            else f"unknown format version {version!r} (this skflow reads {READABLE_VERSIONS})"
        )
    expected = _class_name(cls)
    if metadata.get("class") != expected:
        raise ValueError(f"it holds a {metadata.get('class')!r}, not a {expected!r}")
    if not isinstance(metadata.get("versions", {}), dict):
        raise ValueError("the versions entry is not a mapping")
    return metadata


def _versions() -> dict[str, str]:
    import sklearn

    return {
        "skflow": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _refuse(path: Any, reason: str) -> ValueError:
    return ValueError(f"refusing to load {path!r}: {reason}")


def _check_head(path: Any, cls: type) -> None:
    """Refuse a pickle (without running it) or anything that is not a zip archive, from the first bytes."""
    head = _read_head(path)
    if head[:1] == PICKLE_MAGIC:
        raise _refuse(
            path,
            f"it is a pickle file, which can run arbitrary code when loaded. {cls.__name__}.load reads only files "
            "written by save(); load a pickle or joblib file only if you trust its source",
        )
    if head != ZIP_MAGIC:
        raise _refuse(path, "not a skflow model file (expected a zip archive written by save())")


def _read_archive(path: Any, cls: type) -> tuple[dict[str, Any], list[np.ndarray]]:
    with zipfile.ZipFile(path) as archive:
        array_names = _check_listing(archive)
        metadata = _parse_metadata(_read_member(archive, METADATA_MEMBER), cls)
        n_arrays = metadata.get("n_arrays")
        if n_arrays != len(array_names) or array_names != [f"{ARRAY_PREFIX}{i}.npy" for i in range(len(array_names))]:
            raise ValueError(f"n_arrays={n_arrays!r} does not match the {len(array_names)} array members")
        arrays = [_parse_npy(name, _read_member(archive, name)) for name in array_names]
    return metadata, arrays
