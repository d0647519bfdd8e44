"""
===========================================
Model selection with GridSearchCV
===========================================

``FlowDensity.score`` returns the mean log-likelihood per sample, so
:class:`~sklearn.model_selection.GridSearchCV` can pick its parameters by
cross-validated likelihood with no scorer to write, exactly as for
:class:`~sklearn.mixture.GaussianMixture` (whose ``score`` is also a mean).
Because both are exact log-densities in the units of ``X``, their scores can
be compared directly; the dashed line is the best GaussianMixture found by the
same search.

Here the grid crosses the coupling type (affine maps as in RealNVP, or
rational-quadratic splines) with the number of coupling layers, on noisy
two-moons data. Splines beat affine couplings clearly; with splines, more
layers help a little. On 600 points in two dimensions a well-chosen mixture
is still as good or better: it has few parameters to estimate. To keep the
example fast, ``max_epochs`` is small and the network is narrow; on your
data, search over ``n_transforms``, ``hidden_units``, ``learning_rate`` and
``batch_size`` first.
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_moons
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV

from skflow import FlowDensity

X, _ = make_moons(600, noise=0.1, random_state=0)

flow_search = GridSearchCV(
    FlowDensity(hidden_units=(32, 32), learning_rate=5e-3, batch_size=128, max_epochs=150, random_state=0),
    {"flow": ["affine", "spline"], "n_transforms": [2, 4]},
    cv=3,
).fit(X)
gmm_search = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 2, 4, 8, 16, 32]}, cv=3).fit(X)

results = pd.DataFrame(flow_search.cv_results_)[
    ["param_flow", "param_n_transforms", "mean_test_score", "std_test_score", "mean_fit_time"]
]
print(results.to_string(index=False))
print("best FlowDensity:", flow_search.best_params_, f"{flow_search.best_score_:.3f}")
print("best GaussianMixture:", gmm_search.best_params_, f"{gmm_search.best_score_:.3f}")

# %%
# Plot
# ----
# Mean cross-validated log-likelihood (error bars: one standard deviation
# over the folds). The refitted best model is ``flow_search.best_estimator_``.
fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
labels = [f"{f}\n{n} layers" for f, n in zip(results["param_flow"], results["param_n_transforms"])]
positions = np.arange(len(results))
ax.errorbar(positions, results["mean_test_score"], yerr=results["std_test_score"], fmt="o", capsize=5, ms=8)
ax.axhline(
    gmm_search.best_score_,
    color="tab:red",
    ls="--",
    label=f"best GaussianMixture ({gmm_search.best_params_['n_components']} components)",
)
top = max(gmm_search.best_score_, (results["mean_test_score"] + results["std_test_score"]).max())
ax.set_ylim(top=top + 0.05)
ax.set_xticks(positions, labels)
ax.set_ylabel("mean log-likelihood per sample\n(3-fold CV, data units, higher is better)")
ax.set_title("GridSearchCV over FlowDensity(flow=..., n_transforms=...)")
ax.legend(loc="lower right")

try:  # the docs show the figures saved here
    figure_dir = Path(__file__).resolve().parents[1] / "docs" / "_static" / "examples"
except NameError:  # no __file__: run by sphinx-gallery or pasted into a notebook
    figure_dir = Path("figures")
figure_dir.mkdir(parents=True, exist_ok=True)
fig.savefig(figure_dir / "model_selection.png", dpi=80)

# sphinx_gallery_thumbnail_path = "_static/examples/model_selection.png"
