"""
===========================================================
Training curves: ``loss_curve_`` and ``validation_scores_``
===========================================================

:class:`~skflow.FlowDensity` holds out ``validation_fraction`` of the
training data and stops when the validation log-likelihood has not improved
for ``n_iter_no_change`` epochs; it then restores the weights of the best
epoch, ``best_epoch_``. The history is kept:

* ``loss_curve_``: mean training negative log-likelihood per epoch,
* ``validation_scores_``: mean validation log-likelihood per epoch,

both per sample, in the units of the rows the trained layers see: the data
after the fixed preprocessing (standardization, and any bounds map, tails or
power map the fit chose). Below they are drawn on the same scale, as log-likelihoods (higher
is better), for the 30-feature breast-cancer data that ships with
scikit-learn, with two batch sizes. On a small dataset the gap between the
training and the validation curve opens early: the flow starts to memorize
the training points, and early stopping keeps the epoch before that
happens. Smaller batches take more, noisier steps per epoch, which on small
data usually reaches a better validation score.
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from skflow import FlowDensity

X = load_breast_cancer().data
X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)

models = {}
for batch_size in (32, 256):
    models[batch_size] = FlowDensity(
        n_transforms=3,
        hidden_units=(64, 64),
        batch_size=batch_size,
        max_epochs=200,
        n_iter_no_change=15,
        random_state=0,
    ).fit(X_train)

# %%
# ``score`` is in the units of ``X``; the curves are in the preprocessed units.
# The two differ by the fixed part's log-determinant, row by row:
# ``flow_.preprocess`` returns it. With standardization alone it is the
# constant ``-sum(log(scale_))``; a bounds map, tails or a power map make it
# vary with the row, so the offset is its mean over the rows scored.
for batch_size, est in models.items():
    _, fixed_log_det = est.flow_.preprocess(torch.as_tensor(X_test, device=est.device_))
    shift = float(fixed_log_det.mean())
    print(
        f"batch_size={batch_size:3d}: stopped after {est.n_iter_} epochs, best epoch {est.best_epoch_}, "
        f"best validation score {max(est.validation_scores_):.2f} (preprocessed units), "
        f"test score {est.score(X_test):.2f} (data units) = {est.score(X_test) - shift:.2f} (preprocessed units)"
    )

# %%
# Plot
# ----
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, layout="constrained")
for ax, (batch_size, est) in zip(axes, models.items()):
    epochs = np.arange(1, est.n_iter_ + 1)
    ax.plot(epochs, -np.asarray(est.loss_curve_), label="training (-loss_curve_)")
    ax.plot(epochs, est.validation_scores_, label="validation (validation_scores_)")
    ax.axvline(est.best_epoch_, color="black", ls=":", label=f"best_epoch_ = {est.best_epoch_}")
    ax.set_title(f"batch_size={batch_size}")
    ax.set_xlabel("epoch")
    ax.legend(loc="upper left")
axes[0].set_ylabel("mean log-likelihood per sample\n(preprocessed units, higher is better)")
axes[0].set_ylim(bottom=-40)  # the first epochs start far lower

try:  # the docs show the figures saved here
    figure_dir = Path(__file__).resolve().parents[1] / "docs" / "_static" / "examples"
except NameError:  # no __file__: run by sphinx-gallery or pasted into a notebook
    figure_dir = Path("figures")
figure_dir.mkdir(parents=True, exist_ok=True)
fig.savefig(figure_dir / "training_curves.png", dpi=80)

# sphinx_gallery_thumbnail_path = "_static/examples/training_curves.png"
