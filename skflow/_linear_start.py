"""The linear alternative to a trained conditional flow: a ridge regression with Gaussian (or Student's t) noise.

With ``base="linear"`` a :class:`FlowRegressor`'s flow, once trained, is
compared on its validation rows with the ridge regression of its
(preprocessed) targets on the context, fitted on its training rows:
``N(y; W x + b, S)`` in the flow's standardized units (several targets'
noise correlated as the fit's residuals are: :func:`noise_correlation`), a
flow whose last layer is a :class:`skflow._core.transforms.LinearShift` and whose
other layers are the identity. The better of the two is the model; a kept
ridge is then refitted on every row, and its leave-one-out noise is its
scale (not recalibrated on rows it has now seen). On a hundred rows of a
nearly linear target the linear model wins (a flow learns its mean from few
rows poorly); where the flow is better, nothing changes. Where the context
holds the boosted trees' prediction, a second ridge, of that prediction
alone, is compared too (:func:`ridge_columns`).

Measured first, and not kept: the flow *started* from the ridge fit and
trained from there. It gained as much on small data, but lost 0.05 to 0.7
nats on Boston, concrete and energy (docs/regression_design_notes.md): training left the
linear start slowly and stopped early.

On few rows the noise's scale is itself uncertain: the standardized noise is
then Student's t with the fit's residual degrees of freedom (``Leverage``),
mapped to the flow's normal latent by
:class:`skflow._core.student_t.StudentToNormal` (for several targets the
multivariate t, radially: :class:`~skflow._core.student_t.MultivariateStudentToNormal`). On 10 to 20 rows of
diabetes and Friedman #1 it left the mean test log-likelihood about where it
was (-0.02 to +0.02 nats a row, the median draw 0.01 to 0.07 lower) but
lifted the worst draws by up to 0.8 nats and their coverage with them
(``benchmarks/experiments/student_ridge.py``).

The ridge penalty is chosen by exact leave-one-out error over a fixed grid
(scikit-learn's ``RidgeCV`` criterion), and ``sigma`` is the root mean
square of the leave-one-out residuals, not of the fitted ones: on few rows
the fitted residuals are too small by the degrees of freedom the fit used.
A target ruled by gross errors (standardized robustly,
``Preprocessing.robust_scaled``) gets Huber's regression instead, its noise
the trimmed mean square of those residuals (:func:`_huber_ridge`): least
squares counted one y = -1e6 among 100 rows in full, and a kept ridge's
90% intervals grew several times the noise's (docs/regression_design_notes.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from scipy.special import ndtri

from ._core import Flow, LinearShiftNumbers, Rows
from ._core.rows import MIN_VALIDATION_ROWS, effective_rows, row_log_likelihoods
from ._preprocessing import trimmed_root_mean_square, weighted_quantiles

# Ridge penalties tried, relative to the largest squared singular value of the centred context.
RELATIVE_ALPHAS = np.logspace(-6, 2, 33)
# Rows the ridge is fitted on, at most (a seeded subsample beyond): more change its coefficients little.
MAX_ROWS = 20_000
# Most of the rows that may be held out so that the comparison has MIN_VALIDATION_ROWS to score.
MAX_COMPARISON_HOLDOUT = 0.25
# The estimator attribute, set during a fit where a ridge regression replaced the trained flow and removed
# by the caller, that holds the ridge's mean log-likelihood of the validation rows.
KEPT_SCORE = "_kept_validation_score"
# The estimator attribute, set during a fit that compared its flow with the ridge regression and removed by the
# caller, that holds the kept model's log-likelihood of each validation row and the rows' weights (computed for
# the comparison anyway), for paired comparisons of trainings that share the validation rows
# (benchmarks/experiments/choice_rules.py).
VALIDATION_ROWS = "_validation_row_scores"
# Leverages are clipped below 1 so that a row the fit interpolates cannot divide by zero.
MAX_LEVERAGE = 1 - 1e-6
# Huber's regression of a target ruled by gross errors (_huber_ridge): rows beyond HUBER_K typical residuals are
# down-weighted (1.345: 95% of least squares' efficiency under normal noise), for at most HUBER_STEPS
# reweightings, fewer where no row's weight moves by more than HUBER_TOLERANCE.
HUBER_K = 1.345
HUBER_STEPS = 20
HUBER_TOLERANCE = 1e-6
# A kept ridge's standardized residuals follow Student's t with the fit's residual degrees of freedom, floored
# at MIN_DEGREES_OF_FREEDOM (fits of about as many features as rows); from MAX_DEGREES_OF_FREEDOM on, the normal
# (within 0.003 nats a row of the t).
MIN_DEGREES_OF_FREEDOM = 2.0
MAX_DEGREES_OF_FREEDOM = 100.0
# The least share of a target's noise variance left given the other targets' (noise_correlation); below it the
# noise is taken as uncorrelated.
MIN_CONDITIONAL_VARIANCE = 1e-6


class Leverage(NamedTuple):
    """A ridge fit's leverage of a new row ``c``: ``h(c) = offset + (c - center)^T matrix (c - center)``; and
    its residual degrees of freedom, the rows' effective number less the trace of the fit's hat matrix."""

    center: np.ndarray
    matrix: np.ndarray
    offset: float
    residual_degrees_of_freedom: float = np.inf

    def embedded(self, columns: slice, n_context: int) -> tuple[np.ndarray, np.ndarray, float]:
        """``(center, matrix, offset)`` over all ``n_context`` context columns, of a fit on ``columns`` of them."""
        center, matrix = np.zeros(n_context), np.zeros((n_context, n_context))
        center[columns] = self.center
        matrix[columns, columns] = self.matrix
        return center, matrix, self.offset


def comparison_validation_fraction(validation_fraction: float, n_rows: float) -> float:
    """``validation_fraction``, raised where it holds out fewer than ``MIN_VALIDATION_ROWS`` of ``n_rows``.

    With fewer validation rows than that the ridge regression is kept
    unscored, whatever the data, so on 40 to 99 rows a flow would never be
    compared. Holding out ``MIN_VALIDATION_ROWS`` rows instead, where that
    is at most ``MAX_COMPARISON_HOLDOUT`` of them, measured on 40, 60 and
    80 rows of seven small sets (three draws each; docs/regression_design_notes.md):
    bimodal, skewed and nonlinear targets gained 0.05 to 0.95 nats a row
    (lognormal 60 rows -1.630 -> -1.285, bimodal 80 rows -1.867 -> -0.914),
    nearly linear ones lost at most 0.08 (friedman1). A fraction of 0 (no
    validation) stays 0.
    """
    if validation_fraction == 0 or n_rows * MAX_COMPARISON_HOLDOUT < MIN_VALIDATION_ROWS:
        return validation_fraction
    # Half a row above the count, so that the floor of fraction * n_rows is the count despite rounding.
    return max(validation_fraction, (MIN_VALIDATION_ROWS + 0.5) / n_rows)


def ridge_gaussian(
    targets: np.ndarray, context: np.ndarray, weights: np.ndarray, robust: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Leverage, np.ndarray | None]:
    """``(weight, bias, log_scale, leverage, correlation)`` of the weighted ridge regression of ``targets`` (n, k)
    on ``context`` (n, c), its model ``N(W c + b, (1 + h(c)) S)`` (:func:`_ridge`), ``S = diag(s) R diag(s)``.

    Each target column gets its own coefficients; one penalty, the one with the
    smallest weighted leave-one-out squared error summed over the targets,
    serves them all. ``log_scale`` is the log of each target's noise scale ``s``, from
    its weighted mean square leave-one-out residual, and ``correlation`` ``R`` the
    correlation of those residuals (:func:`noise_correlation`; None: uncorrelated
    noise, and always for one target). The columns that ``robust`` (bool per
    target; None: none) marks, targets standardized robustly because gross
    errors rule them, are fitted apart, each by :func:`_huber_ridge`; the
    others as if they were alone, and the noise is then uncorrelated (a gross
    error would rule a correlation).
    """
    if robust is None or not np.any(robust):
        weight, bias, log_scale, left_out, leverage, _ = _ridge(targets, context, weights)
        return weight, bias, log_scale, leverage, noise_correlation(left_out, weights)
    robust = np.asarray(robust, dtype=bool)
    weight, bias, log_scale = np.empty((robust.size, context.shape[1])), np.empty(robust.size), np.empty(robust.size)
    leverages = []
    if not robust.all():
        fit = _ridge(targets[:, ~robust], context, weights)
        weight[~robust], bias[~robust], log_scale[~robust] = fit[:3]
        leverages.append(fit[4])
    for column in np.flatnonzero(robust):
        weight[column], bias[column], log_scale[column], leverage = _huber_ridge(targets[:, column], context, weights)
        leverages.append(leverage)
    # One leverage serves every target (the layer's): the least squares fit's where there is one.
    return weight, bias, log_scale, leverages[0], None


def noise_correlation(residuals: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """The weighted correlation of several targets' leave-one-out ``residuals`` (n, k), shrunk towards the
    identity; None for one target, where it is shrunk to the identity, or, as a guard, where it leaves a
    target less than ``MIN_CONDITIONAL_VARIANCE`` of its variance given the others (the shrinkage keeps
    even targets exactly linear in each other above it: their sampling variance is not 0).

    On two and three linear targets of noise correlated at 0.8 and 20 to 200 rows
    (``benchmarks/experiments/correlated_targets.py``), the default regressor scored 0.25 to 1.0 nats a row
    more with it than with uncorrelated noise, and came within 0.04 of a full-covariance Gaussian around
    scikit-learn's ``RidgeCV`` wherever that was better. Every correlation is multiplied
    by one ``1 - lambda``, Schaefer and Strimmer's (2005) estimate of the best: the correlations' summed
    sampling variance (that of a weighted mean of the rows' products) over their summed squares, clipped
    to [0, 1]. Correlations no larger than their noise are shrunk away; on few rows the estimate stays
    well conditioned.
    """
    w = weights / weights.sum()
    mean_square = w @ residuals**2
    if residuals.shape[1] < 2 or not np.all(mean_square > 0):  # a target fitted exactly has no noise to correlate
        return None
    standardized = residuals / np.sqrt(mean_square)
    first, second = np.triu_indices(residuals.shape[1], 1)
    products = standardized[:, first] * standardized[:, second]  # (n, pairs)
    sample = w @ products
    variance = (w**2) @ (products - sample) ** 2
    shrinkage = min(1.0, variance.sum() / max(float(sample @ sample), np.finfo(float).tiny))
    if shrinkage == 1.0:
        return None
    correlation = np.eye(residuals.shape[1])
    correlation[first, second] = correlation[second, first] = (1 - shrinkage) * sample
    try:
        root = np.linalg.cholesky(correlation)
    except np.linalg.LinAlgError:
        return None
    return correlation if np.diag(root).min() ** 2 >= MIN_CONDITIONAL_VARIANCE else None


def noise_factors(log_scale: np.ndarray, correlation: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(log_scale, mixing)`` of a :class:`skflow._core.transforms.LinearShift` whose noise has the scales
    ``exp(log_scale)`` and the ``correlation``: ``S = diag(s) R diag(s) = L diag(d)^2 L^T``, ``L`` unit
    lower-triangular, returned as ``(log d, L)``; ``(log_scale, None)`` where the correlation is None."""
    if correlation is None:
        return log_scale, None
    cholesky = np.exp(log_scale)[:, None] * np.linalg.cholesky(correlation)
    diagonal = np.diag(cholesky)
    return np.log(diagonal), cholesky / diagonal


def _ridge(
    targets: np.ndarray, context: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Leverage, float]:
    """:func:`ridge_gaussian` without robust columns: ``(weight, bias, log_scale, leave-one-out residuals (n, k) in
    the targets' units, leverage, mean leverage)``.

    ``leverage`` gives a new row's leverage ``h(c)``, the variance of the
    fit's estimate there in units of the noise's: for the weighted mean,
    one over the rows' effective number (Kish's: the weights are relative,
    not counts), and for the slopes the ridge's ``(C^T W C + alpha)^-1`` on
    the span of the centred context. The model's variance at ``c`` is
    ``noise^2 (1 + h(c))``, with ``noise^2`` the mean square leave-one-out
    residual over ``1 + h_mean``, ``h_mean`` the training rows' mean
    leverage (the fit's degrees of freedom over their effective number): a
    row of mean leverage gets the leave-one-out residuals' variance, a row
    far from the training rows more, as its estimate is that much less
    certain. (Dividing by the rows' mean ``1 / (1 - h_i)``, exact for least
    squares, made the noise vanish where a fit on about as many features as
    rows interpolates: docs/regression_design_notes.md.)
    """
    w = weights / weights.sum()
    context_mean, target_mean = w @ context, w @ targets
    root_w = np.sqrt(w)[:, None]
    # Weighted least squares as ordinary least squares on rows scaled by sqrt(w).
    u, singular, vt = np.linalg.svd((context - context_mean) * root_w, full_matrices=False)
    centred = (targets - target_mean) * root_w
    projected = u.T @ centred
    best = None
    for alpha in RELATIVE_ALPHAS * max(float(singular.max(initial=0.0)) ** 2, np.finfo(float).tiny):
        shrink = singular**2 / (singular**2 + alpha)
        # The intercept's leverage is w_i (the weighted mean), the ridge part's the shrunk projection.
        leverage = np.minimum((u**2) @ shrink + w, MAX_LEVERAGE)
        residual = (centred - u @ (shrink[:, None] * projected)) / (1 - leverage)[:, None]
        squared = (residual**2).sum(axis=0)  # weighted: the rows carry sqrt(w)
        if best is None or squared.sum() < best[0]:
            best = (squared.sum(), alpha, squared, leverage)
    _, alpha, squared, leverage = best
    coefficients = vt.T @ ((singular / (singular**2 + alpha))[:, None] * projected)  # (c, k)
    bias = target_mean - context_mean @ coefficients
    new_row = 1 / effective_rows(weights)  # a new row's leverage from the mean
    # Only the directions the training rows span (numpy's matrix_rank tolerance): the coefficients have no part
    # in the others, so neither has the estimate's variance (a constant feature, more features than rows).
    spanned = singular > singular.max(initial=0.0) * max(context.shape) * np.finfo(float).eps
    directions = vt[spanned]
    matrix = (directions.T / (singular[spanned] ** 2 + alpha)) @ directions * new_row
    # The training rows' leverages above carry their weights; the mean leverage of rows like them:
    mean_leverage = float(leverage.sum()) * new_row
    leverage_of_new_rows = Leverage(context_mean, matrix, new_row, (1 - mean_leverage) / new_row)
    log_scale = 0.5 * np.log(np.maximum(squared / (1 + mean_leverage), np.finfo(float).tiny))
    # Not the residuals above divided by sqrt(w): rows of weight 0 have leave-one-out residuals too.
    left_out = (targets - bias - context @ coefficients) / (1 - leverage)[:, None]
    return coefficients.T, bias, log_scale, left_out, leverage_of_new_rows, mean_leverage


def _huber_ridge(
    target: np.ndarray, context: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, float, float, Leverage]:
    """``(weight, bias, log_scale, leverage)`` of one target ruled by gross errors: Huber's regression by iteratively
    reweighted ridge fits, each choosing its penalty by leave-one-out error, and the noise's scale by the
    trimmed mean square of the last fit's leave-one-out residuals (over one plus its mean leverage, as in
    :func:`_ridge`).

    Least squares chases a gross error, and the root mean square leave-one-out
    residual counts it in full: one y = -1e6 among 100 rows near 0 with noise
    of 0.5 (``robust_target.gross_error`` in benchmarks/experiments) is -14.5
    once standardized robustly and through the asinh tail; with it, the
    intercept moved by 0.14 to 0.17 and the noise came out 1.55 and 1.63 on
    two draws, where the clean rows' fits gave 0.48 and 0.59 (Huber's: 0.48 and 0.59).
    A row beyond ``HUBER_K`` typical residuals (median ``|r|`` / 0.6745) gets
    the weight that caps its pull at that many; the residuals' scale, like
    the latent scale's (``skflow._calibration``), leaves out rows beyond
    ``GROSS_Z`` typical scales.
    """
    robustness = np.ones_like(weights)
    weight, bias, _, left_out, leverage, mean_leverage = _ridge(target[:, None], context, weights)
    for _ in range(HUBER_STEPS):
        residual = np.abs(target - bias[0] - context @ weight[0])
        typical = weighted_quantiles(residual[:, None], weights, (0.5,))[0, 0] / ndtri(0.75)
        if not typical > 0:  # half the rows fitted exactly: no scale to compare the others with
            break
        previous, robustness = robustness, np.minimum(1.0, HUBER_K * typical / np.maximum(residual, typical))
        if np.max(np.abs(robustness - previous)) < HUBER_TOLERANCE:
            break
        weight, bias, _, left_out, leverage, mean_leverage = _ridge(target[:, None], context, weights * robustness)
    scale = trimmed_root_mean_square(left_out, weights)[0]
    if not np.isfinite(scale):  # no residual within GROSS_Z typical ones (half of them 0): the plain mean square
        scale = np.sqrt(np.average(left_out[:, 0] ** 2, weights=weights))
    return weight[0], float(bias[0]), 0.5 * np.log(max(scale**2 / (1 + mean_leverage), np.finfo(float).tiny)), leverage


def ridge_columns(n_features: int, n_context: int) -> list[slice]:
    """The context columns of each ridge compared with a trained flow: every column, and where the context
    ends with the boosted trees' predictions (the columns after the ``n_features`` features), those alone.

    A Gaussian around a linear map of the trees' prediction is what a
    flow's MLP learns slowest from few rows among many features: on 100 rows
    of Friedman #1 with 45 irrelevant features, such a model scored 0.17 nats
    a row better than the flows, and the ridge of every column, penalized as
    one, cannot single the trees' column out.
    """
    return [slice(None), slice(n_features, None)] if n_context > n_features else [slice(None)]


def fit_ridge_gaussian(
    rows: torch.Tensor,
    context: np.ndarray,
    weights: torch.Tensor,
    held_out: torch.Tensor | None,
    seed: int,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None,
    columns: slice = slice(None),
    robust: np.ndarray | None = None,
) -> LinearShiftNumbers:
    """:func:`ridge_gaussian` of preprocessed ``rows`` on the ``columns`` of ``context`` (the others get
    weight 0), on the rows outside ``held_out`` (None: every row); ``robust``: the preprocessing's
    ``robust_scaled``, the targets fitted robustly. Returns ``linear_shift`` for
    :func:`skflow._core.build_flow`: its noise correlated as the fit's (:func:`noise_factors`).

    Rows beyond ``MAX_ROWS`` are subsampled, and dequantized targets get one
    draw of their training noise, both seeded by ``seed``.
    """
    index = np.arange(rows.shape[0])
    if held_out is not None:
        index = np.setdiff1d(index, held_out.cpu().numpy())
    rng = np.random.RandomState(seed)
    if index.size > MAX_ROWS:
        index = np.sort(rng.choice(index, size=MAX_ROWS, replace=False))
    selected = rows[torch.as_tensor(index, device=rows.device)]
    if augment is not None:
        selected = augment(selected, torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max))))
    targets = selected.cpu().numpy().astype(np.float64)
    w = weights.cpu().numpy().astype(np.float64)[index]
    selected_context = np.asarray(context[index][:, columns], dtype=np.float64)
    weight, bias, log_scale, leverage, correlation = ridge_gaussian(targets, selected_context, w, robust)
    every_weight = np.zeros((weight.shape[0], context.shape[1]))
    every_weight[:, columns] = weight
    log_scale, mixing = noise_factors(log_scale, correlation)
    degrees = max(leverage.residual_degrees_of_freedom, MIN_DEGREES_OF_FREEDOM)
    # Several targets: the multivariate t (mapped radially), whose density does not depend on their order.
    student = degrees if degrees < MAX_DEGREES_OF_FREEDOM else None
    return LinearShiftNumbers(
        every_weight, bias, log_scale, leverage.embedded(columns, context.shape[1]), mixing, student
    )


def validation_row_log_likelihoods(
    flow: Flow,
    rows: torch.Tensor,
    weights: torch.Tensor,
    context: torch.Tensor,
    validation_index: torch.Tensor,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-likelihood of each validation row under ``flow``'s learned part (standardized units), and the rows'
    weights; dequantized targets get one draw of noise seeded by ``seed``: the same draw for every flow scored."""
    validation = Rows.select(rows, weights, context, validation_index)
    if augment is not None:
        validation.x = augment(validation.x, torch.Generator().manual_seed(seed))
    flow.eval()
    with torch.inference_mode():
        return row_log_likelihoods(flow, validation), validation.weights()


def untrained_ridge_message(n_rows: int, n_validation: int) -> str:
    """Why a fit trained no flow: too few validation rows to compare one with the ridge regression."""
    return (
        f"{n_rows} rows hold out {n_validation} for validation, fewer than the {MIN_VALIDATION_ROWS} that comparing "
        "a trained flow with a ridge regression needs: the ridge regression is the model, and "
        'no flow was trained (base="normal" trains one)'
    )
