"""
===================================================================
Conditional density of a heteroscedastic, bimodal target
===================================================================

:class:`~skflow.FlowRegressor` learns the whole conditional distribution
``p(y | x)``, not only a mean. Here each ``x`` has two possible targets: one
branch rises with ``x`` and its noise grows with ``|x|``, the other falls
with little noise. The conditional mean (``predict``) lies between the
branches, where hardly any data is; a mean plus a symmetric interval would
put most of its mass there too. The flow's density (left, shading) follows
both branches, its exact quantiles (``predict_quantiles``) give the bands,
and slices at three values of ``x`` (right) compare it with the true
conditional density.

The printed numbers are held-out: the mean log-likelihood of the targets
(``skflow.metrics.log_likelihood_scorer``, higher is better) of the flow and
of a Gaussian with the flow's own mean and residual spread, and the coverage
of the flow's 90% central interval.
"""

# %%
# Data and fit
# ------------
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from skflow import FlowRegressor
from skflow.metrics import interval_coverage, log_likelihood_scorer


def noise_scale(x):
    return 0.1 + 0.25 * np.abs(x)


def true_density(x, y):
    rising = norm.pdf(y, x, noise_scale(x))
    falling = norm.pdf(y, -0.5 * x - 1.0, 0.15)
    return 0.5 * rising + 0.5 * falling


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, n)
    rising = rng.uniform(size=n) < 0.5
    y = np.where(rising, x + noise_scale(x) * rng.normal(size=n), -0.5 * x - 1.0 + 0.15 * rng.normal(size=n))
    return x[:, None], y


X, y = make_data(2000, 0)
X_test, y_test = make_data(1000, 1)
reg = FlowRegressor(
    n_transforms=4, hidden_units=(32, 32), learning_rate=5e-3, batch_size=128, max_epochs=100, random_state=0
).fit(X, y)

residual_std = np.std(y[:500] - reg.predict(X[:500]))  # the spread around the mean, on training rows
gaussian = norm.logpdf(y_test, reg.predict(X_test), residual_std).mean()
print(f"held-out log-likelihood: flow {log_likelihood_scorer(reg, X_test, y_test):.3f}, Gaussian {gaussian:.3f}")
print(f"coverage of the 90% interval: {interval_coverage(y_test, reg.predict_interval(X_test, 0.9)):.3f}")

# %%
# Plot
# ----
# Left: the fitted conditional density on a grid, the data, the conditional
# mean and the 5%-95% and 25%-75% quantile bands. Right: slices of the
# density at three values of x, against the truth.
x_grid = np.linspace(-3, 3, 121)
y_grid = np.linspace(-4.5, 4.5, 181)
xx, yy = np.meshgrid(x_grid, y_grid)
density = np.exp(reg.score_samples(xx.reshape(-1, 1), yy.ravel())).reshape(xx.shape)
bands = reg.predict_quantiles(x_grid[:, None], [0.05, 0.25, 0.75, 0.95])

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
left.pcolormesh(xx, yy, density, cmap="Blues", shading="auto", vmax=np.quantile(density, 0.99))
left.scatter(X[:300, 0], y[:300], s=3, color="k", alpha=0.4, label="training data")
left.fill_between(x_grid, bands[:, 0], bands[:, 3], color="tab:orange", alpha=0.15, label="5%-95% quantiles")
left.fill_between(x_grid, bands[:, 1], bands[:, 2], color="tab:orange", alpha=0.3, label="25%-75% quantiles")
left.plot(x_grid, reg.predict(x_grid[:, None]), color="tab:red", label="predict (conditional mean)")
left.set(xlabel="x", ylabel="y", title="FlowRegressor: p(y | x)", ylim=(y_grid[0], y_grid[-1]))
left.legend(loc="upper left", fontsize=8)

for x_value, color in zip([-2.0, 0.5, 2.5], ["tab:blue", "tab:green", "tab:purple"]):
    fitted = np.exp(reg.score_samples(np.full((y_grid.size, 1), x_value), y_grid))
    right.plot(y_grid, fitted, color=color, label=f"x = {x_value}: flow")
    right.plot(y_grid, true_density(x_value, y_grid), color=color, ls="--", label=f"x = {x_value}: truth")
right.set(xlabel="y", ylabel="p(y | x)", title="Slices of the conditional density")
right.legend(fontsize=8)

try:  # the docs show the figures saved here
    figure_dir = Path(__file__).resolve().parents[1] / "docs" / "_static" / "examples"
except NameError:  # no __file__: run by sphinx-gallery or pasted into a notebook
    figure_dir = Path("figures")
figure_dir.mkdir(parents=True, exist_ok=True)
fig.savefig(figure_dir / "conditional_density.png", dpi=80)

# sphinx_gallery_thumbnail_path = "_static/examples/conditional_density.png"
