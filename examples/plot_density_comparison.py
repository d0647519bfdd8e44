"""
=========================================================
FlowDensity vs KernelDensity vs GaussianMixture in 2-D
=========================================================

Three two-dimensional datasets whose shapes are hard for classical density
estimators: two interleaving moons, two concentric rings and a checkerboard
with sharp edges. Each model is fitted on 1,000 points and scored on 500
held-out points; the panel titles give the held-out mean log-likelihood
(nats per sample, higher is better).

* :class:`~sklearn.neighbors.KernelDensity` (bandwidth chosen by
  cross-validation) puts a Gaussian bump on every training point: flexible,
  but it blurs sharp edges and its cost grows with the training set.
* :class:`~sklearn.mixture.GaussianMixture` (number of components chosen by
  cross-validation) approximates curved shapes with a handful of ellipses.
* :class:`~skflow.FlowDensity` (its defaults) starts from a Gaussian mixture
  tuned like the one on the right and learns one smooth invertible map that
  bends the data onto it; a trained map replaces the plain mixture only when
  it is clearly better on held-out validation rows. Its density is exact and
  its cost does not grow with the training set.

A thousand points in two dimensions is kernel density's home ground, and the
differences are small (tenths of a nat at most). Look at the shapes: on the
moons the flow bends its mixture along the curves; on the checkerboard its
splines (16 bins on two features, ``n_bins="auto"``) draw the squares' sharp
edges, which kernel density blurs, though a faint grain of the spline pieces
shows inside the squares; the mixture approximates curves with polygons of
ellipses; the kernel estimate is bumpy where the data is sparse. The
:doc:`benchmarks </benchmarks>` compare the three on real, higher-dimensional
data. The example takes a few minutes on two CPU cores.
"""

# %%
# Data
# ----
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_circles, make_moons
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from skflow import FlowDensity


def checkerboard(n_samples, random_state):
    """Uniform on the dark squares of a 4 x 4 board on [-2, 2]^2."""
    rng = np.random.default_rng(random_state)
    x1 = rng.uniform(-2, 2, n_samples)
    x2 = rng.uniform(0, 1, n_samples) - 2 + 2 * rng.integers(0, 2, n_samples) + np.floor(x1) % 2
    return np.column_stack([x1, x2])


n_train, n_test = 1000, 500
datasets = {
    "two moons": make_moons(n_train + n_test, noise=0.05, random_state=0)[0],
    "rings": make_circles(n_train + n_test, noise=0.04, factor=0.5, random_state=0)[0],
    "checkerboard": checkerboard(n_train + n_test, random_state=0),
}

# %%
# Models
# ------
# FlowDensity with its defaults (it starts from a Gaussian mixture fitted to the data); the classical
# models tuned by cross-validation, as a user would.


def make_models():
    return {
        "FlowDensity": FlowDensity(random_state=0),
        "KernelDensity": GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-1.7, -0.3, 8)}, cv=3),
        "GaussianMixture": GridSearchCV(
            GaussianMixture(covariance_type="full", random_state=0), {"n_components": [2, 4, 8, 16]}, cv=3
        ),
    }


fitted = {}
for data_name, X in datasets.items():
    X_train, X_test = X[:n_train], X[n_train:]
    for model_name, model in make_models().items():
        model.fit(X_train)
        fitted[data_name, model_name] = (model, model.score_samples(X_test).mean())

# %%
# Densities
# ---------
# Columns: the training points, then each model's density on a grid. The
# colour scale is shared along a row.

model_names = ["FlowDensity", "KernelDensity", "GaussianMixture"]
fig, axes = plt.subplots(len(datasets), 4, figsize=(13, 9.5), layout="constrained")
for row, (data_name, X) in enumerate(datasets.items()):
    X_train = X[:n_train]
    low, high = X.min(axis=0) - 0.4, X.max(axis=0) + 0.4
    g1, g2 = np.meshgrid(np.linspace(low[0], high[0], 120), np.linspace(low[1], high[1], 120))
    grid = np.column_stack([g1.ravel(), g2.ravel()])
    densities = {name: np.exp(fitted[data_name, name][0].score_samples(grid)).reshape(g1.shape) for name in model_names}
    vmax = max(d.max() for d in densities.values())

    ax = axes[row, 0]
    ax.scatter(X_train[:, 0], X_train[:, 1], s=2, color="black", alpha=0.5)
    ax.set_title(f"{data_name}: training data")
    for col, name in enumerate(model_names, start=1):
        ax = axes[row, col]
        ax.pcolormesh(g1, g2, densities[name], cmap="viridis", vmin=0, vmax=vmax, shading="auto")
        ax.set_title(f"{name}\nheld-out log-lik {fitted[data_name, name][1]:.2f}")
    for ax in axes[row]:
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(low[1], high[1])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])

fig.suptitle("Density of each model (brighter = more probable)")
try:  # the docs show the figures saved here
    figure_dir = Path(__file__).resolve().parents[1] / "docs" / "_static" / "examples"
except NameError:  # no __file__: run by sphinx-gallery or pasted into a notebook
    figure_dir = Path("figures")
figure_dir.mkdir(parents=True, exist_ok=True)
fig.savefig(figure_dir / "density_comparison.png", dpi=80)

# %%
# Samples
# -------
# 1,000 points drawn from each fitted model, next to the training data. Good
# samples show the same shape, with no mass in the gaps.

fig, axes = plt.subplots(len(datasets), 4, figsize=(13, 9.5), layout="constrained")
for row, (data_name, X) in enumerate(datasets.items()):
    low, high = X.min(axis=0) - 0.4, X.max(axis=0) + 0.4
    panels = {f"{data_name}: training data": X[:n_train]}
    for name in model_names:
        model = fitted[data_name, name][0]
        estimator = getattr(model, "best_estimator_", model)
        if name == "GaussianMixture":  # draws with its own random_state; returns (X, component labels)
            samples = estimator.sample(n_train)[0]
        else:
            samples = estimator.sample(n_train, random_state=1)
        panels[f"{name} samples"] = samples
    for ax, (title, points) in zip(axes[row], panels.items()):
        ax.scatter(points[:, 0], points[:, 1], s=2, color="black" if "training" in title else "tab:blue", alpha=0.5)
        ax.set_title(title)
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(low[1], high[1])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])

fig.savefig(figure_dir / "sample_comparison.png", dpi=80)

# sphinx_gallery_thumbnail_path = "_static/examples/density_comparison.png"
