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
and the first fit against a second, identical fit in the same process.
skflow's trainer calls the fused AdamW kernel itself
(``skflow._core.optim.FusedAdamW``), so a fit imports no ``torch._dynamo``;
the ``torch_optim`` child repeats the fits with ``torch.optim.AdamW(fused=True)``
instead (what skflow used before), checks that the fitted models score bit for
bit alike, and so measures what the change saves a fresh worker.

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


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> dict[str, float]:
    wall, cpu = _clock()
    return {"wall_s": round(wall - start[0], 3), "cpu_s": round(cpu - start[1], 3)}


def _data(n_rows: int):
    from sklearn.datasets import make_moons

    return make_moons(n_rows, noise=0.1, random_state=0)[0]


def _child_first_fit(rows: int, torch_optim: bool, profile: bool) -> dict:
    """Imports, then two identical fits; with torch_optim, the trainer uses torch.optim.AdamW(fused=True)."""
    out: dict = {}
    start = _clock()
    import torch

    out["import_torch"] = _since(start)
    start = _clock()
    import sklearn.model_selection  # noqa: F401

    import skflow
    from skflow._core import train

    out["import_sklearn_skflow"] = _since(start)
    original = train.make_adamw
    if torch_optim:

        def torch_adamw(params, lr, weight_decay, lr_factors=None):
            # These fits are too small for the mixture base's larger steps: one group, as torch.optim builds it.
            assert lr_factors is None or set(lr_factors) == {1.0}, lr_factors
            group = {"params": params, "lr_factor": 1.0}  # the Trainer sets each group's rate from its factor
            return torch.optim.AdamW([group], lr=lr, weight_decay=weight_decay, fused=True)

        train.make_adamw = torch_adamw
    X = _data(rows)
    try:
        est = _timed_fits(X, out, profile)
    finally:  # the test suite runs this in its own process: the trainer's factory must come back
        train.make_adamw = original
    out["dynamo_imported"] = "torch._dynamo" in sys.modules
    if torch_optim:
        reference = skflow.FlowDensity(**FIT).fit(X)
        out["identical_to_skflow_adamw"] = bool((est.score_samples(X) == reference.score_samples(X)).all())
    out["torch_threads"] = torch.get_num_threads()
    return out


def _timed_fits(X, out: dict, profile: bool):
    """Two identical fits, timed into ``out`` (the first profiled if asked); returns the second."""
    import skflow

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
    return est


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


def _child_search(n_jobs: int, rows: int, folds: int, epochs: int) -> dict:
    start = _clock()
    from sklearn.model_selection import GridSearchCV, KFold

    from skflow import FlowDensity

    imports = _since(start)
    X = _data(rows)
    grid = {"learning_rate": [1e-3, 3e-3]}
    # n_iter_no_change=epochs: every fit runs its epochs, so they set its length.
    estimator = FlowDensity(**{**SEARCH, "max_epochs": epochs, "n_iter_no_change": epochs})
    search = GridSearchCV(estimator, grid, cv=KFold(folds), n_jobs=n_jobs, refit=False)
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
    parser.add_argument(
        "--search-epochs", type=int, default=SEARCH["max_epochs"], help="epochs per fit (sets the fit length)"
    )
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "optimizer":
            result = _child_optimizer()
        elif kind == "search":
            result = _child_search(*(int(value) for value in rest))
        else:
            result = _child_first_fit(int(rest[0]), torch_optim=kind == "torch_optim", profile="profile" in rest)
        print(json.dumps(result))
        return result

    results: dict = {"load_average": os.getloadavg(), "cpus": os.cpu_count()}
    profile = ["profile"] if args.profile else []
    results["first_fit"] = _run_child("first_fit", str(args.rows), *profile)
    results["optimizer"] = _run_child("optimizer")
    results["torch_optim"] = _run_child("torch_optim", str(args.rows))
    if args.search:
        sizes = (str(args.search_rows), str(args.folds), str(args.search_epochs))
        serial = _run_child("search", "1", *sizes)
        parallel = _run_child("search", "2", *sizes)
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
    fit, opt, old = results["first_fit"], results["optimizer"], results["torch_optim"]
    rows = [
        ("import torch", fit["import_torch"]),
        ("import sklearn + skflow", fit["import_sklearn_skflow"]),
        ("first fit", fit["first_fit"]),
        ("second fit (warm)", fit["second_fit"]),
        ("  import torch._dynamo (first optimizer)", opt["import_torch_dynamo"]),
        ("  rest of first AdamW construction", opt["first_adamw_rest_of_construction"]),
        ("  first AdamW step", opt["first_adamw_step"]),
        ("first fit, torch.optim.AdamW (before)", old["first_fit"]),
        ("second fit, torch.optim.AdamW", old["second_fit"]),
    ]
    print(f"load average {results['load_average']}, {results['cpus']} CPUs")
    print(f"{'':44s} {'wall s':>8s} {'CPU s':>8s}")
    for name, t in rows:
        print(f"{name:44s} {t['wall_s']:8.3f} {t['cpu_s']:8.3f}")
    print(f"torch._dynamo imported: {fit['dynamo_imported']} (skflow), {old['dynamo_imported']} (torch.optim)")
    print(f"torch.optim.AdamW(fused=True) fit identical to skflow's: {old['identical_to_skflow_adamw']}")
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
