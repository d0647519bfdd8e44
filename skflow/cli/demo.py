"""The demo: FlowDensity next to tuned GaussianMixture and KernelDensity on data shipped with scikit-learn.

``python -m skflow demo`` fits the three estimators on each dataset's training part (80%), prints their mean
log-likelihoods on the held-out 20% side by side, and saves a figure of the densities and samples on two moons.
``--quick`` runs the same code on tiny settings in seconds (for tests).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KernelDensity
from sklearn.preprocessing import StandardScaler

from ..density import FlowDensity

MODELS = ("FlowDensity", "GaussianMixture", "KernelDensity")


@dataclass
class DatasetResult:
    """Held-out mean log-likelihood and fit time of each model on one dataset."""

    name: str
    n_samples: int
    n_features: int
    log_likelihood: dict[str, float] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    models: dict[str, object] = field(default_factory=dict)
    row_log_likelihoods: dict[str, np.ndarray] = field(default_factory=dict)  # per held-out row

    @property
    def best(self) -> str:
        return max(self.log_likelihood, key=self.log_likelihood.get)


def _datasets(quick: bool) -> dict[str, np.ndarray]:
    if quick:
        return {
            "two moons": make_moons(300, noise=0.05, random_state=0)[0],
            "breast cancer": load_breast_cancer().data[:, :6],
        }
    return {
        "two moons": make_moons(2000, noise=0.05, random_state=0)[0],
        "breast cancer": load_breast_cancer().data,
        "wine": load_wine().data,
    }


def _models(quick: bool, random_state: int) -> dict[str, object]:
    """The contenders: FlowDensity with its defaults; the classical estimators tuned by 3-fold cross-validation."""
    if quick:
        flow = FlowDensity(n_transforms=2, hidden_units=(16, 16), max_epochs=5, random_state=random_state)
        components, bandwidths = [1, 2], np.logspace(-1, 0, 3)
    else:
        flow = FlowDensity(random_state=random_state)
        components, bandwidths = [1, 2, 4, 8, 16], np.logspace(-1.5, 0.5, 12)
    return {
        "FlowDensity": flow,
        "GaussianMixture": GridSearchCV(
            GaussianMixture(random_state=random_state),
            {"n_components": components, "covariance_type": ["full", "diag"]},
            cv=3,
        ),
        "KernelDensity": GridSearchCV(KernelDensity(), {"bandwidth": bandwidths}, cv=3),
    }


def run_demo(plot_path: str = "skflow_demo.png", quick: bool = False, random_state: int = 0) -> list[DatasetResult]:
    """Fit the three estimators on each dataset, print the held-out table, save the figure.

    Parameters
    ----------
    plot_path : str, default="skflow_demo.png"
        Where to save the figure (PNG); missing parent folders are created.
    quick : bool, default=False
        Tiny data and settings: a smoke test of seconds, not a comparison.
    random_state : int, default=0
        Seed of the train/test split and of the models.

    Returns
    -------
    results : list of DatasetResult
    """
    _check_plot_path(plot_path)
    start = time.perf_counter()
    if quick:
        print("skflow demo, quick mode: tiny data and settings, a smoke test (the numbers mean nothing)")
    else:
        print("skflow demo: FlowDensity with its defaults vs GaussianMixture and KernelDensity tuned by 3-fold CV")
    results = []
    for name, X in _datasets(quick).items():
        X_train, X_test = train_test_split(X, test_size=0.2, random_state=random_state)
        # Standardize on the training part, so every model sees the same units and KDE a sensible scale.
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        result = DatasetResult(name, X.shape[0], X.shape[1])
        print(f"  fitting on {name} ({X_train.shape[0]} training rows, {X.shape[1]} features):", end="", flush=True)
        for model_name, model in _models(quick, random_state).items():
            tic = time.perf_counter()
            with warnings.catch_warnings():
                if quick:  # 5 epochs never reach early stopping; saying so is noise here
                    warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train)
            result.fit_seconds[model_name] = time.perf_counter() - tic
            result.row_log_likelihoods[model_name] = model.score_samples(X_test)
            result.log_likelihood[model_name] = float(np.mean(result.row_log_likelihoods[model_name]))
            result.models[model_name] = getattr(model, "best_estimator_", model)
            print(
                f" {model_name} {result.fit_seconds[model_name]:.1f} s", end=";" if model_name != MODELS[-1] else "\n"
            )
        results.append(result)
    print()
    print(format_table(results))
    print()
    print(format_paired_differences(results))
    print(
        "\nA difference of d nats means the better model gives the held-out rows exp(d) times the density, on average"
        " (geometric mean): 1 nat = 2.7x, 3 nats = 20x."
    )
    moons = next(r for r in results if r.name == "two moons")
    if _plot(moons, plot_path, random_state):
        print(f"\nFigure (two moons: fitted densities and samples) saved to {plot_path}")
    print(f"Total time {time.perf_counter() - start:.0f} s.")
    return results


def format_table(results: list[DatasetResult]) -> str:
    """The side-by-side table: held-out log-likelihoods (best marked with *) and fit times.

    Examples
    --------
    >>> r = DatasetResult("toy", 100, 2, {"FlowDensity": -1.5, "GaussianMixture": -2.25, "KernelDensity": -2.0},
    ...                   {"FlowDensity": 3.0, "GaussianMixture": 0.1, "KernelDensity": 0.2})
    >>> print(format_table([r]))  # doctest: +NORMALIZE_WHITESPACE
    Held-out mean log-likelihood per sample (nats; fitted on 80% of the rows, scored on the other 20%;
    standardized features; higher is better, * = best)
    dataset  rows  features  FlowDensity  GaussianMixture  KernelDensity
    toy       100         2      -1.500*           -2.250         -2.000
    <BLANKLINE>
    Fit time (seconds; GaussianMixture and KernelDensity include their grid search)
    dataset  rows  features  FlowDensity  GaussianMixture  KernelDensity
    toy       100         2          3.0              0.1            0.2
    """
    name_width = max(len("dataset"), *(len(r.name) for r in results))
    header = f"{'dataset':<{name_width}}  {'rows':>5}  features" + "".join(f"  {m:>15}" for m in MODELS)
    lines = [
        "Held-out mean log-likelihood per sample (nats; fitted on 80% of the rows, scored on the other 20%; "
        "standardized features; higher is better, * = best)"
    ]
    lines.append(header)
    for r in results:
        cells = "".join(f"  {f'{r.log_likelihood[m]:.3f}' + ('*' if m == r.best else ' '):>15}" for m in MODELS)
        lines.append(f"{r.name:<{name_width}}  {r.n_samples:>5}  {r.n_features:>8}{cells}")
    lines += ["", "Fit time (seconds; GaussianMixture and KernelDensity include their grid search)", header]
    for r in results:
        cells = "".join(f"  {r.fit_seconds[m]:>14.1f} " for m in MODELS)
        lines.append(f"{r.name:<{name_width}}  {r.n_samples:>5}  {r.n_features:>8}{cells}")
    return "\n".join(line.rstrip() for line in lines)


def format_paired_differences(results: list[DatasetResult]) -> str:
    """FlowDensity's log-likelihood minus the better other model's, averaged over the same held-out rows,
    with the standard error of that mean: a difference within about two standard errors of 0 is a tie.

    Examples
    --------
    >>> rows = {"FlowDensity": np.array([-1.0, -2.0, -1.5, -1.5]),
    ...         "GaussianMixture": np.array([-1.5, -2.0, -2.0, -2.5]),
    ...         "KernelDensity": np.array([-3.0, -3.0, -3.0, -3.0])}
    >>> r = DatasetResult("toy", 20, 2, {m: float(v.mean()) for m, v in rows.items()}, row_log_likelihoods=rows)
    >>> print(format_paired_differences([r]))  # doctest: +NORMALIZE_WHITESPACE
    FlowDensity minus the better of the other two, per held-out row (mean +- standard error; within about two
    standard errors of 0, the difference is noise of the split)
    toy  +0.500 +- 0.204  (against GaussianMixture)
    """
    lines = [
        "FlowDensity minus the better of the other two, per held-out row (mean +- standard error; within about two "
        "standard errors of 0, the difference is noise of the split)"
    ]
    name_width = max(len(r.name) for r in results)
    for r in results:
        rival = max((m for m in MODELS if m != "FlowDensity"), key=r.log_likelihood.get)
        difference = r.row_log_likelihoods["FlowDensity"] - r.row_log_likelihoods[rival]
        error = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else float("nan")
        lines.append(f"{r.name:<{name_width}}  {difference.mean():+.3f} +- {error:.3f}  (against {rival})")
    return "\n".join(lines)


def _check_plot_path(path: str) -> None:
    """Refuse a figure path that cannot be written before the fits, not after them."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"--out {path}: is a directory; give a file name such as {target / 'skflow_demo.png'}")
    # The missing folders are created later: the nearest existing one must be a folder.
    existing = next(p for p in target.resolve().parents if p.exists())
    if not existing.is_dir():
        raise ValueError(f"--out {path}: {str(existing)!r} is not a directory")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return
    supported = Figure().canvas.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in supported:
        raise ValueError(f"--out {path}: unsupported figure format {suffix!r}; use .png, .pdf or .svg")


