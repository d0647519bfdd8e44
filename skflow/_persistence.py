"""A safe file format for fitted estimators: JSON plus raw arrays, no pickle anywhere.

``pickle`` and ``joblib`` files run code when loaded, so a model file from an
untrusted source is a security hole. This format is a zip archive holding

* ``skflow.json``: format name and version, the skflow/torch/numpy/scikit-learn
  versions that wrote it, the estimator class, and its state (parameters and
  fitted attributes) as JSON, where every array is a reference to
* ``arrays/<n>.npy``: one numeric array each, parsed here without pickle.

Loading never imports a class named in the file (only classes registered with
:func:`register_safe_class` are built) and never unpickles. The archive listing
is checked against the limits below before any member is read, every member is
read through a size cap, the flow configuration is checked against the stored
weights before any flow is built, and the restored estimator is validated
(every fitted attribute present, typed and consistent). Anything else is
refused with a ``ValueError``.

Format versions: 1 (skflow 0.1.0) and 2 (the same layout, written only after
the fitted state passed the checks that loading applies). Both load.

This is a support module: it never imports an estimator module. The estimators
inherit :class:`SafePersistenceMixin` and register themselves.
"""

from __future__ import annotations

import inspect
import io
import math
import os
import warnings
from numbers import Integral, Real
from typing import Any, Self

import numpy as np
import torch

from ._boosted_feature import TREE_ATTRIBUTES
from ._core import Flow
from ._persisted_flow import _flow_n_features, _is_persisted_flow, _persist_flow, _rebuild_flow
from ._persistence_format import (  # noqa: F401 - the limits are documented here
    _CORRUPT,
    _DEVICE_TYPES,
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_ARRAY_BYTES,
    MAX_COMPRESSION_RATIO,
    MAX_MEMBERS,
    MAX_METADATA_BYTES,
    MAX_TOTAL_BYTES,
    METADATA_MEMBER,
    _check_head,
    _class_name,
    _Encoder,
    _read_archive,
    _refuse,
    _registry,
    _restore_device,
    _versions,
    _write_archive,
    _write_atomically,
    register_safe_class,
)
from ._version import __version__

MAX_JSON_DEPTH = 64  #: nesting depth of the estimator state
# --------------------------------------------------------- the fitted state


def _check_attribute(name: str, value: Any, spec: Any, n_features: Any) -> None:
    """Check one fitted attribute against its declared kind (see ``SafePersistenceMixin``)."""
    if isinstance(spec, type):
        ok = isinstance(value, spec)
    elif spec == "int":
        ok = isinstance(value, Integral) and not isinstance(value, bool) and value >= 0
    elif spec == "float":
        ok = isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)
    elif spec == "floats":
        ok = isinstance(value, list) and all(isinstance(v, Real) and not isinstance(v, bool) for v in value)
    elif spec == "device":
        ok = isinstance(value, torch.device) and value.type in _DEVICE_TYPES
    elif spec == "estimators":  # the members of an ensemble, each checked when it was restored
        ok = isinstance(value, list) and all(
            type(v) in _registry.values() and v.__dict__.get("n_features_in_") == n_features for v in value
        )
    elif spec == "flow":
        ok = isinstance(value, Flow) and _flow_n_features(value) == n_features
    elif spec in ("bool[n]", "float[n]", "finite[n]"):
        ok = (
            isinstance(value, np.ndarray)
            and value.shape == (n_features,)
            and value.dtype.kind == spec[0]
            and (spec != "finite[n]" or bool(np.isfinite(value).all()))
        )
    else:  # pragma: no cover - a mistake in a declaration
        raise TypeError(f"unknown fitted-attribute kind {spec!r}")
    if not ok:
        shown = f"{type(value).__name__} {getattr(value, 'shape', '')}".strip()
        raise ValueError(f"fitted attribute {name} is a {shown}; expected {spec} (n_features_in_={n_features!r})")


