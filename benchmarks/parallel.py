"""Parallel efficiency: what a fresh worker process pays before its first fit, and n_jobs=2 against n_jobs=1.

Run from the repository root::

    python -m benchmarks.parallel               # per-process overhead breakdown (~1 min)
    python -m benchmarks.parallel --profile     # and cProfile's top entries of a first fit
    python -m benchmarks.parallel --search      # and GridSearchCV n_jobs=2 / n_jobs=1 wall time

Every measurement runs in a fresh child process (``--child``), as a loky or
Dask worker starts. The breakdown reports wall and CPU seconds of: ``import
torch``; importing scikit-learn and skflow; ``import torch._dynamo`` (which
constructing any ``torch.optim`` optimizer triggers: ``Optimizer.add_param_group``
is wrapped by ``torch._disable_dynamo``, which imports ``torch._dynamo`` on its
first call); the rest of the first optimizer's construction and first step;
and the first fit against a second, identical fit in the same process. The
``no_dynamo`` child repeats the fits with ``_make_optimizer`` replaced by
:class:`FusedAdamW` (the proposed fix, defined here; skflow is not modified),
checks that ``torch._dynamo`` was never imported, and that the fitted model
scores bit for bit like one fitted with ``torch.optim.AdamW(fused=True)``.

CPU seconds are a per-process cost and barely depend on other load; wall
seconds and the search ratio do, so on a shared machine read them as
indicative only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# Sizes: a fit takes ~1 s on an idle core (``first_fit``); the search's fits ~3-5 s.
FIT = dict(n_transforms=2, hidden_units=(16,), n_bins=4, max_epochs=5, random_state=0)
SEARCH = dict(n_transforms=3, hidden_units=(32,), n_bins=8, max_epochs=15, random_state=0)


class FusedAdamW:
    """AdamW through torch's fused kernel, as ``torch.optim.AdamW(fused=True)`` computes it, minus the import.

    Constructing any ``torch.optim.Optimizer`` imports ``torch._dynamo``
    (``add_param_group`` is decorated with ``torch._disable_dynamo``): ~2 s of
    CPU in every fresh process. This keeps the state ``_fused_adamw`` keeps
    (float32 step counters, first and second moments) and calls the same
    kernel, so the updates are identical. It offers what skflow's training
    loop uses: ``param_groups[i]["lr"]``, ``step()`` and ``zero_grad()``.
    """

    def __init__(self, params, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
        import torch

        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": lr}]
        self.weight_decay, self.betas, self.eps = weight_decay, betas, eps
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def step(self) -> None:
        import torch

        active = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not active:
            return
        with torch.no_grad():
            steps = [self.steps[i] for i in active]
            torch._foreach_add_(steps, 1)
            torch._fused_adamw_(
                [self.params[i] for i in active],
                [self.params[i].grad for i in active],
                [self.exp_avgs[i] for i in active],
                [self.exp_avg_sqs[i] for i in active],
                [],
                steps,
                amsgrad=False,
                lr=self.param_groups[0]["lr"],
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=self.weight_decay,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> dict[str, float]:
    wall, cpu = _clock()
    return {"wall_s": round(wall - start[0], 3), "cpu_s": round(cpu - start[1], 3)}


def _data(n_rows: int):
    from sklearn.datasets import make_moons

    return make_moons(n_rows, noise=0.1, random_state=0)[0]


def _child_first_fit(rows: int, no_dynamo: bool, profile: bool) -> dict:
    """Imports, then two identical fits; with no_dynamo, _make_optimizer is FusedAdamW."""
    out: dict = {}
    start = _clock()
    import torch

    out["import_torch"] = _since(start)
    start = _clock()
    import sklearn.model_selection  # noqa: F401

    import skflow
    from skflow._core import train

    out["import_sklearn_skflow"] = _since(start)
    original = train._make_optimizer
    if no_dynamo:
        train._make_optimizer = lambda params, lr, weight_decay: FusedAdamW(params, lr, weight_decay)
    X = _data(rows)
    for name in ("first_fit", "second_fit"):
        profiler = None
        if profile and name == "first_fit":
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        start = _clock()
        est = skflow.FlowDensity(**FIT).fit(X)
        out[name] = _since(start)
        if profiler is not None:
            profiler.disable()
            out["profile"] = _top(profiler)
    out["dynamo_imported"] = "torch._dynamo" in sys.modules
    if no_dynamo:
        train._make_optimizer = original
        reference = skflow.FlowDensity(**FIT).fit(X)
        out["identical_to_torch_adamw"] = bool((est.score_samples(X) == reference.score_samples(X)).all())
    out["torch_threads"] = torch.get_num_threads()
    return out


def _top(profiler, n: int = 12) -> list[str]:
    import io
    import pstats

    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(n)
    return [line for line in stream.getvalue().splitlines() if line.strip()][-n:]


def _child_optimizer() -> dict:
    """The first optimizer's cost, split into the torch._dynamo import and the rest."""
    import torch

    out: dict = {"dynamo_after_import_torch": "torch._dynamo" in sys.modules}
    start = _clock()
    import torch._dynamo  # noqa: F401

    out["import_torch_dynamo"] = _since(start)
    param = torch.nn.Parameter(torch.zeros(1000))
    start = _clock()
    optimizer = torch.optim.AdamW([param], lr=1e-3, weight_decay=1e-4, fused=True)
    out["first_adamw_rest_of_construction"] = _since(start)
    param.grad = torch.ones_like(param)
    start = _clock()
    optimizer.step()
    out["first_adamw_step"] = _since(start)
    return out


