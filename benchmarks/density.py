"""Density-quality benchmark: FlowDensity against the estimators users would pick instead.

Run from the repository root::

    python -m benchmarks.density                      # full run (tens of minutes on 2 cores)
    python -m benchmarks.density --quick              # seconds: tiny sizes, few epochs (CI)
    python -m benchmarks.density --datasets moons breast_cancer --models flow gmm

For every dataset: one 80/20 split (``random_state=0``), features standardized
with the training part's mean and standard deviation, the same for every model.
Each model is fitted on the training part and reports the held-out mean
log-likelihood (nats per sample, in standardized units), its fit time (the whole
search for tuned models), ``score_samples`` and ``sample`` throughput (rows/s).
On synthetic sets the true E[log p(x)] on the test part and each model's gap to
it are reported too.

Contenders: ``FlowDensity()`` with its defaults; ``FlowDensity`` tuned by
``GridSearchCV`` (small grid); ``GaussianMixture`` tuned over ``n_components``,
``covariance_type`` and ``reg_covar``; ``KernelDensity`` tuned over
``bandwidth``; zuko's neural spline flow (autoregressive, zuko's default)
trained with a plain Adam loop and early stopping (skipped when zuko is not
installed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity
from sklearn.preprocessing import StandardScaler

from skflow import FlowDensity

from . import datasets

MODELS = ("flow", "flow_tuned", "gmm", "kde", "zuko")


@dataclass
class Settings:
    quick: bool = False
    max_rows: int | None = None  # cap on every dataset's rows
    flow_max_epochs: int | None = None  # None: FlowDensity's default
    zuko_max_epochs: int = 1000
    zuko_patience: int = 20
    cv: int = 3
    n_throughput: int = 10_000  # rows scored / sampled for the throughput figures
    seed: int = 0
    gmm_components: list[int] | None = None  # None: the full grid of gmm_grid

    @classmethod
    def for_mode(cls, quick: bool) -> Settings:
        if quick:
            return cls(quick=True, max_rows=150, flow_max_epochs=2, zuko_max_epochs=2, cv=2, n_throughput=100)
        return cls()


@dataclass
class Result:
    dataset: str
    model: str
    test_log_likelihood: float
    fit_seconds: float
    score_rows_per_second: float
    sample_rows_per_second: float
    params: dict = field(default_factory=dict)
    gap: float | None = None  # true E[log p] - test log-likelihood, nats per sample
    gap_per_dim: float | None = None
    # (fit seconds so far, test log-likelihood of the weights evaluated after that epoch), per epoch.
    trace: list[tuple[float, float]] = field(default_factory=list)
    source: str | None = None  # set by merge: the JSON file the row was measured in


# ------------------------------------------------------------- contenders


class HeldOutTrace:
    """Held-out log-likelihood after each training epoch, against fit seconds.

    Each evaluation's own time is taken off the clock, so ``points`` holds the
    seconds the fit itself had spent when it reached each score; ``seconds``
    is the fit time not counting the tracing.
    """

    def __init__(self, X_test: np.ndarray):
        self.x_test = torch.as_tensor(X_test, dtype=torch.float32)
        self.points: list[tuple[float, float]] = []
        self.evaluation_seconds = 0.0
        self.start = time.perf_counter()

    def record(self, log_prob: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self._record(lambda: float(log_prob(self.x_test).double().mean()))

    def _record(self, mean_score: Callable[[], float]) -> None:
        started = time.perf_counter()
        with torch.inference_mode():
            score = mean_score()
        self.points.append((started - self.start - self.evaluation_seconds, score))
        self.evaluation_seconds += time.perf_counter() - started

    def record_kept(self, estimator) -> None:
        """The held-out score of the model a fit returned, at the end of the fit."""
        x_test = self.x_test.double().numpy()
        self._record(lambda: float(np.mean(estimator.score_samples(x_test))))

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.evaluation_seconds

    def flow_density_callback(self) -> Callable:
        """FlowDensity's ``callback``: the held-out score of the weights evaluated at each epoch (epoch 0 too),
        through the whole flow, as ``score_samples`` would give it."""
        x_test = self.x_test.double().numpy()
        return lambda info: self._record(lambda: float(np.mean(info.log_density(x_test))))


def _flow_kwargs(settings: Settings) -> dict:
    kwargs = {"random_state": settings.seed, "device": "cpu"}
    if settings.flow_max_epochs is not None:
        kwargs["max_epochs"] = settings.flow_max_epochs
    return kwargs


def fit_flow(X, settings, trace=None):
    callback = trace.flow_density_callback() if trace is not None else None
    estimator = FlowDensity(**_flow_kwargs(settings), callback=callback)
    estimator.fit(X)
    estimator.set_params(callback=None)  # the trace is not part of the model
    if trace is not None:
        # The kept model is known only when fit returns: a start that no epoch beat is refitted on every row.
        trace.record_kept(estimator)
    return estimator, {}


def flow_grid(settings: Settings) -> dict:
    """A small grid around the defaults: the depth of the flow (3 x cv fits)."""
    if settings.quick:
        return {"n_transforms": [2, 3]}
    default = FlowDensity().n_transforms
    return {"n_transforms": [max(2, default - 2), default, default + 3]}


def _search(estimator, grid, X, settings):
    search = GridSearchCV(
        estimator, grid, cv=KFold(settings.cv, shuffle=True, random_state=settings.seed), error_score=-np.inf
    )
    search.fit(X)
    best = {k: (v if isinstance(v, (int, float, str, type(None))) else str(v)) for k, v in search.best_params_.items()}
    return search.best_estimator_, best


def fit_flow_tuned(X, settings):
    return _search(FlowDensity(**_flow_kwargs(settings)), flow_grid(settings), X, settings)


def gmm_grid(settings: Settings, n_samples: int) -> dict:
    components = [1, 4] if settings.quick else [1, 2, 4, 8, 16, 32, 64]
    if settings.gmm_components is not None:  # a smaller grid where the full one is too slow (say so with the figures)
        components = list(settings.gmm_components)
    # A component needs a few points per fold to be estimable at all.
    components = [k for k in components if k <= max(1, n_samples // 4)]
    return {
        "n_components": components,
        "covariance_type": ["full", "diag"],
        "reg_covar": [1e-3] if settings.quick else [1e-6, 1e-4, 1e-2, 1e-1],
    }


def fit_gmm(X, settings):
    estimator = GaussianMixture(random_state=settings.seed, max_iter=200)
    return _search(estimator, gmm_grid(settings, X.shape[0]), X, settings)


def fit_kde(X, settings):
    grid = {"bandwidth": np.logspace(-1.5, 0.5, 3 if settings.quick else 13).tolist()}
    return _search(KernelDensity(), grid, X, settings)


class ZukoNSF:
    """zuko's NSF (autoregressive, zuko's default) behind a fit / score_samples / sample interface.

    Trained as a user of zuko would: Adam at 1e-3, batch 256, early stopping on
    10% of the training rows with patience ``patience``, best weights kept.
    5 transforms of (128, 128): the configuration of the reference figures.
    """

    def __init__(self, max_epochs=1000, patience=20, batch_size=256, transforms=5, hidden=(128, 128), seed=0):
        self.max_epochs, self.patience, self.batch_size = max_epochs, patience, batch_size
        self.transforms, self.hidden, self.seed = transforms, hidden, seed

    def fit(self, X, trace: HeldOutTrace | None = None):
        import zuko

        torch.manual_seed(self.seed)
        x = torch.as_tensor(X, dtype=torch.float32)
        perm = torch.randperm(x.shape[0])
        n_val = max(1, x.shape[0] // 10)
        x_val, x_train = x[perm[:n_val]], x[perm[n_val:]]
        self.flow_ = zuko.flows.NSF(X.shape[1], transforms=self.transforms, hidden_features=self.hidden)
        optimizer = torch.optim.Adam(self.flow_.parameters(), lr=1e-3)
        best, best_state, waited = -math.inf, None, 0
        if trace is not None:
            trace.record(lambda x: self.flow_().log_prob(x))  # epoch 0, as for the flow
        for epoch in range(1, self.max_epochs + 1):
            self.n_iter_ = epoch
            self.flow_.train()
            for idx in torch.randperm(x_train.shape[0]).split(self.batch_size):
                loss = -self.flow_().log_prob(x_train[idx]).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            self.flow_.eval()
            with torch.no_grad():
                score = float(self.flow_().log_prob(x_val).mean())
            if trace is not None:
                trace.record(lambda x: self.flow_().log_prob(x))
            if score > best + 1e-4:
                best, waited = score, 0
                best_state = {k: v.clone() for k, v in self.flow_.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_state is not None:
            self.flow_.load_state_dict(best_state)
        return self

    def score_samples(self, X):
        with torch.no_grad():
            return self.flow_().log_prob(torch.as_tensor(X, dtype=torch.float32)).double().numpy()

    def sample(self, n, random_state=0):
        torch.manual_seed(random_state)
        with torch.no_grad():
            return self.flow_().sample((n,)).double().numpy()


def zuko_available() -> bool:
    try:
        import zuko  # noqa: F401
    except ImportError:
        return False
    return True


def fit_zuko(X, settings, trace=None):
    model = ZukoNSF(max_epochs=settings.zuko_max_epochs, patience=settings.zuko_patience, seed=settings.seed)
    return model.fit(X, trace), {"epochs": model.n_iter_}


# Fitters that record a HeldOutTrace (the others are timed as a whole).
TRACED = ("flow", "zuko")
FITTERS: dict[str, Callable] = {
    "flow": fit_flow,
    "flow_tuned": fit_flow_tuned,
    "gmm": fit_gmm,
    "kde": fit_kde,
    "zuko": fit_zuko,
}


# ------------------------------------------------------------ measurement


def _sample(model, n, seed):
    if isinstance(model, ZukoNSF):
        return model.sample(n, seed)
    if isinstance(model, GaussianMixture):
        return model.sample(n)[0]  # seeded by the model's random_state; returns (X, labels)
    return model.sample(n, random_state=seed)


def measure(model_name: str, data: datasets.Dataset, settings: Settings) -> Result:
    scaler = StandardScaler().fit(data.X_train)
    X_train, X_test = scaler.transform(data.X_train), scaler.transform(data.X_test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        if model_name in TRACED:
            trace = HeldOutTrace(X_test)
            model, params = FITTERS[model_name](X_train, settings, trace)
            fit_seconds, points = trace.seconds, trace.points
        else:
            start = time.perf_counter()
            model, params = FITTERS[model_name](X_train, settings)
            fit_seconds, points = time.perf_counter() - start, []

    log_likelihood = float(np.mean(model.score_samples(X_test)))

    repeats = max(1, math.ceil(settings.n_throughput / X_test.shape[0]))
    X_eval = np.tile(X_test, (repeats, 1))[: max(settings.n_throughput, 1)]
    start = time.perf_counter()
    model.score_samples(X_eval)
    score_rate = X_eval.shape[0] / (time.perf_counter() - start)

    start = time.perf_counter()
    _sample(model, settings.n_throughput, settings.seed)
    sample_rate = settings.n_throughput / (time.perf_counter() - start)

    result = Result(data.name, model_name, log_likelihood, fit_seconds, score_rate, sample_rate, params, trace=points)
    if data.log_density is not None:
        optimum = true_optimum(data, scaler)
        result.gap = optimum - log_likelihood
        result.gap_per_dim = result.gap / X_test.shape[1]
    return result


def true_optimum(data: datasets.Dataset, scaler: StandardScaler) -> float:
    """E[log p] on the test part, in standardized units (the scaler's log-det added)."""
    return float(np.mean(data.log_density(data.X_test)) + np.log(scaler.scale_).sum())


# ------------------------------------------------------------------ report


def _rows(results: list[Result], optima: dict[str, float]):
    """(dataset, result) per table row; (dataset, None) for a synthetic set's true optimum, before its results."""
    previous = None
    for r in results:
        if r.dataset != previous and r.dataset in optima:
            yield r.dataset, None
        previous = r.dataset
        yield r.dataset, r


def format_table(results: list[Result], optima: dict[str, float]) -> str:
    header = (
        f"{'dataset':<15} {'model':<11} {'test loglik':>12} {'gap/dim':>8} {'fit s':>8} "
        f"{'score rows/s':>13} {'sample rows/s':>14}  params"
    )
    lines = [header, "-" * len(header)]
    for dataset, r in _rows(results, optima):
        if r is None:
            lines.append(f"{dataset:<15} {'TRUE E[logp]':<11} {optima[dataset]:>12.3f}")
            continue
        gap = "" if r.gap_per_dim is None else f"{r.gap_per_dim:8.4f}"
        lines.append(
            f"{r.dataset:<15} {r.model:<11} {r.test_log_likelihood:>12.3f} {gap:>8} {r.fit_seconds:>8.1f} "
            f"{r.score_rows_per_second:>13,.0f} {r.sample_rows_per_second:>14,.0f}  "
            + ", ".join(f"{k}={v}" for k, v in r.params.items())
        )
    return "\n".join(lines)


def format_markdown(results: list[Result], optima: dict[str, float]) -> str:
    """The table of ``format_table`` in Markdown, for docs/benchmarks.md."""
    lines = [
        "| dataset | model | test loglik | gap/dim | fit s | score rows/s | sample rows/s | chosen |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for dataset, r in _rows(results, optima):
        if r is None:
            lines.append(f"| {dataset} | *true E[log p]* | {optima[dataset]:.3f} | 0 | | | | |")
            continue
        gap = "" if r.gap_per_dim is None else f"{r.gap_per_dim:.4f}"
        chosen = ", ".join(f"{k}: {v}" for k, v in r.params.items())
        rates = [
            f"{rate:,.0f}" if math.isfinite(rate) else ""
            for rate in (r.score_rows_per_second, r.sample_rows_per_second)
        ]
        lines.append(
            f"| {r.dataset} | {r.model} | {r.test_log_likelihood:.3f} | {gap} | {r.fit_seconds:.0f} | "
            f"{rates[0]} | {rates[1]} | {chosen} |"
        )
    return "\n".join(lines)


def _first_reaching(trace: list, target: float) -> float | None:
    return next((seconds for seconds, score in trace if score >= target), None)


def time_to_reach_zuko(results: list[Result]) -> list[dict]:
    """Per dataset: fit seconds each flow needed to reach zuko NSF's held-out log-likelihood.

    zuko's time is that of the first epoch whose held-out score reached the
    score of the weights it keeps (its best epoch or earlier), not of its whole
    fit with the patience epochs after it: the stricter comparison. The flow
    counts as reaching it only if the model it keeps does too.
    """
    by_key = {(r.dataset, r.model): r for r in results}
    rows = []
    for (name, model), zuko in by_key.items():
        flow = by_key.get((name, "flow"))
        if model != "zuko" or flow is None or not zuko.trace or not flow.trace:
            continue
        target = zuko.test_log_likelihood
        zuko_seconds = _first_reaching(zuko.trace, target - 1e-6)
        flow_seconds = _first_reaching(flow.trace, target) if flow.test_log_likelihood >= target else None
        ratio = None if flow_seconds is None or not zuko_seconds else flow_seconds / zuko_seconds
        rows.append(
            {
                "dataset": name,
                "zuko_test_loglik": target,
                "zuko_seconds": zuko_seconds,
                "flow_seconds": flow_seconds,
                "ratio": ratio,
            }
        )
    return rows


def zuko_time_to_score(results: list[Result]) -> list[dict]:
    """Per dataset with a zuko row: the fit seconds zuko needed to reach its own final held-out score.

    The zuko half of ``time_to_reach_zuko``, kept on its own so that a baseline run
    without the flow still records it (the flow's rows can be merged in later).
    """
    return [
        {
            "dataset": r.dataset,
            "zuko_test_loglik": r.test_log_likelihood,
            "zuko_seconds": _first_reaching(r.trace, r.test_log_likelihood - 1e-6),
            "zuko_fit_seconds": r.fit_seconds,
        }
        for r in results
        if r.model == "zuko" and r.trace
    ]


def format_time_to_reach(rows: list[dict]) -> str:
    lines = ["fit seconds to reach zuko NSF's held-out log-likelihood (target: flow / zuko <= 0.5)"]
    for row in rows:
        flow = "never" if row["flow_seconds"] is None else f"{row['flow_seconds']:.1f}s"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"{row['dataset']:<15} zuko {row['zuko_test_loglik']:10.3f} in {row['zuko_seconds']:8.1f}s  "
            f"flow {flow:>9}  ratio {ratio}"
        )
    return "\n".join(lines)


def _warm_up(model_names: list[str]) -> None:
    """One tiny fit of each flow, untimed: the first optimizer of a process imports torch._dynamo (~2 s)."""
    X = np.random.default_rng(0).standard_normal((64, 2))
    tiny = Settings(quick=True, flow_max_epochs=1, zuko_max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if any(m.startswith("flow") for m in model_names):
            fit_flow(X, tiny)
        if "zuko" in model_names:
            fit_zuko(X, tiny)


def run(
    dataset_names: list[str], model_names: list[str], settings: Settings, log: Callable[[str], None] = print
) -> dict:
    if "zuko" in model_names and not zuko_available():
        log("zuko is not installed: skipping the zuko NSF contender (pip install zuko)")
        model_names = [m for m in model_names if m != "zuko"]
    _warm_up(model_names)
    results: list[Result] = []
    optima: dict[str, float] = {}
    shapes: dict[str, list[int]] = {}
    for name in dataset_names:
        data = datasets.load(name, max_rows=settings.max_rows, seed=settings.seed)
        shapes[name] = [data.X_train.shape[0], data.X_test.shape[0], data.X_train.shape[1]]
        if data.log_density is not None:
            optima[name] = true_optimum(data, StandardScaler().fit(data.X_train))
        for model_name in model_names:
            result = measure(model_name, data, settings)
            results.append(result)
            gap = "" if result.gap_per_dim is None else f" gap/dim {result.gap_per_dim:.4f}"
            log(
                f"{name:<15} {model_name:<11} {result.test_log_likelihood:10.3f}{gap}  "
                f"fit {result.fit_seconds:.1f}s  {result.params}"
            )
    return {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch_threads": torch.get_num_threads(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
        },
        "settings": asdict(settings),
        "shapes": shapes,
        "true_optimum": optima,
        "results": [asdict(r) for r in results],
        "time_to_reach_zuko": time_to_reach_zuko(results),
        "zuko_time_to_score": zuko_time_to_score(results),
        "table": format_table(results, optima),
    }


def merge(paths: list[str], note: str | None = None, dataset_names=None, model_names=None) -> dict:
    """One report from several runs (e.g. one process per model), ordered by dataset then model.

    A row measured in more than one run is taken from the last path that has it;
    only rows of ``dataset_names`` and ``model_names`` are kept (all when None).
    Each row's ``source`` names the file it was measured in (kept if already set).
    """
    reports = []
    for path in paths:
        with open(path) as f:
            reports.append(json.load(f))
        for r in reports[-1]["results"]:
            r["source"] = r.get("source") or os.path.basename(path)
    by_key = {
        (r["dataset"], r["model"]): r
        for report in reports
        for r in report["results"]
        if (dataset_names is None or r["dataset"] in dataset_names)
        and (model_names is None or r["model"] in model_names)
    }
    order = {name: i for i, name in enumerate(datasets.NAMES)}
    keys = sorted(by_key, key=lambda k: (order.get(k[0], len(order)), MODELS.index(k[1])))
    results = [Result(**by_key[k]) for k in keys]
    kept = {dataset for dataset, _ in keys}
    optima = {k: v for report in reports for k, v in report["true_optimum"].items() if k in kept}
    merged = dict(reports[0])
    merged["shapes"] = {k: v for report in reports for k, v in report["shapes"].items() if k in kept}
    merged["true_optimum"] = optima
    merged["results"] = [asdict(r) for r in results]
    merged["time_to_reach_zuko"] = time_to_reach_zuko(results)
    merged["zuko_time_to_score"] = zuko_time_to_score(results)
    merged["table"] = format_table(results, optima)
    # Each input's settings and note: runs may differ (e.g. a smaller GaussianMixture grid).
    merged["sources"] = {
        os.path.basename(path): {"settings": report.get("settings"), "note": report.get("note")}
        for path, report in zip(paths, reports)
    }
    if note is not None:
        merged["note"] = note
    return merged


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few epochs (seconds; for CI)")
    parser.add_argument("--datasets", nargs="+", default=datasets.NAMES, choices=datasets.NAMES)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", default=None, help="write the results as JSON to this path")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown as well")
    parser.add_argument(
        "--merge", nargs="+", default=None, metavar="JSON", help="combine earlier runs instead of running"
    )
    parser.add_argument(
        "--gmm-components",
        nargs="+",
        type=int,
        default=None,
        metavar="K",
        help="n_components grid of the tuned GaussianMixture instead of 1, 2, 4, ..., 64 (recorded in the JSON)",
    )
    parser.add_argument(
        "--note", default=None, help="with --merge: the merged report's note (--datasets and --models filter the rows)"
    )
    args = parser.parse_args(argv)

    if args.merge:
        report = merge(args.merge, args.note, args.datasets, args.models)
    else:
        settings = Settings.for_mode(args.quick)
        settings.gmm_components = args.gmm_components
        report = run(args.datasets, args.models, settings)
    print()
    print(report["table"])
    if args.markdown:
        results = [Result(**r) for r in report["results"]]
        print()
        print(format_markdown(results, report["true_optimum"]))
    if report.get("time_to_reach_zuko"):
        print()
        print(format_time_to_reach(report["time_to_reach_zuko"]))
    if report.get("zuko_time_to_score"):
        print()
        print("fit seconds zuko NSF needed to reach its own final held-out log-likelihood (of its whole fit)")
        for row in report["zuko_time_to_score"]:
            seconds = "?" if row["zuko_seconds"] is None else f"{row['zuko_seconds']:.1f}s"
            fit = row["zuko_fit_seconds"]
            print(f"{row['dataset']:<16} {row['zuko_test_loglik']:10.3f} in {seconds:>8}  (fit {fit:.1f}s)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