def check_fitted_state(estimator: Any) -> None:
    """Check an estimator's fitted attributes against its ``_fitted_attributes`` declaration.

    An unfitted estimator (no fitted attribute) passes. A fitted one must have
    every declared attribute, of the declared kind, with per-feature arrays,
    flows and nested estimators agreeing with ``n_features_in_``.
    """
    declared: dict[str, Any] = getattr(type(estimator), "_fitted_attributes", {})
    present = [name for name in declared if name in estimator.__dict__]
    if not present:
        return
    missing = [name for name in declared if name not in estimator.__dict__]
    if missing:
        raise ValueError(f"the {type(estimator).__name__} is fitted but lacks fitted attribute(s) {missing}")
    n_features = estimator.__dict__["n_features_in_"]
    for name, spec in declared.items():
        value = estimator.__dict__[name]
        _check_attribute(name, value, spec, n_features)
        if type(value) in _registry.values():  # a nested estimator, e.g. a detector's density
            check_fitted_state(value)
            if value.__dict__.get("n_features_in_", n_features) != n_features:
                raise ValueError(f"fitted attribute {name} has n_features_in_ != {n_features!r}")
        if spec == "estimators":
            _check_members_match(estimator, value)
    _check_sizes_match_flow(estimator)
    names = estimator.__dict__.get("feature_names_in_")
    if names is not None and not (
        isinstance(names, np.ndarray)
        and names.shape == (n_features,)
        and all(isinstance(v, str) for v in names.ravel())
    ):
        raise ValueError(f"feature_names_in_ must be {n_features} strings")


# What an ensemble's members share with the estimator that holds them: each takes its context of the
# estimator's features, centred alike (a regressor's flow may add its trees' prediction after them), and their
# densities are mixed over the same targets. Their scales may differ: a flow may keep noise features scaled
# down (relevance_scaling) where another does not.
_SHARED_WITH_MEMBERS = ("n_features_in_", "n_targets_", "x_location_", "x_log_shift_", *TREE_ATTRIBUTES)
# The features' means agree to rounding (a mean over more columns, with the trees' prediction, may sum in
# another order): to this fraction of the features' scale.
_LOCATION_TOLERANCE = 1e-9


def _check_members_match(estimator: Any, members: list) -> None:
    """Each member of an ensemble is a single flow of the estimator's own class, fitted to the same shapes
    and standardization: a file edited otherwise would fail inside torch, or mix densities of other targets."""
    for index, member in enumerate(members):
        problem = _member_problem(estimator, member)
        if problem is not None:
            raise ValueError(f"member {index} of the fitted ensemble {problem}")


def _shared(estimator: Any, name: str) -> Any:
    """The part of attribute ``name`` that members share: of the context scaling, the features' part."""
    value = estimator.__dict__.get(name)
    if name in ("x_location_", "x_scale_") and isinstance(value, np.ndarray):
        return value[: estimator.__dict__.get("n_features_in_")]
    return value


def _member_problem(estimator: Any, member: Any) -> str | None:
    if type(member) is not type(estimator):
        return f"is a {type(member).__name__}, not a {type(estimator).__name__}"
    if member.__dict__.get("ensemble_"):
        return "has members of its own"
    for name in _SHARED_WITH_MEMBERS:
        if name not in estimator.__dict__:
            continue
        ours, theirs = _shared(estimator, name), _shared(member, name)
        if name == "x_location_":
            if not _close_locations(theirs, ours, _shared(estimator, "x_scale_")):
                return f"has another {name}"
        elif not _equal(theirs, ours):
            return f"has another {name}"
    return None


def _close_locations(theirs: Any, ours: Any, scale: Any) -> bool:
    arrays = all(isinstance(value, np.ndarray) for value in (theirs, ours, scale))
    if not arrays or not theirs.shape == ours.shape == scale.shape:
        return False
    return bool(np.all(np.abs(theirs - ours) <= _LOCATION_TOLERANCE * np.abs(scale)))


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return np.array_equal(a, b, equal_nan=a.dtype.kind == b.dtype.kind == "f")  # NaN: as x_log_shift_ says
    return type(a) is type(b) and a == b


