"""What a fit reports about its training: the epoch callback's :class:`EpochInfo` and the warnings.

A fit that diverged and recovered, kept its standard-normal start (or the
ridge regression it was compared with) or ran out of epochs while still
improving says so with a ``ConvergenceWarning``; a kept mixture start is the
design and is reported by ``best_epoch_ == 0`` alone. Weights that are not
finite after the last step are an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from ._core import Flow, TrainResult
from ._core.device import to_numpy, to_tensor
from ._linear_start import KEPT_SCORE


@dataclass(frozen=True)
class EpochInfo:
    """What an estimator's ``callback`` receives after each epoch (and once before training).

    Attributes
    ----------
    epoch : int
        0 for the initial flow, then 1, 2, ...
    train_loss : float or None
        Mean training negative log-likelihood of the epoch (standardized
        units); None at epoch 0.
    validation_score : float or None
        Mean validation log-likelihood (standardized units) of the weights
        evaluated at this epoch; None without a validation set.
    log_density : callable
        ``log_density(X)`` (``log_density(X, y)`` for a regressor): the
        log-density of rows in the units of the training data, as
        ``score_samples``, under the weights evaluated at this epoch; for
        learning curves on held-out data.
    """

    epoch: int
    train_loss: float | None
    validation_score: float | None
    log_density: Callable[..., np.ndarray]


def epoch_callback(estimator, flow: Flow, arguments=None):
    if estimator.callback is None:
        return None

    def log_density(X, context=None):
        if arguments is not None:
            X, context = arguments(X, context)
        with torch.inference_mode():
            x = to_tensor(np.asarray(X, dtype=np.float64), estimator.device_)
            c = None if context is None else to_tensor(np.asarray(context, dtype=np.float64), estimator.device_)
            return to_numpy(flow.log_prob(x, c))

    def report(epoch, train_loss, score):
        estimator.callback(EpochInfo(epoch, train_loss, score, log_density))

    return report


def check_finite_weights(estimator, flow: Flow) -> None:
    # Without a validation set nothing evaluates the weights after the last step: check them here.
    if not all(bool(torch.isfinite(p).all()) for p in flow.parameters()):
        raise ValueError(
            f"{type(estimator).__name__} could not be fitted: training diverged in its last step (non-finite "
            "weights); lower learning_rate"
        )


def warn_about_training(estimator, result: TrainResult, point_masses: bool = False) -> None:
    """The warnings a finished training gives: recoveries from divergence, a kept start, a score still rising at
    ``max_epochs`` (``point_masses``: the modelled data has some, which changes the advice)."""
    if result.n_recoveries:
        warnings.warn(
            f"training diverged {result.n_recoveries} time(s); the last good weights were restored and "
            f"learning_rate lowered to {result.final_learning_rate:.3g}",
            ConvergenceWarning,
            stacklevel=4,
        )
    base = getattr(estimator, "base", "normal")
    # A kept mixture start is a designed outcome (the GaussianMixture a user would tune, which training did not
    # clearly beat), reported by best_epoch_ == 0; a kept normal start or ridge says the flow learned nothing.
    if result.best_epoch == 0 and result.n_iter > 0 and base != "mixture":
        # With base="linear", epoch 0 is the ridge where it replaced the flow (KEPT_SCORE), else the untrained flow
        # beat both the trained epochs and the ridge (a target the ridge fits worse than no model of x at all).
        kept = base if hasattr(estimator, KEPT_SCORE) or base != "linear" else "normal"
        warnings.warn(kept_start_message(kept), ConvergenceWarning, stacklevel=4)
    if still_improving(result, estimator.n_iter_no_change, estimator.tol):
        warnings.warn(still_improving_message(estimator.max_epochs_, point_masses), ConvergenceWarning, stacklevel=4)


def still_improving_message(max_epochs: int, point_masses: bool) -> str:
    """What to do about a validation score still rising at ``max_epochs``: train longer, unless the rise may be
    the spikes of point masses growing, which raise the score without end (a capped target's cap)."""
    if point_masses:
        return (
            f"max_epochs={max_epochs} reached while the validation score still rose. With the point masses "
            "reported above, the rise may be their spikes growing rather than a better fit of the other rows, "
            "which more epochs would not give: model the point masses apart before increasing max_epochs"
        )
    return (
        f"max_epochs={max_epochs} reached before early stopping; the flow may be underfitted. "
        "Increase max_epochs or learning_rate."
    )


def kept_start_message(base: str) -> str:
    """Why a fit returned its untrained flow (or, with ``base="linear"``, the ridge regression)."""
    if base == "linear":
        return (
            "no epoch scored better on the validation rows than a ridge regression, which is "
            "the model (few rows, a nearly linear target, or, with the boosted feature, one whose best model is "
            "a Gaussian around the trees' prediction)"
        )
    return (
        "no epoch improved the validation score of the initial flow (its base density after the fixed "
        "preprocessing), which was kept; lower learning_rate or check the data"
    )


def worth_reporting(message: str, count: int, n_flows: int) -> bool:
    """Whether a warning that ``count`` of a fit's ``n_flows`` flows gave is emitted.

    A flow that kept its ridge regression is one member of the mixture by
    design (``base="linear"``): said of some flows, on a healthy fit, it only
    alarmed (a helper's audit saw it on 30 of 73 default fits of varied data).
    It is emitted where every flow kept one, as the model is then linear.
    """
    return count == n_flows or message != kept_start_message("linear")


def still_improving(result: TrainResult, n_iter_no_change: int, tol: float) -> bool:
    """Whether training ended at max_epochs while the score still rose by ``tol`` per epoch.

    With the cosine schedule, reaching max_epochs is the planned end, and the
    weight average keeps creeping up in the last, tiny steps. The test is the
    early-stopping criterion averaged over the last ``n_iter_no_change``
    epochs: the kept epoch is the last one and the score gained more than
    ``tol`` per epoch over that window.
    """
    scores = result.validation_scores or [-loss for loss in result.loss_curve]
    if result.stopped_early or result.best_epoch != result.n_iter or len(scores) < 2:
        return False
    window = min(n_iter_no_change, len(scores) - 1)
    return scores[-1] - scores[-1 - window] > window * tol