def _plot(result: DatasetResult, path: str, random_state: int) -> bool:
    """Densities (top) and samples (bottom) of the three models on two moons; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print('\nmatplotlib is not installed, so no figure: pip install matplotlib (or "skflow[examples]")')
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lim = 2.6
    grid = np.linspace(-lim, lim, 160)
    xx, yy = np.meshgrid(grid, grid)
    points = np.c_[xx.ravel(), yy.ravel()]
    densities = {name: np.exp(model.score_samples(points)).reshape(xx.shape) for name, model in result.models.items()}
    # One colour scale for the three panels, so equal colours mean equal densities.
    levels = np.linspace(0.0, max(d.max() for d in densities.values()), 15)

    fig, axes = plt.subplots(2, 3, figsize=(11, 7.4), sharex=True, sharey=True, constrained_layout=True)
    for column, name in enumerate(MODELS):
        model, ax_density, ax_samples = result.models[name], axes[0, column], axes[1, column]
        filled = ax_density.contourf(xx, yy, densities[name], levels=levels, cmap="magma", extend="max")
        title = f"{name}\nheld-out log-likelihood {result.log_likelihood[name]:.3f}"
        ax_density.set_title(title + (" (best)" if name == result.best else ""), fontsize=10)
        if isinstance(model, GaussianMixture):  # seeded by its own random_state; returns (X, labels)
            samples = model.sample(1000)[0]
        else:
            samples = model.sample(1000, random_state=random_state)
        ax_samples.scatter(samples[:, 0], samples[:, 1], s=3, color="tab:blue", alpha=0.6, linewidths=0)
        ax_samples.set_xlim(-lim, lim)
        ax_samples.set_ylim(-lim, lim)
        ax_samples.set_title(f"1000 samples from {name}", fontsize=10)
        for ax in (ax_density, ax_samples):
            ax.set_aspect("equal")
            ax.tick_params(labelsize=8)
    fig.colorbar(filled, ax=axes[0, :], shrink=0.85, label="density", format="%.2f")
    for ax in axes[1, :]:
        ax.set_xlabel("feature 1 (standardized)")
    axes[0, 0].set_ylabel("feature 2 (standardized)")
    axes[1, 0].set_ylabel("feature 2 (standardized)")
    fig.suptitle(f"Two moons ({result.n_samples} points): fitted densities (top) and samples (bottom)", fontsize=12)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
