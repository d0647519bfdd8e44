"""
=====================================================
Comparing anomaly detectors on two-dimensional data
=====================================================

:class:`~skflow.FlowOutlierDetector` flags a sample as an outlier when its
log-density under a normalizing flow falls below a threshold. Here it is
compared with scikit-learn's detectors on three toy datasets, each
contaminated with 15% of points drawn uniformly over the plotted square, in
the manner of scikit-learn's "Comparing anomaly detection algorithms for
outlier detection on toy datasets" example.

Each detector is fitted on the contaminated data and told to expect 15% of
outliers (``contamination=0.15``, or ``nu=0.15`` for the one-class SVM). The
black line is its decision boundary, the shading the rank of its
``decision_function`` (darker is more normal). The density models without a
``contamination`` parameter (GaussianMixture, KernelDensity) are thresholded
the same way, at the 15th percentile of their training log-densities. The
number in each corner is the ROC AUC of the detector's scores, on the data it
was fitted on, against the true labels.

In two dimensions the flow's boundaries follow the moons and the ring, as a
kernel density estimate does; the kernel estimate also puts a bump on every
isolated outlier, and a few Gaussians or axis-aligned trees cannot follow the
curves. The flow, being one smooth map, can leave a thin bridge between two
separate clusters. Its advantage over the kernel estimate and the Gaussian
mixture grows with the dimension: see the anomaly benchmark in the
documentation.
"""

# %%
# Data: three inlier shapes, each with 15% uniform outliers
# ---------------------------------------------------------
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_blobs, make_moons
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity, LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from skflow import FlowDensity, FlowOutlierDetector

CONTAMINATION = 0.15
N_INLIERS = 340
LIMIT = 7.0  # the plotted square is [-LIMIT, LIMIT]^2

rng = np.random.RandomState(42)


def ring(n):
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = 4.0 + 0.4 * rng.normal(size=n)
    return np.c_[radius * np.cos(angle), radius * np.sin(angle)]


datasets = {
    "Two blobs": make_blobs(N_INLIERS, centers=[[-3, -3], [3, 2]], cluster_std=[0.6, 1.2], random_state=0)[0],
    "Moons": 4.0 * (make_moons(N_INLIERS, noise=0.06, random_state=0)[0] - [0.5, 0.25]),
    "Ring": ring(N_INLIERS),
}


# %%
# Detectors
# ---------
# The flow settings (large batches, a high learning rate, a small network) keep
# the example under a minute on two CPU cores; the defaults train longer.


def thresholded(density):
    """A density model as a detector: outlier below the CONTAMINATION quantile of its training log-densities."""

    class Thresholded:
        def fit(self, X):
            density.fit(X)
            self.offset_ = np.percentile(density.score_samples(X), 100 * CONTAMINATION)
            return self

        def score_samples(self, X):
            return density.score_samples(X)

        def decision_function(self, X):
            return density.score_samples(X) - self.offset_

    return Thresholded()


def detectors():
    flow = FlowDensity(
        n_transforms=3, hidden_units=(32, 32), batch_size=128, learning_rate=1e-2, max_epochs=100, random_state=0
    )
    return {
        "FlowOutlierDetector": FlowOutlierDetector(density=flow, contamination=CONTAMINATION),
        "IsolationForest": IsolationForest(contamination=CONTAMINATION, random_state=0),
        "LocalOutlierFactor": LocalOutlierFactor(n_neighbors=35, novelty=True, contamination=CONTAMINATION),
        "OneClassSVM": make_pipeline(StandardScaler(), OneClassSVM(nu=CONTAMINATION, gamma=2.0)),
        "GaussianMixture (5)": thresholded(GaussianMixture(5, random_state=0)),
        "KernelDensity": thresholded(KernelDensity(bandwidth=0.5)),
    }


# %%
# Fit on the contaminated data and draw the decision boundaries
# -------------------------------------------------------------
grid_x, grid_y = np.meshgrid(np.linspace(-LIMIT, LIMIT, 150), np.linspace(-LIMIT, LIMIT, 150))
grid = np.c_[grid_x.ravel(), grid_y.ravel()]
n_outliers = int(CONTAMINATION * N_INLIERS / (1 - CONTAMINATION))

fig, axes = plt.subplots(len(datasets), 6, figsize=(19, 9.8), sharex=True, sharey=True)
for row, (data_name, X_inliers) in enumerate(datasets.items()):
    X = np.vstack([X_inliers, rng.uniform(-LIMIT, LIMIT, size=(n_outliers, 2))])
    is_outlier = np.r_[np.zeros(len(X_inliers)), np.ones(n_outliers)].astype(bool)
    for col, (name, detector) in enumerate(detectors().items()):
        ax = axes[row, col]
        detector.fit(X)
        decision = detector.decision_function(grid).reshape(grid_x.shape)
        # Shade by rank of the decision value so every detector's scale reads the same way.
        ranks = np.argsort(np.argsort(decision.ravel())).reshape(decision.shape) / decision.size
        ax.contourf(grid_x, grid_y, ranks, levels=12, cmap="Blues", alpha=0.7)
        ax.contour(grid_x, grid_y, decision, levels=[0], colors="black", linewidths=1.6)
        ax.scatter(*X[~is_outlier].T, s=4, c="black", linewidths=0)
        ax.scatter(*X[is_outlier].T, s=18, c="tab:orange", edgecolors="black", linewidths=0.5)
        auc = roc_auc_score(is_outlier, -detector.score_samples(X))
        ax.text(
            0.97,
            0.03,
            f"AUC {auc:.2f}",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=11,
            bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"),
        )
        ax.set(xlim=(-LIMIT, LIMIT), ylim=(-LIMIT, LIMIT), xticks=(), yticks=())
        if row == 0:
            ax.set_title(name, fontsize=13)
        if col == 0:
            ax.set_ylabel(data_name, fontsize=13)
fig.suptitle("Decision boundary (black line) at 15% contamination; inliers black, outliers orange", fontsize=14)
fig.tight_layout()

try:
    figure_dir = Path(__file__).resolve().parents[1] / "docs" / "_static" / "examples"
except NameError:  # no __file__: run by sphinx-gallery or pasted into a notebook
    figure_dir = Path("figures")
figure_dir.mkdir(parents=True, exist_ok=True)
fig.savefig(figure_dir / "anomaly_detection.png", dpi=80)