def _child_search(n_jobs: int, rows: int, folds: int) -> dict:
    start = _clock()
    from sklearn.model_selection import GridSearchCV, KFold

    from skflow import FlowDensity

    imports = _since(start)
    X = _data(rows)
    grid = {"learning_rate": [1e-3, 3e-3]}
    search = GridSearchCV(FlowDensity(**SEARCH), grid, cv=KFold(folds), n_jobs=n_jobs, refit=False)
    start = _clock()
    search.fit(X)
    return {
        "imports": imports,
        "search": _since(start),
        "n_fits": len(grid["learning_rate"]) * folds,
        "mean_fit_s": round(float(search.cv_results_["mean_fit_time"].mean()), 3),
    }


def _run_child(*args: str) -> dict:
    command = [sys.executable, "-m", "benchmarks.parallel", "--child", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=os.getcwd())
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", action="store_true", help="also time GridSearchCV with n_jobs=1 and 2")
    parser.add_argument("--profile", action="store_true", help="cProfile the first fit of a fresh process")
    parser.add_argument("--rows", type=int, default=1000, help="rows of the fits in the breakdown")
    parser.add_argument("--search-rows", type=int, default=2000)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "optimizer":
            result = _child_optimizer()
        elif kind == "search":
            result = _child_search(int(rest[0]), int(rest[1]), int(rest[2]))
        else:
            result = _child_first_fit(int(rest[0]), no_dynamo=kind == "no_dynamo", profile="profile" in rest)
        print(json.dumps(result))
        return result

    results: dict = {"load_average": os.getloadavg(), "cpus": os.cpu_count()}
    profile = ["profile"] if args.profile else []
    results["first_fit"] = _run_child("first_fit", str(args.rows), *profile)
    results["optimizer"] = _run_child("optimizer")
    results["no_dynamo"] = _run_child("no_dynamo", str(args.rows))
    if args.search:
        serial = _run_child("search", "1", str(args.search_rows), str(args.folds))
        parallel = _run_child("search", "2", str(args.search_rows), str(args.folds))
        results["search"] = {
            "n_jobs=1": serial,
            "n_jobs=2": parallel,
            "ratio_wall": round(parallel["search"]["wall_s"] / serial["search"]["wall_s"], 3),
        }
    results["load_average_after"] = os.getloadavg()
    _report(results)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return results


def _report(results: dict) -> None:
    fit, opt, fixed = results["first_fit"], results["optimizer"], results["no_dynamo"]
    rows = [
        ("import torch", fit["import_torch"]),
        ("import sklearn + skflow", fit["import_sklearn_skflow"]),
        ("first fit", fit["first_fit"]),
        ("second fit (warm)", fit["second_fit"]),
        ("  import torch._dynamo (first optimizer)", opt["import_torch_dynamo"]),
        ("  rest of first AdamW construction", opt["first_adamw_rest_of_construction"]),
        ("  first AdamW step", opt["first_adamw_step"]),
        ("first fit, FusedAdamW (no dynamo)", fixed["first_fit"]),
        ("second fit, FusedAdamW", fixed["second_fit"]),
    ]
    print(f"load average {results['load_average']}, {results['cpus']} CPUs")
    print(f"{'':44s} {'wall s':>8s} {'CPU s':>8s}")
    for name, t in rows:
        print(f"{name:44s} {t['wall_s']:8.3f} {t['cpu_s']:8.3f}")
    print(f"torch._dynamo imported: {fit['dynamo_imported']} (AdamW), {fixed['dynamo_imported']} (FusedAdamW)")
    print(f"FusedAdamW fit identical to torch.optim.AdamW(fused=True): {fixed['identical_to_torch_adamw']}")
    for line in fit.get("profile", []):
        print("  " + line)
    if "search" in results:
        s = results["search"]
        for key in ("n_jobs=1", "n_jobs=2"):
            r = s[key]
            print(f"GridSearchCV {key}: {r['search']['wall_s']:.2f} s wall, {r['n_fits']} fits of ~{r['mean_fit_s']} s")
        print(f"n_jobs=2 / n_jobs=1 wall time: {s['ratio_wall']} (load average after: {results['load_average_after']})")


if __name__ == "__main__":
    main()
