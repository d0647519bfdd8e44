"""
=====================================================
The latent space: Gaussianizing data with transform
=====================================================

:meth:`FlowDensity.transform <skflow.FlowDensity.transform>` maps data to the
latent space of the flow, where a well-fitted model makes the data look like
a standard normal sample; :meth:`~skflow.FlowDensity.inverse_transform` maps
back exactly. Unlike a VAE's encoder, this is not an approximation: the map
is one-to-one, so every point has exactly one latent code.

Middle: the two-moons data mapped to the latent space. The two moons become
two halves of one round Gaussian cloud. The circles of radius 1, 2 and 3
around the origin enclose 39%, 86% and 99% of a 2-D standard normal. Left:
the data, with those circles mapped back by ``inverse_transform``: the
regions they enclose hold 39%, 86% and 99% of the fitted model's probability
in data space (they are not density contours: the density also depends on
how much the map stretches space there). Right: each latent coordinate's histogram against
the standard normal density.
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons

from skflow import FlowDensity

X, y = make_moons(1500, noise=0.05, random_state=0)
est = FlowDensity(
    base="normal",  # the classic flow: the latent is a standard normal (the default base is a Gaussian mixture)
    n_transforms=4, hidden_units=(32, 32), learning_rate=2e-3, batch_size=64, max_epochs=300, random_state=0
).fit(X)
Z = est.transform(X)

# %%
# The latent sample should have mean about 0 and covariance about the identity,
# and the round trip through ``inverse_transform`` should be exact up to
# floating point.
print("latent mean:", np.round(Z.mean(axis=0), 3))
print("latent covariance:\n", np.round(np.cov(Z.T), 3))
print("max round-trip error:", np.abs(est.inverse_transform(Z) - X).max())

# %%
# Plot
# ----
# Circles in the latent space, mapped to data space with ``inverse_transform``.
theta = np.linspace(0, 2 * np.pi, 400)
circles = {r: r * np.column_stack([np.cos(theta), np.sin(theta)]) for r in (1, 2, 3)}
circle_styles = {1: "-", 2: "--", 3: ":"}

fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
colors = np.array(["tab:blue", "tab:orange"])[y]
for ax, points, in_latent, title in [
    (axes[0], X, False, "data space, with the circles mapped back"),
    (axes[1], Z, True, "latent space: est.transform(X)"),
]:
    ax.scatter(points[:, 0], points[:, 1], c=colors, s=3, alpha=0.6)
    for r, circle in circles.items():
        curve = circle if in_latent else est.inverse_transform(circle)
        ax.plot(curve[:, 0], curve[:, 1], color="black", ls=circle_styles[r], lw=1.2, label=f"radius {r}")
    ax.set_title(title)
    ax.set_aspect("equal")
axes[1].set_xlim(-4, 4)
axes[1].set_ylim(-4, 4)
axes[1].legend(loc="upper right", fontsize=9)

t = np.linspace(-4, 4, 200)
for j, color in enumerate(["tab:green", "tab:purple"]):
    axes[2].hist(Z[:, j], bins=40, density=True, histtype="step", lw=1.5, color=color, label=f"latent coordinate {j}")
axes[2].plot(t, np.exp(-0.5 * t**2) / np.sqrt(2 * np.pi), color="black", ls="--", label="standard normal")
axes[2].set_title("latent marginals")
axes[2].legend(loc="upper left", fontsize=9)

try:  # the docs show the figures saved here
    figure_dir = Path(__file__).resolve().parents[1] / "docs" / "_static" / "examples"
except NameError:  # no __file__: run by sphinx-gallery or pasted into a notebook
    figure_dir = Path("figures")
figure_dir.mkdir(parents=True, exist_ok=True)
fig.savefig(figure_dir / "latent_space.png", dpi=80)

# sphinx_gallery_thumbnail_path = "_static/examples/latent_space.png"
