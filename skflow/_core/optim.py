"""AdamW through PyTorch's fused kernel, without ``torch.optim``'s import of ``torch._dynamo``.

Constructing any ``torch.optim.Optimizer`` imports ``torch._dynamo`` (its
``add_param_group`` is wrapped by ``torch._disable_dynamo``): about 2.7 s of
CPU in every fresh process, which every joblib/Dask worker of a search pays
before its first fit (``benchmarks/parallel.py``). ``FusedAdamW`` keeps the
state that ``torch.optim.AdamW(fused=True)`` keeps (a float32 step counter,
first and second moments per parameter) and calls the same kernel, so its
updates are identical (``tests/test_train.py`` checks this bit for bit). Where
the kernel is missing, :func:`make_adamw` falls back to ``torch.optim.AdamW``.
"""

from __future__ import annotations

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8


class FusedAdamW:
    """AdamW on float parameters of one CPU or CUDA device, with ``torch.optim``'s interface as the trainer uses it.

    ``param_groups`` as :func:`make_adamw` builds them: each group's ``"lr"``
    sets its step size; ``state_dict`` / ``load_state_dict`` use
    ``torch.optim.AdamW``'s layout (``state[i]`` holds ``step``, ``exp_avg``
    and ``exp_avg_sq``, parameters numbered in group order), so either
    optimizer's state resumes in the other.
    """

    def __init__(self, param_groups: list[dict]):
        self.param_groups = [dict(group, params=list(group["params"])) for group in param_groups]
        self.params = [p for group in self.param_groups for p in group["params"]]
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    @staticmethod
    def supports(params: list[torch.nn.Parameter]) -> bool:
        return hasattr(torch, "_fused_adamw_") and all(
            p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64) for p in params
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _state(self, i: int) -> dict[str, torch.Tensor]:
        if i not in self.state:
            p = self.params[i]
            self.state[i] = {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
        return self.state[i]

    def _numbered_groups(self):
        """Each group with the numbers of its parameters in ``params`` (and in the state dict)."""
        first = 0
        for group in self.param_groups:
            count = len(group["params"])
            yield group, range(first, first + count)
            first += count

    @torch.no_grad()
    def step(self) -> None:
        for group, numbers in self._numbered_groups():
            active = [i for i in numbers if self.params[i].grad is not None]
            if active:
                self._step(active, group["lr"], group["weight_decay"])

    def _step(self, active: list[int], lr: float, weight_decay: float) -> None:
        states = [self._state(i) for i in active]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        torch._fused_adamw_(
            [self.params[i] for i in active],
            [self.params[i].grad for i in active],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            steps,
            amsgrad=False,
            lr=lr,
            beta1=BETAS[0],
            beta2=BETAS[1],
            weight_decay=weight_decay,
            eps=EPS,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    def state_dict(self) -> dict:
        groups = [
            {**{k: v for k, v in group.items() if k != "params"}, "params": list(numbers)}
            for group, numbers in self._numbered_groups()
        ]
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the per-parameter state and, as ``torch.optim`` does, the groups' hyperparameters."""
        for group, saved in zip(self.param_groups, state_dict["param_groups"]):
            for key in ("lr", "weight_decay"):
                if key in saved:
                    group[key] = saved[key]
        self.state = {}
        for i, saved in state_dict["state"].items():
            p = self.params[int(i)]
            self.state[int(i)] = {
                "step": saved["step"].to(dtype=torch.float32, device=p.device).reshape(()),
                "exp_avg": saved["exp_avg"].to(dtype=p.dtype, device=p.device).clone(),
                "exp_avg_sq": saved["exp_avg_sq"].to(dtype=p.dtype, device=p.device).clone(),
            }


def make_adamw(params: list[torch.nn.Parameter], lr: float, weight_decay: float, lr_factors: list[float] | None = None):
    """:class:`FusedAdamW` where the fused kernel serves these parameters, else ``torch.optim.AdamW``.

    ``lr_factors`` (one per parameter, default 1): each run of parameters with
    equal factors is a param group whose ``"lr_factor"`` says it; its step
    size is ``lr`` times that. The fallback is fused where this torch supports it: the
    unfused version launches several operations per parameter tensor, ~20% of
    a small step on CPU.
    """
    factors = [1.0] * len(params) if lr_factors is None else [float(f) for f in lr_factors]
    if len(factors) != len(params):
        raise ValueError(f"{len(factors)} learning-rate factor(s) for {len(params)} parameter(s)")
    # One group per run of equal factors, in the parameters' order: the optimizer numbers its state by
    # position in its groups, and the trainer by position in ``params``; the two must agree.
    groups: list[dict] = []
    for p, factor in zip(params, factors):
        if not groups or groups[-1]["lr_factor"] != factor:
            groups.append({"params": [], "lr": lr * factor, "lr_factor": factor, "weight_decay": weight_decay})
        groups[-1]["params"].append(p)
    if FusedAdamW.supports(params):
        return FusedAdamW(groups)
    try:
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