# The resolved sizes an estimator reports, and the entries of its flow's config that they must equal.
_SIZES_IN_FLOW_CONFIG = {"flow_kind_": "flow", "n_bins_": "n_bins", "hidden_units_": "hidden_units"}


def _check_sizes_match_flow(estimator: Any) -> None:
    """The reported ``flow_kind_``, ``n_bins_`` and ``hidden_units_`` are those the fitted flow was built with:
    a file edited to say otherwise would report one model and compute with another."""
    flow = estimator.__dict__.get("flow_")
    if not isinstance(flow, Flow):
        return
    for name, key in _SIZES_IN_FLOW_CONFIG.items():
        if name not in estimator.__dict__ or key not in flow.config:
            continue
        built_with = flow.config[key]
        built_with = tuple(built_with) if isinstance(built_with, list) else built_with
        if estimator.__dict__[name] != built_with:
            raise ValueError(
                f"fitted attribute {name}={estimator.__dict__[name]!r} disagrees with the fitted flow, "
                f"built with {key}={built_with!r}"
            )


# ------------------------------------------------------------- JSON decoding


def _decode_tagged(tag: str, payload: Any, arrays: list[np.ndarray], depth: int) -> Any:
    if tag in ("__ndarray__", "__tensor__"):
        if not isinstance(payload, int) or isinstance(payload, bool) or not 0 <= payload < len(arrays):
            raise ValueError(f"array reference {payload!r} is not one of the {len(arrays)} stored arrays")
        if tag == "__tensor__":
            return torch.from_numpy(arrays[payload].copy())
        # Equal arrays are stored once; each attribute that refers to one gets an array of its own.
        array, arrays[payload] = arrays[payload], arrays[payload].copy()
        return array
    if tag == "__tuple__" and isinstance(payload, list):
        return tuple(_decode(v, arrays, depth + 1) for v in payload)
    if tag == "__dict__" and isinstance(payload, dict):
        return {k: _decode(v, arrays, depth + 1) for k, v in payload.items()}
    if tag == "__device__" and isinstance(payload, str):
        return payload  # the estimator's __setstate__ picks a device that exists here
    if tag == "__float__" and payload in ("nan", "inf", "-inf"):
        return float(payload)
    if tag == "__estimator__" and isinstance(payload, list) and len(payload) == 2:
        name, state = payload
        cls = _registry.get(name) if isinstance(name, str) else None
        if cls is None:  # never import a class named by the file
            raise ValueError(f"{name!r} is not a skflow estimator")
        return _restore(cls, _decode(state, arrays, depth + 1))
    if tag == "__random_state__" and isinstance(payload, list) and len(payload) == 5:
        name, keys, pos, has_gauss, cached = payload
        state = np.random.RandomState()
        try:
            state.set_state((name, _decode(keys, arrays, depth + 1), pos, has_gauss, cached))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"invalid random state ({exc})") from None
        return state
    raise ValueError(f"unknown or malformed entry {tag!r}")


def _decode(value: Any, arrays: list[np.ndarray], depth: int = 0) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"the estimator state is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, list):
        return [_decode(v, arrays, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, payload),) = value.items()
        return _decode_tagged(tag, payload, arrays, depth)
    if set(value) == {"__strings__", "dtype"} and isinstance(value["__strings__"], list):
        strings = value["__strings__"]
        if not all(isinstance(v, str) for v in strings):
            raise ValueError("a string array holds something other than strings")
        return np.array(strings, dtype=object if value["dtype"] == "object" else str)
    raise ValueError(f"unknown entry {sorted(value)!r}")


def _restore(cls: type, state: Any) -> Any:
    """Build a ``cls`` from a decoded state, then validate its parameters and fitted attributes."""
    if not isinstance(state, dict):
        raise ValueError("the estimator state is not a mapping")
    # A parameter added after format version 1 takes its default in files written before it.
    added = getattr(cls, "_parameters_added_since_format_1", ())
    defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()}
    state = {**{name: defaults[name] for name in added if name not in state}, **state}
    missing = [name for name in cls._get_param_names() if name not in state]
    if missing:
        raise ValueError(f"the {cls.__name__} state lacks parameter(s) {missing}")
    estimator = cls.__new__(cls)
    estimator.__setstate__(state)
    try:
        estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid parameter: {exc}") from None
    check_fitted_state(estimator)
    return estimator


