"""Flows in the safe file format: stored as config + CPU state_dict, rebuilt only after checks.

Everything that knows how a flow is laid out, for persistence, lives here.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ._core import Flow, flow_from_config, upgrade_version_1
from ._core.student_t import StudentToNormal
from ._core.transforms import LinearShift

# Bounds on the flow configuration, checked before a flow is built.
MAX_N_FEATURES = 100_000
MAX_N_TRANSFORMS = 512
MAX_HIDDEN_LAYERS = 32
MAX_HIDDEN_UNITS = 65_536
MAX_N_BINS = 333
MAX_N_COMPONENTS = 1024  # of a Gaussian-mixture base


def _check_base(base: Any) -> int:
    """The number of mixture components the config's ``base`` asks for (0 for the standard normal)."""
    if base is None or base == {"kind": "normal"}:  # no "base": written before the mixture base existed
        return 0
    keys = set(base) if isinstance(base, dict) else set()
    is_mixture = keys in ({"kind", "n_components"}, {"kind", "n_components", "degrees_of_freedom"})
    k = base["n_components"] if is_mixture and base["kind"] == "mixture" else None
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_N_COMPONENTS:
        raise ValueError(
            f"the flow config has base={base!r}; expected {{'kind': 'normal'}} or "
            f"{{'kind': 'mixture', 'n_components': <int in [1, {MAX_N_COMPONENTS}]>}}, optionally with "
            "'degrees_of_freedom'"
        )
    if "degrees_of_freedom" in base:
        nu = base["degrees_of_freedom"]
        if not (isinstance(nu, float) and math.isfinite(nu) and nu > 2.0):
            raise ValueError(f"the flow config's mixture base has degrees_of_freedom={nu!r}; expected a float above 2")
    return k


def _check_flow_config(config: Any, state_dict: dict[str, torch.Tensor]) -> None:
    """Bound the config's sizes and check them against the stored weights, before anything is built.

    The stored weights must hold at least the elements the config implies (the
    conditioners' hidden-to-hidden weights, the LU mixing matrices and a
    mixture base's parameters: a lower bound on what the flow holds), so a
    config that asks for more than the file carries is refused without building it.
    """
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ValueError("the flow config is not a mapping")
    bounded = {
        "n_features": (1, MAX_N_FEATURES),
        "context_features": (0, MAX_N_FEATURES),
        "n_transforms": (1, MAX_N_TRANSFORMS),
        "n_bins": (1, MAX_N_BINS),
    }
    for key, (low, limit) in bounded.items():
        value = config.get(key, 0 if key == "context_features" else None)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= limit:
            raise ValueError(f"the flow config has {key}={value!r}; expected an int in [{low}, {limit}]")
    hidden = config.get("hidden_units")
    if (
        not isinstance(hidden, list)
        or not 1 <= len(hidden) <= MAX_HIDDEN_LAYERS
        or not all(isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= MAX_HIDDEN_UNITS for h in hidden)
    ):
        raise ValueError(
            f"the flow config has hidden_units={hidden!r}; expected 1 to {MAX_HIDDEN_LAYERS} ints "
            f"in [1, {MAX_HIDDEN_UNITS}]"
        )
    n, n_transforms = config["n_features"], config["n_transforms"]
    per_transform = 0
    if n > 1:
        per_transform += hidden[0] + sum(a * b for a, b in zip(hidden[:-1], hidden[1:])) + hidden[-1]
        per_transform += 2 * n * n if config.get("mixing", "lu") == "lu" else 0
    # A mixture base stores logits, means and a precision Cholesky factor (d x d) per component.
    n_components = _check_base(config.get("base"))
    implied = n_transforms * per_transform + n_components * (1 + 2 * n + n * n)
    stored = sum(t.numel() for t in state_dict.values())
    if implied > stored:
        raise ValueError(
            f"the flow config implies at least {implied} weights but the file stores {stored}: "
            "the config and the weights do not match"
        )


def _persist_flow(flow: Flow) -> dict[str, Any]:
    """A flow as plain data: its config and a CPU state_dict."""
    return {"config": dict(flow.config), "state_dict": {k: v.detach().cpu() for k, v in flow.state_dict().items()}}


