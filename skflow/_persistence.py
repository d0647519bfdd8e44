"""A safe file format for fitted estimators: JSON plus raw arrays, no pickle anywhere.

``pickle`` and ``joblib`` files run code when loaded, so a model file from an
untrusted source is a security hole. This format is a zip archive holding

* ``skflow.json``: format name and version, the skflow/torch/numpy/scikit-learn
  versions that wrote it, the estimator class, and its state (parameters and
  fitted attributes) as JSON, where every array is a reference to
* ``arrays/<n>.npy``: one numeric array each, read back with
  ``numpy.load(allow_pickle=False)``.

Loading never imports a class named in the file and never unpickles: an
archive with any other member, an object array, or a pickle file given in its
place is refused with a ``ValueError``.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from typing import Any

import numpy as np
import torch

FORMAT_NAME = "skflow-estimator"
FORMAT_VERSION = 1
METADATA_MEMBER = "skflow.json"
ARRAY_PREFIX = "arrays/"

# First bytes of a pickle stream (protocol 2+) and of a zip archive.
PICKLE_MAGIC = b"\x80"
ZIP_MAGIC = b"PK\x03\x04"


class _Encoder:
    """Turns an estimator state into JSON-able values plus a list of arrays."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def _array(self, array: np.ndarray, kind: str) -> dict[str, Any]:
        if array.dtype.kind not in "biuf":
            if array.dtype.kind in "OU" and all(isinstance(v, str) for v in array.ravel()):
                return {"__strings__": array.tolist(), "dtype": "object" if array.dtype.kind == "O" else "str"}
            raise TypeError(f"cannot save an array of dtype {array.dtype} safely")
        self.arrays.append(np.ascontiguousarray(array))
        return {kind: len(self.arrays) - 1}

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
        if type(value) in _safe_classes().values():  # a nested skflow estimator (e.g. a detector's density)
            return {"__estimator__": [_class_name(type(value)), self.encode(value.__getstate__(), where)]}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"cannot save {where}: a dict with non-string keys")
            return {"__dict__": {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
        raise TypeError(f"cannot save {where} of type {type(value).__name__} in the safe format")


def _decode(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, payload),) = value.items()
        if tag == "__tuple__":
            return tuple(_decode(v, arrays) for v in payload)
        if tag == "__dict__":
            return {k: _decode(v, arrays) for k, v in payload.items()}
        if tag == "__ndarray__":
            return arrays[payload]
        if tag == "__tensor__":
            return torch.from_numpy(arrays[payload].copy())
        if tag == "__device__":
            return str(payload)  # the estimator's __setstate__ picks a device that exists here
        if tag == "__float__":
            return float(payload)
        if tag == "__estimator__":
            name, state = payload
            cls = _safe_classes().get(name)
            if cls is None:  # never import a class named by the file
                raise ValueError(f"not a valid skflow model file: {name!r} is not a skflow estimator")
            estimator = cls.__new__(cls)
            estimator.__setstate__(_decode(state, arrays))
            return estimator
        if tag == "__random_state__":
            state = np.random.RandomState()
            name, keys, pos, has_gauss, cached = payload
            state.set_state((name, _decode(keys, arrays), pos, has_gauss, cached))
            return state
    if set(value) == {"__strings__", "dtype"}:
        return np.array(value["__strings__"], dtype=object if value["dtype"] == "object" else str)
    raise ValueError(f"not a valid skflow model file: unknown entry {sorted(value)!r}")


def _versions() -> dict[str, str]:
    import sklearn

    from . import __version__

    return {
        "skflow": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _safe_classes() -> dict[str, type]:
    """The only classes a file may name: skflow's own estimators."""
    from .density import FlowDensity

    classes: list[type] = [FlowDensity]
    try:
        from .outlier import FlowOutlierDetector

        classes.append(FlowOutlierDetector)
    except ImportError:  # pragma: no cover - the detector is optional here
        pass
    try:
        from .regressor import FlowRegressor

        classes.append(FlowRegressor)
    except ImportError:  # pragma: no cover - the regressor is optional here
        pass
    return {_class_name(cls): cls for cls in classes}


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def save_estimator(estimator: Any, path: str | os.PathLike | io.IOBase) -> None:
    """Write ``estimator.__getstate__()`` to ``path`` in the safe format."""
    encoder = _Encoder()
    state = encoder.encode(dict(estimator.__getstate__()), "the estimator state")
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "class": _class_name(type(estimator)),
        "n_arrays": len(encoder.arrays),
        "state": state,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(METADATA_MEMBER, json.dumps(metadata, indent=1, allow_nan=False))
        for i, array in enumerate(encoder.arrays):
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            archive.writestr(f"{ARRAY_PREFIX}{i}.npy", buffer.getvalue())


def _refuse(path: Any, reason: str) -> ValueError:
    return ValueError(f"refusing to load {path!r}: {reason}")


def _read_head(path: str | os.PathLike | io.IOBase) -> bytes:
    if hasattr(path, "read"):
        position = path.tell()
        head = path.read(4)
        path.seek(position)
        return head
    with open(path, "rb") as file:
        return file.read(4)


def load_estimator(cls: type, path: str | os.PathLike | io.IOBase) -> Any:
    """Read an estimator of class ``cls`` written by :func:`save_estimator`.

    Raises
    ------
    ValueError
        If the file is a pickle, carries anything but the JSON metadata and
        plain numeric arrays, was written for another class, or by a newer
        format version.
    """
    head = _read_head(path)
    if head[:1] == PICKLE_MAGIC:
        raise _refuse(
            path,
            "it is a pickle file, which can run arbitrary code when loaded. FlowDensity.load reads only files "
            "written by save(); load a pickle or joblib file only if you trust its source",
        )
    if head != ZIP_MAGIC:
        raise _refuse(path, "not a skflow model file (expected a zip archive written by save())")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if METADATA_MEMBER not in names:
            raise _refuse(path, f"not a skflow model file (no {METADATA_MEMBER})")
        try:
            metadata = json.loads(archive.read(METADATA_MEMBER))
        except ValueError as exc:
            raise _refuse(path, f"{METADATA_MEMBER} is not valid JSON ({exc})") from None
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
            raise _refuse(path, "not a skflow model file (wrong format name)")
        version = metadata.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise _refuse(
                path,
                f"format version {version!r} is newer than this skflow reads ({FORMAT_VERSION}); upgrade skflow",
            )
        expected = _class_name(cls)
        if metadata.get("class") != expected:
            raise _refuse(path, f"it holds a {metadata.get('class')!r}, not a {expected!r}")
        n_arrays = metadata.get("n_arrays")
        if not isinstance(n_arrays, int) or not 0 <= n_arrays < len(names):
            raise _refuse(path, f"n_arrays={n_arrays!r} does not match the archive")
        array_names = [f"{ARRAY_PREFIX}{i}.npy" for i in range(n_arrays)]
        unexpected = sorted(set(names) - {METADATA_MEMBER, *array_names})
        if unexpected:
            pickles = [n for n in unexpected if n.endswith((".pkl", ".pickle")) or archive.read(n)[:1] == PICKLE_MAGIC]
            what = "a pickle payload" if pickles else "unexpected content"
            raise _refuse(path, f"the archive carries {what} ({', '.join(unexpected)}); a safe skflow file has none")
        arrays = []
        for name in array_names:
            try:
                array = np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
            except KeyError:
                raise _refuse(path, f"array {name} is missing") from None
            except ValueError as exc:  # object arrays need pickle, which is refused
                raise _refuse(path, f"array {name} is not a plain numeric array ({exc})") from None
            if array.dtype.kind not in "biuf":
                raise _refuse(path, f"array {name} has dtype {array.dtype}, not a numeric dtype")
            arrays.append(array)

    written = metadata.get("versions", {}).get("skflow")
    current = _versions()["skflow"]
    if written != current:
        warnings.warn(
            f"{path!r} was written by skflow {written}; loading it with skflow {current}. Check its scores.",
            UserWarning,
            stacklevel=3,
        )
    estimator = cls.__new__(cls)
    try:
        state = _decode(metadata.get("state"), arrays)
        if not isinstance(state, dict):
            raise ValueError("the estimator state is not a mapping")
        estimator.__setstate__(state)
    except ValueError as exc:
        raise _refuse(path, str(exc)) from None
    except (KeyError, IndexError, TypeError, RuntimeError) as exc:  # a state that does not rebuild a flow
        raise _refuse(path, f"the stored state does not describe a valid {cls.__name__} ({exc})") from None
    return estimator