# ------------------------------------------------------------------ writing


def save_estimator(estimator: Any, path: str | os.PathLike | io.IOBase) -> None:
    """Write ``estimator.__getstate__()`` to ``path`` in the safe format, replacing it only on success."""
    check_fitted_state(estimator)
    encoder = _Encoder()
    state = encoder.encode(dict(estimator.__getstate__()), "the estimator state")
    if encoder.dropped_callbacks:  # stacklevel: the caller of the estimator's save method
        message = "the callback is not saved (the safe format stores no code): the loaded model has none"
        warnings.warn(message, UserWarning, stacklevel=3)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "class": _class_name(type(estimator)),
        "n_arrays": len(encoder.arrays),
        "state": state,
    }
    if hasattr(path, "write"):
        _write_archive(path, metadata, encoder.arrays)
    else:
        _write_atomically(path, metadata, encoder.arrays)


# ------------------------------------------------------------------ reading


def load_estimator(cls: type, path: str | os.PathLike | io.IOBase) -> Any:
    """Read an estimator of class ``cls`` written by :func:`save_estimator`.

    Raises
    ------
    ValueError
        If the file is a pickle, is corrupt, exceeds a resource limit, carries
        anything but the JSON metadata and plain numeric arrays, was written
        for another class or by a newer format version, or holds a state that
        does not validate.
    OSError
        If the file cannot be read.
    """
    _check_head(path, cls)
    try:
        metadata, arrays = _read_archive(path, cls)
    except ValueError as exc:
        raise _refuse(path, str(exc)) from None
    except (*_CORRUPT, RuntimeError) as exc:
        raise _refuse(path, f"the archive is corrupt ({type(exc).__name__}: {exc})") from None

    written = metadata.get("versions", {}).get("skflow")
    if written != __version__:
        warnings.warn(
            f"{path!r} was written by skflow {written}; loading it with skflow {__version__}. Check its scores.",
            UserWarning,
            stacklevel=3,
        )
    try:
        return _restore(cls, _decode(metadata.get("state"), arrays))
    except ValueError as exc:
        raise _refuse(path, str(exc)) from None
    except RecursionError:
        raise _refuse(path, "the estimator state is nested too deeply") from None
    except (KeyError, IndexError, TypeError, RuntimeError, AttributeError) as exc:
        raise _refuse(path, f"the stored state does not describe a valid {cls.__name__} ({exc})") from None


# -------------------------------------------------------------------- mixin