def _rebuild_flow(persisted: Any) -> Flow:
    """Rebuild a flow, in float64 on the CPU, from what :func:`_persist_flow` stored.

    Everything that knows how a flow is laid out lives here: the config is
    bounded and checked against the stored weights, the flow built with
    ``flow_from_config``, the stored tensors compared with its state_dict
    (names, shapes, dtypes), its parameters required finite and its buffers
    free of NaN, and only then loaded with ``strict=True``.
    """
    if not isinstance(persisted, dict) or set(persisted) != {"config", "state_dict"}:
        raise ValueError("a stored flow must be a mapping with 'config' and 'state_dict'")
    config, stored = persisted["config"], persisted["state_dict"]
    if not isinstance(stored, dict) or not all(isinstance(v, torch.Tensor) for v in stored.values()):
        raise ValueError("the flow's state_dict is not a mapping of tensors")
    _check_flow_config(config, stored)
    if "asinh_tails" in config:  # the one-list layout of format version 1
        config, stored = upgrade_version_1(config, stored)
    try:
        flow = flow_from_config(config).double()
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise ValueError(f"the flow config does not describe a flow ({exc})") from None
    expected = flow.state_dict()
    if set(expected) != set(stored):
        missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
        raise ValueError(f"the flow's weights do not match its config (missing {missing}, unexpected {unexpected})")
    parameters = {name for name, _ in flow.named_parameters()}
    for name, tensor in stored.items():
        want = expected[name]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            raise ValueError(
                f"the flow's weight {name!r} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}; "
                f"its config implies {tuple(want.shape)} and {want.dtype}"
            )
        if tensor.is_floating_point():
            bad = ~torch.isfinite(tensor) if name in parameters else torch.isnan(tensor)
            if bool(bad.any()):
                raise ValueError(f"the flow's weight {name!r} holds {int(bad.sum())} non-finite value(s)")
    flow.load_state_dict(stored, strict=True)
    for layer in flow.transforms:
        if isinstance(layer, (StudentToNormal, LinearShift)):
            try:
                layer.check()
            except ValueError as exc:
                raise ValueError(f"the flow's weights are not a valid flow: {exc}") from None
    return flow.eval()


def _flow_n_features(flow: Flow) -> int:
    return int(flow.config["n_features"])


def _is_persisted_flow(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"config", "state_dict"}


def stored_flow_config(flow: Any) -> dict | None:
    """The config of a fitted flow as an older state holds it: a persisted dict's, or a pickled Flow's."""
    return flow.get("config") if isinstance(flow, dict) else getattr(flow, "config", None)


def _stored_config_entry(flow: Any, key: str, expected: type, default: Any) -> Any:
    """``key`` of a fitted flow's config (pickled or from a model file), or ``default`` where the config
    does not hold one of the ``expected`` type."""
    config = stored_flow_config(flow)
    value = config.get(key) if isinstance(config, dict) else None
    return value if isinstance(value, expected) else default


def fill_resolved_from_stored_flow(state: dict[str, Any]) -> None:
    """In an older state with a fitted ``flow_``, the resolved ``flow_kind_`` (before ``flow="auto"``) and
    ``n_bins_`` (before ``n_bins="auto"``) that its flow's config records: not the parameters, which
    ``set_params`` may have changed since. A config without them means a coupling spline of 8 bins."""
    stored_flow = state.get("flow_")
    if stored_flow is None:
        return
    if "flow_kind_" not in state:
        state["flow_kind_"] = _stored_config_entry(stored_flow, "flow", str, state.get("flow", "spline"))
    if "n_bins_" not in state:
        state["n_bins_"] = int(_stored_config_entry(stored_flow, "n_bins", int, 8))


def upgrade_density_state(state: dict[str, Any]) -> dict[str, Any]:
    """A ``FlowDensity`` state (pickled or from a model file) of an older skflow, in today's layout.

    Fitted by skflow 0.1 (format version 1): no ``hidden_units_``. Fitted
    before the mixture base: the flow's config has no ``"base"`` and the state
    no ``base`` parameter (or, from the safe format, the new default filled
    in); such a model has a standard-normal base, so ``base`` is "normal"
    and ``n_components_`` 1. Fitted before ``flow="auto"``: no ``flow_kind_``;
    the stored flow's config says which kind it is. Fitted before
    ``n_bins="auto"``: no ``n_bins_``; the config says that too.
    """
    state = dict(state)
    stored_flow = state.get("flow_")
    fill_resolved_from_stored_flow(state)
    if _is_persisted_flow(stored_flow) and "hidden_units_" not in state:
        state["hidden_units_"] = tuple(stored_flow["config"]["hidden_units"])
    if "base" not in state or (_is_persisted_flow(stored_flow) and "base" not in stored_flow["config"]):
        state["base"] = "normal"
    if stored_flow is not None and "n_components_" not in state:
        state["n_components_"] = 1
    return state
