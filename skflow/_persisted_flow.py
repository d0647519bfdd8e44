"""Flows in the safe file format: stored as config + CPU state_dict, rebuilt only after checks.

Everything that knows how a flow is laid out, for persistence, lives here.
"""

from __future__ import annotations

from typing import Any

import torch

from ._core import Flow, flow_from_config, upgrade_version_1

# Bounds on the flow configuration, checked before a flow is built.
MAX_N_FEATURES = 100_000
MAX_N_TRANSFORMS = 512
MAX_HIDDEN_LAYERS = 32
MAX_HIDDEN_UNITS = 65_536
MAX_N_BINS = 333

def _check_flow_config(config: Any, state_dict: dict[str, torch.Tensor]) -> None:
    """Bound the config's sizes and check them against the stored weights, before anything is built.

    The stored weights must hold at least the elements the config implies (the
    conditioners' hidden-to-hidden weights and the LU mixing matrices), so a
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
    implied, stored = n_transforms * per_transform, sum(t.numel() for t in state_dict.values())
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
    return flow.eval()


def _flow_n_features(flow: Flow) -> int:
    return int(flow.config["n_features"])


def _is_persisted_flow(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"config", "state_dict"}