class SafePersistenceMixin:
    """``save``/``load`` in the safe format, and device-independent pickling.

    An estimator using it lists its fitted attributes in ``_fitted_attributes``
    (name -> a type, or one of the kinds "int", "float", "floats", "device",
    "flow", "estimators", "bool[n]", "float[n]", "finite[n]"; ``[n]`` means a
    1-d array of ``n_features_in_`` values, "estimators" a list of skflow
    estimators fitted on as many features), which loading checks, and registers itself
    with :func:`register_safe_class`. A fitted attribute that is a flow is
    pickled and saved as its config plus a CPU state_dict, and ``device_`` as
    a string.
    """

    _fitted_attributes: dict[str, Any] = {}

    def save(self, path: str | os.PathLike | io.IOBase) -> None:
        """Write the estimator to a file in skflow's safe format (no pickle).

        The file is a zip archive of JSON (parameters, fitted attributes, flow
        configuration, format and library versions) and plain numeric arrays
        (``.npy``, the flow's weights in float64). Unlike pickle or joblib,
        loading it with :meth:`load` cannot run code. A path is written
        atomically: the archive goes to a temporary file in the same
        directory, is flushed to disk and then renamed over ``path``, so a
        failed save leaves an existing file intact.

        Parameters
        ----------
        path : str, path-like or binary file object
            Where to write; ``.skflow`` is a good suffix.

        Raises
        ------
        TypeError
            If an attribute cannot be stored safely (nothing is written).
        ValueError
            If the estimator is partly fitted (nothing is written).

        Examples
        --------
        >>> import io
        >>> from sklearn.datasets import make_moons
        >>> from skflow import FlowDensity, FlowOutlierDetector
        >>> X, _ = make_moons(200, noise=0.1, random_state=0)
        >>> est = FlowDensity(n_transforms=1, max_epochs=2, random_state=0).fit(X)
        >>> buffer = io.BytesIO()
        >>> est.save(buffer)
        >>> _ = buffer.seek(0)
        >>> restored = FlowDensity.load(buffer)
        >>> bool((restored.score_samples(X) == est.score_samples(X)).all())
        True
        >>> detector = FlowOutlierDetector(density=est, random_state=0).fit(X)
        >>> buffer = io.BytesIO()
        >>> detector.save(buffer)
        >>> _ = buffer.seek(0)
        >>> bool((FlowOutlierDetector.load(buffer).predict(X) == detector.predict(X)).all())
        True
        """
        save_estimator(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike | io.IOBase) -> Self:
        """Read an estimator written by :meth:`save`, without unpickling anything.

        A model fitted on a GPU loads on the CPU (with a warning) where no GPU
        is available; a file written by another skflow version loads with a
        warning. Format versions 1 and 2 load.

        Before reading any member, the archive listing is checked: only
        ``skflow.json`` and ``arrays/<n>.npy`` members, at most 10,000 of
        them, ``skflow.json`` at most 16 MiB, each array at most 256 MiB and
        all members together at most 512 MiB uncompressed, and an archive
        over 16 MiB may expand at most 500-fold (a model with 1,000 features
        expands up to about 300-fold, a hidden block of zeros about
        1,000-fold). Each member is read through a cap of its declared size,
        and each array's header must match its bytes, so loading holds at
        most about twice the declared size in memory. The flow's
        configuration is bounded (at most 100,000 features, 512 transforms,
        32 hidden layers of at most 65,536 units, 333 bins) and may not imply
        more weights than the file stores; only then is a flow built. The
        restored estimator must then validate: parameters as ``fit`` checks
        them; every fitted attribute present and of its type; per-feature
        arrays, the flow and a nested density agreeing with
        ``n_features_in_``; the flow's weights of the shapes and dtypes its
        configuration gives, finite (buffers free of NaN); and ``device_`` a
        CPU or CUDA device.

        Parameters
        ----------
        path : str, path-like or binary file object

        Returns
        -------
        estimator : instance of the class ``load`` is called on

        Raises
        ------
        ValueError
            If the file is a pickle, corrupt, over a limit above, carries
            anything besides JSON and plain numeric arrays, holds another
            class, has a newer format version, or fails validation. The
            message names the problem.
        OSError
            If the file cannot be read.

        Examples
        --------
        >>> import io
        >>> from sklearn.datasets import make_moons
        >>> from skflow import FlowDensity
        >>> X, _ = make_moons(200, noise=0.1, random_state=0)
        >>> buffer = io.BytesIO()
        >>> FlowDensity(n_transforms=1, max_epochs=2, random_state=0).fit(X).save(buffer)
        >>> _ = buffer.seek(0)
        >>> FlowDensity.load(buffer).n_features_in_
        2
        """
        return load_estimator(cls, path)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # type: ignore[misc]  # object.__getstate__ returns __dict__ itself
        for name, value in state.items():
            if isinstance(value, Flow):
                state[name] = _persist_flow(value)
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        device = _restore_device(state["device_"]) if "device_" in state else torch.device("cpu")
        if "device_" in state:
            state["device_"] = device
        for name, value in state.items():
            if _is_persisted_flow(value):
                state[name] = _rebuild_flow(value).to(device)
        super().__setstate__(state)  # type: ignore[misc]
