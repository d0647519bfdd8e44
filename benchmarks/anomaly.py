"""Anomaly-detection benchmark: FlowOutlierDetector against scikit-learn's detectors.

Every detector is trained on inliers only and ranks a test set of held-out
inliers and outliers by ``score_samples`` (higher is more normal). We report
ROC AUC and average precision (outliers are the positive class) for all
contenders in the same run, and the mean rank of each detector across tasks.

Tasks
-----
- ``breast_cancer``: train on 70% of the benign rows; test on the other benign
  rows and every malignant row.
- ``digits_<k>``: train on 70% of the images of digit ``k``; test on the other
  images of ``k`` and 200 images of the other digits.
- Synthetic tasks with a known inlier density (its AUC is reported as the
  ``oracle`` ceiling, not ranked): ``ring_2d`` (a noisy circle, outliers uniform
  on the bounding box), ``sine_8d`` (four independent pairs ``x2 = sin(2 x1) +
  noise``; outliers have the same marginals but independent coordinates, so
  only the dependence gives them away) and ``mixture_10d`` (a three-component
  Gaussian mixture with random covariances; outliers from a Gaussian with the
  same mean and covariance).

Hyperparameters are chosen without outlier labels: GaussianMixture
(``n_components``, ``covariance_type``) and KernelDensity (``bandwidth``) by
3-fold cross-validated log-likelihood on the training inliers; the flow runs
with its defaults (early stopping on 10% of the training inliers);
IsolationForest, LocalOutlierFactor and OneClassSVM with scikit-learn's
recommended defaults. Every detector but IsolationForest sees standardized
features (the flow standardizes internally).

Run ``python benchmarks/anomaly.py`` (full) or ``--quick`` (one small task,
a few epochs: a smoke test). Results go to ``benchmarks/results/anomaly.json``;
``--from-json PATH`` prints the Markdown table of a saved results file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.neighbors import KernelDensity, LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from skflow import FlowDensity, FlowOutlierDetector  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "anomaly.json"
DETECTORS = ("FlowOutlierDetector", "IsolationForest", "LocalOutlierFactor", "OneClassSVM", "GaussianMixture", "KDE")


@dataclass
class Task:
    name: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray  # 1 = outlier
    true_log_density: object = None  # callable on X, or None
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------- tasks


def _split_inliers(X_in, X_out, seed, n_outliers=None):
    """70/30 split of the inliers; the test set adds outliers (all, or n_outliers of them)."""
    rng = np.random.RandomState(seed)
    X_train, X_held = train_test_split(X_in, test_size=0.3, random_state=seed)
    if n_outliers is not None and n_outliers < len(X_out):
        X_out = X_out[rng.choice(len(X_out), n_outliers, replace=False)]
    X_test = np.vstack([X_held, X_out])
    y_test = np.r_[np.zeros(len(X_held)), np.ones(len(X_out))].astype(int)
    return X_train, X_test, y_test


def breast_cancer_task(seed=0):
    X, y = load_breast_cancer(return_X_y=True)  # target 1 = benign
    X_train, X_test, y_test = _split_inliers(X[y == 1], X[y == 0], seed)
    return Task("breast_cancer", X_train, X_test, y_test)


def digits_task(digit, seed=0):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_test = _split_inliers(X[y == digit], X[y != digit], seed, n_outliers=200)
    return Task(f"digits_{digit}", X_train, X_test, y_test)


def ring_task(n_train=1000, n_test=500, seed=0):
    radius, sigma = 2.0, 0.15
    rng = np.random.RandomState(seed)

    def sample(n):
        theta = rng.uniform(0, 2 * np.pi, n)
        r = radius + sigma * rng.normal(size=n)
        return np.c_[r * np.cos(theta), r * np.sin(theta)]

    def log_density(X):
        # polar change of variables: p(x) = p_r(|x|) / (2 pi |x|)
        r = np.linalg.norm(X, axis=1)
        return norm.logpdf(r, radius, sigma) - np.log(2 * np.pi * np.maximum(r, 1e-300))

    X_out = rng.uniform(-3, 3, size=(n_test // 4, 2))
    X_test = np.vstack([sample(n_test), X_out])
    y_test = np.r_[np.zeros(n_test), np.ones(len(X_out))].astype(int)
    return Task("ring_2d", sample(n_train), X_test, y_test, log_density)


def sine_task(n_train=2000, n_test=500, n_pairs=4, seed=0):
    noise = 0.1
    rng = np.random.RandomState(seed)

    def sample(n):
        x1 = rng.normal(size=(n, n_pairs))
        x2 = np.sin(2 * x1) + noise * rng.normal(size=(n, n_pairs))
        return np.stack([x1, x2], axis=-1).reshape(n, 2 * n_pairs)

    def log_density(X):
        x1, x2 = X[:, 0::2], X[:, 1::2]
        return (norm.logpdf(x1) + norm.logpdf(x2, np.sin(2 * x1), noise)).sum(1)

    # Outliers: every coordinate drawn independently from its inlier marginal (permuted columns).
    pool = sample(n_test // 4)
    X_out = np.column_stack([rng.permutation(col) for col in pool.T])
    X_test = np.vstack([sample(n_test), X_out])
    y_test = np.r_[np.zeros(n_test), np.ones(len(X_out))].astype(int)
    return Task(f"sine_{2 * n_pairs}d", sample(n_train), X_test, y_test, log_density)


def mixture_task(n_train=2000, n_test=500, d=10, k=3, seed=0):
    rng = np.random.RandomState(seed)
    means = rng.normal(scale=3.0, size=(k, d))
    covs = []
    for _ in range(k):
        A = rng.normal(size=(d, d)) / np.sqrt(d)
        covs.append(A @ A.T + 0.1 * np.eye(d))
    components = [multivariate_normal(m, c) for m, c in zip(means, covs)]

    def sample(n):
        labels = rng.randint(k, size=n)
        return np.vstack([components[j].rvs(1, random_state=rng) for j in labels]).reshape(n, d)

    def log_density(X):
        return logsumexp([c.logpdf(X) for c in components], axis=0) - np.log(k)

    X_train = sample(n_train)
    X_out = rng.multivariate_normal(X_train.mean(0), np.cov(X_train.T), size=n_test // 4)
    X_test = np.vstack([sample(n_test), X_out])
    y_test = np.r_[np.zeros(n_test), np.ones(len(X_out))].astype(int)
    return Task(f"mixture_{d}d", X_train, X_test, y_test, log_density)


def make_tasks(quick=False, seed=0):
    """The tasks; ``seed`` sets the splits and the synthetic draws."""
    if quick:
        return [ring_task(n_train=300, n_test=200, seed=seed)]
    return [
        breast_cancer_task(seed),
        digits_task(0, seed),
        digits_task(3, seed),
        digits_task(7, seed),
        ring_task(seed=seed),
        sine_task(seed=seed),
        mixture_task(seed=seed),
    ]


# ------------------------------------------------------------- detectors


def _cv_search(estimator, grid, X):
    """Pick hyperparameters by 3-fold cross-validated log-likelihood on the training inliers."""
    search = GridSearchCV(estimator, grid, cv=KFold(3, shuffle=True, random_state=0), error_score=-np.inf)
    return search.fit(X)


def make_detector(name, X_train, quick=False, seed=0):
    """An unfitted detector; density models get their hyperparameters by CV here."""
    n, d = X_train.shape
    if name == "FlowOutlierDetector":
        density = FlowDensity(random_state=seed)
        if quick:
            density.set_params(n_transforms=2, max_epochs=10)
        return FlowOutlierDetector(density=density)
    if name == "IsolationForest":
        return IsolationForest(n_estimators=200, random_state=seed)
    if name == "LocalOutlierFactor":
        return make_pipeline(StandardScaler(), LocalOutlierFactor(n_neighbors=min(20, n - 1), novelty=True))
    if name == "OneClassSVM":
        return make_pipeline(StandardScaler(), OneClassSVM(gamma="scale", nu=0.1))
    if name == "GaussianMixture":
        pipe = make_pipeline(StandardScaler(), GaussianMixture(reg_covar=1e-3, n_init=2, random_state=seed))
        grid = {
            "gaussianmixture__n_components": [1, 2, 3, 5, 8, 12, 16, 24] if not quick else [1, 2],
            "gaussianmixture__covariance_type": ["full", "diag"],
        }
        return _cv_search(pipe, grid, X_train).best_estimator_
    if name == "KDE":
        pipe = make_pipeline(StandardScaler(), KernelDensity())
        grid = {"kerneldensity__bandwidth": np.logspace(-1.5, 1, 6 if quick else 26)}
        return _cv_search(pipe, grid, X_train).best_estimator_
    raise ValueError(f"unknown detector {name!r}")


def describe(est):
    """The hyperparameters chosen, for the record."""
    if hasattr(est, "steps"):
        est = est.steps[-1][1]
    if isinstance(est, GaussianMixture):
        return {"n_components": est.n_components, "covariance_type": est.covariance_type}
    if isinstance(est, KernelDensity):
        return {"bandwidth": float(est.bandwidth)}
    if isinstance(est, FlowOutlierDetector):
        return {"n_iter": int(est.density_.n_iter_), "best_epoch": int(est.density_.best_epoch_)}
    return {}


# ------------------------------------------------------------------ run


def evaluate(task, names, quick=False, seed=0):
    rows = {}
    for name in names:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            detector = make_detector(name, task.X_train, quick=quick, seed=seed)
            detector.fit(task.X_train)
        normality = detector.score_samples(task.X_test)
        seconds = time.perf_counter() - start
        # -inf log-densities are the most abnormal; keep them ranked last but finite for the metrics.
        outlierness = -np.nan_to_num(normality, neginf=np.finfo(float).min / 2)
        rows[name] = {
            "roc_auc": float(roc_auc_score(task.y_test, outlierness)),
            "average_precision": float(average_precision_score(task.y_test, outlierness)),
            "seconds": round(seconds, 2),
            "params": describe(detector),
        }
        print(
            f"  {task.name:14s} {name:20s} AUC {rows[name]['roc_auc']:.3f}  AP "
            f"{rows[name]['average_precision']:.3f}  {seconds:6.1f}s",
            flush=True,
        )
    if task.true_log_density is not None:
        outlierness = -task.true_log_density(task.X_test)
        rows["oracle"] = {
            "roc_auc": float(roc_auc_score(task.y_test, outlierness)),
            "average_precision": float(average_precision_score(task.y_test, outlierness)),
        }
    return rows


def mean_ranks(results, names, metric):
    """Rank 1 is best on each task (ties share the mean rank); average over tasks."""
    from scipy.stats import rankdata

    ranks = []
    for rows in results.values():
        values = np.array([rows[name][metric] for name in names])
        ranks.append(rankdata(-values))
    return dict(zip(names, np.mean(ranks, axis=0).round(2).tolist()))


def markdown_table(results, names, ranks):
    """The Markdown table of a run: AUC / AP per task (bold: best AUC), then the mean ranks (bold: lowest)."""
    has_oracle = any("oracle" in rows for rows in results.values())
    header = ["task", *names] + (["oracle"] if has_oracle else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for task, rows in results.items():
        best = max(rows[name]["roc_auc"] for name in names)
        cells = []
        for name in names:
            auc, ap = rows[name]["roc_auc"], rows[name]["average_precision"]
            cell = f"{auc:.3f} / {ap:.3f}"
            cells.append(f"**{cell}**" if auc == best else cell)
        if has_oracle:
            oracle = rows.get("oracle")
            cells.append(f"{oracle['roc_auc']:.3f} / {oracle['average_precision']:.3f}" if oracle else "")
        lines.append("| " + " | ".join([task, *cells]) + " |")
    for metric, label in (("roc_auc", "mean rank (AUC)"), ("average_precision", "mean rank (AP)")):
        best = min(ranks[metric][name] for name in names)
        cells = [f"{ranks[metric][name]:.2f}" for name in names]
        cells = [f"**{cell}**" if ranks[metric][name] == best else cell for name, cell in zip(names, cells)]
        lines.append("| " + " | ".join([label, *cells] + ([""] if has_oracle else [])) + " |")
    return "\n".join(lines)


def ranked_table(results):
    """The detectors' mean ranks by each metric, and the Markdown table of the results with them."""
    ranks = {metric: mean_ranks(results, DETECTORS, metric) for metric in ("roc_auc", "average_precision")}
    return ranks, markdown_table(results, DETECTORS, ranks)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small task and a few epochs (smoke test)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file for the results")
    parser.add_argument("--tasks", nargs="*", help="run only these task names")
    parser.add_argument("--seed", type=int, default=0, help="seeds the splits, the synthetic data and the models")
    parser.add_argument(
        "--from-json", type=Path, metavar="PATH", help="print the Markdown table of a saved results file; runs nothing"
    )
    args = parser.parse_args(argv)

    if args.from_json is not None:
        record = json.loads(args.from_json.read_text())
        print(ranked_table(record["results"])[1])
        return record

    tasks = make_tasks(args.quick, args.seed)
    if args.tasks:
        tasks = [t for t in tasks if t.name in args.tasks]
    results, shapes = {}, {}
    start = time.perf_counter()
    for task in tasks:
        shapes[task.name] = {
            "n_train": len(task.X_train),
            "n_test_inliers": int((task.y_test == 0).sum()),
            "n_test_outliers": int((task.y_test == 1).sum()),
            "n_features": task.X_train.shape[1],
        }
        results[task.name] = evaluate(task, DETECTORS, quick=args.quick, seed=args.seed)
    ranks, table = ranked_table(results)
    print("\nROC AUC / average precision (outliers positive); bold: best AUC\n")
    print(table)
    record = {
        "quick": args.quick,
        "seed": args.seed,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "total_seconds": round(time.perf_counter() - start, 1),
        "tasks": shapes,
        "results": results,
        "mean_rank": ranks,
        "table_markdown": table,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
