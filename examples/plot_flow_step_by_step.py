"""
===========================================
A flow step by step: Gaussian to two moons
===========================================

A normalizing flow is a chain of simple invertible maps. To *sample*, draw
points from a standard normal and push them through the inverse of each map
in turn, from the last layer back to the first; to *score*, go the other way
and add up the log-determinants of the maps' Jacobians.

This example fits :class:`~skflow.FlowDensity` on the two-moons data and
draws 3,000 points from the base Gaussian. Each panel shows the points after
one more layer of ``est.flow_.transforms`` (each applied through its
``inverse``). Points are coloured by their angle in the base space, so you can
follow where each slice of the Gaussian goes: the learned linear layers
(``LULinear``) rotate, shear and stretch the cloud, the spline couplings
(``SplineCoupling``) bend one coordinate as a function of the other, and the
last step (``Standardize``) undoes the standardization of the data.
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import make_moons

from skflow import FlowDensity

X, _ = make_moons(1500, noise=0.05, random_state=0)
est = FlowDensity(
    base="normal",  # the classic flow: the latent is a standard normal (the default base is a Gaussian mixture)
    n_transforms=4, hidden_units=(32, 32), learning_rate=2e-3, batch_size=64, max_epochs=300, random_state=0
).fit(X)

# %%
# Push base samples through the layers
# ------------------------------------
# ``est.flow_.transforms`` lists the layers from data to latent. Sampling walks
# them backwards: ``transform.inverse(z)`` returns the mapped points and the
# log-determinant of that step (unused here).

rng = np.random.default_rng(0)
z = torch.from_numpy(rng.standard_normal((3000, 2)))  # the flow works in float64 after fit
angle = np.arctan2(z[:, 1].numpy(), z[:, 0].numpy())

stages = [("base: N(0, I)", z.numpy())]
with torch.no_grad():
    points = z
    for step, transform in enumerate(reversed(est.flow_.transforms), start=1):
        points, _ = transform.inverse(points)
        stages.append((f"{step}. {type(transform).__name__}", points.numpy()))
stages[-1] = (stages[-1][0] + " = data space", stages[-1][1])

# %%
# Plot: one panel per layer, then the training data for comparison.

n_cols = 4
n_rows = int(np.ceil((len(stages) + 1) / n_cols))
fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 3.2 * n_rows), layout="constrained")
axes = axes.ravel()
for ax, (title, points) in zip(axes, stages):
    ax.scatter(points[:, 0], points[:, 1], c=angle, cmap="hsv", s=2)
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
ax = axes[len(stages)]
ax.scatter(X[:, 0], X[:, 1], s=2, color="black", alpha=0.5)
ax.set_title("training data", fontsize=10)
ax.set_aspect("equal", adjustable="datalim")
ax.set_xticks([])
ax.set_yticks([])
for ax in axes[len(stages) + 1 :]:
    ax.set_axis_off()
fig.suptitle("Base samples pushed through each layer's inverse, in sampling order (colour = angle in the base space)")

try:  # the docs show the figures saved here
    figure_dir = Path(__file__).resolve().parents[1] / "docs" / "_static" / "examples"
except NameError:  # no __file__: run by sphinx-gallery or pasted into a notebook
    figure_dir = Path("figures")
figure_dir.mkdir(parents=True, exist_ok=True)
fig.savefig(figure_dir / "flow_step_by_step.png", dpi=80)

# sphinx_gallery_thumbnail_path = "_static/examples/flow_step_by_step.png"
