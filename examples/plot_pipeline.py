"""
=====================================================
A Pipeline: StandardScaler, PCA and FlowDensity
=====================================================

:class:`~skflow.FlowDensity` is an ordinary scikit-learn estimator, so it can
be the last step of a :class:`~sklearn.pipeline.Pipeline`. Here the 64-pixel
digits that ship with scikit-learn are scaled, reduced to 12 principal
components, and the flow models the density of those components.
``pipeline.score_samples`` then scores new images, and new images are
*generated* by sampling the flow and mapping the samples back through
``PCA.inverse_transform`` and ``StandardScaler.inverse_transform``.

Two things to know:

* ``pipeline.score_samples(X)`` is the log-density of the *PCA scores*, not of
  the 64 pixels: PCA drops 52 dimensions, and neither the scaler's nor the
  projection's change of volume is added. Compare such scores only between
  models that share the same preprocessing, as the GaussianMixture pipeline
  below does.
* FlowDensity standardizes its input itself, so a StandardScaler right before
  it changes nothing; here the scaler is there for PCA.
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflow import FlowDensity

X = load_digits().data
X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)

flow_pipeline = make_pipeline(
    StandardScaler(),
    PCA(n_components=12, random_state=0),
    FlowDensity(n_transforms=4, hidden_units=(64, 64), max_epochs=200, random_state=0),
).fit(X_train)
gmm_pipeline = make_pipeline(
    StandardScaler(),
    PCA(n_components=12, random_state=0),
    GaussianMixture(n_components=10, covariance_type="full", random_state=0),
).fit(X_train)

print(f"held-out log-likelihood of the 12 PCA scores, FlowDensity:     {flow_pipeline.score(X_test):.2f}")
print(f"held-out log-likelihood of the 12 PCA scores, GaussianMixture: {gmm_pipeline.score(X_test):.2f}")

# %%
# Generate digits
# ---------------
# Sample the last step, then undo the preprocessing steps in reverse order.


def generate(pipeline, n_samples):
    scaler, pca, density = pipeline.named_steps.values()
    if isinstance(density, GaussianMixture):
        scores = density.sample(n_samples)[0]
    else:
        scores = density.sample(n_samples, random_state=0)
    return scaler.inverse_transform(pca.inverse_transform(scores))


preprocessing = flow_pipeline[:2]  # the scaler and the PCA, as a Pipeline
rows = {
    "real test digits": X_test[:12],
    "PCA reconstruction\n(the best possible\nwith 12 components)": preprocessing.inverse_transform(
        preprocessing.transform(X_test[:12])
    ),
    "FlowDensity samples": generate(flow_pipeline, 12),
    "GaussianMixture\nsamples": generate(gmm_pipeline, 12),
}

fig, axes = plt.subplots(len(rows), 12, figsize=(12, 4.6), layout="constrained")
for ax_row, (label, images) in zip(axes, rows.items()):
    for ax, image in zip(ax_row, images):
        ax.imshow(np.clip(image, 0, 16).reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
    ax_row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)

try:  # the docs show the figures saved here
    figure_dir = Path(__file__).resolve().parents[1] / "docs" / "_static" / "examples"
except NameError:  # no __file__: run by sphinx-gallery or pasted into a notebook
    figure_dir = Path("figures")
figure_dir.mkdir(parents=True, exist_ok=True)
fig.savefig(figure_dir / "pipeline_digits.png", dpi=80)

# sphinx_gallery_thumbnail_path = "_static/examples/pipeline_digits.png"
