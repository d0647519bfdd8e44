"""The boosted feature: gradient-boosted trees' prediction of each target, appended to a regressor's context.

A flow's conditioner is a small MLP. From a few hundred rows it learns smooth
functions of the features well, but not steps, interactions of a few
features among many irrelevant ones, or features on very different scales,
which trees find at once (Grinsztajn et al. 2022, "Why do tree-based models
still outperform deep learning on tabular data?"). Handing the flow the
trees' prediction as one more feature per target (stacking, Wolpert 1992)
lets the flow start from what the trees found and model the rest of the
conditional density around it.

The training rows get out-of-fold predictions: each is predicted by trees
that did not see it, so the flow learns how far to trust the prediction on
new rows, not on rows the trees have memorized. New rows get the average of
the same fold models, whose predictions are distributed as the out-of-fold
ones. The trees are scikit-learn's ``HistGradientBoostingRegressor`` with
its defaults but the leaf size, which the out-of-fold error chooses per
target, fitted per target and fold, then kept as plain arrays (the safe file
format holds no pickled objects) and evaluated here. A target ruled by gross
errors (standardized robustly) gets trees of the absolute error instead
(``ROBUST_LOSS``).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from ._core.rows import MIN_VALIDATION_ROWS, effective_rows, n_validation_rows
from ._fitting import held_out_fraction
from ._preprocessing import median_and_spread

N_FOLDS = 5
# boosted_feature="auto" tries the feature in fits of this many rows, where at least MIN_VALIDATION_ROWS
# validate (fewer make the choice noise): from 40 rows, where the ridge comparison of base="linear" holds
# out 10 (skflow._linear_start; base="normal" needs 100 at the default fraction), up to 20,000. On 40 to
# 80 rows of 14 small sets the trees gained 0.07-0.09 nats a row on average, and some sets of several
# thousand rows still need them (power-plant, 8,611: +0.13, RMSE 3.8 -> 3.2; docs/regression_design_notes.md);
# above 20,000, training twice would add many minutes to a fit of minutes.
AUTO_ROWS = (40, 20000)
# The trees' leaf sizes tried, per target. scikit-learn's default 20 is too coarse for a few hundred rows
# of a nearly noiseless target (yacht's fold models: out-of-fold RMSE 4.0 at 20, 0.91 at 5), and fine
# leaves overfit noisy ones (Friedman #1 on 300 rows: 2.01 at 20, 2.50 at 5), so the folds choose.
LEAF_SIZES = (20, 10, 5)
# The loss of the trees of a target ruled by gross errors (standardized robustly, skflow._preprocessing): the
# squared error's trees chase one y = -1e6 (docs/regression_design_notes.md); the absolute error's predict the
# conditional median, which it does not move.
ROBUST_LOSS = "absolute_error"
# Columns of ``nodes``: the split feature (-1 at a leaf), its threshold (left where x <= threshold),
# the left and right children (indices into ``nodes``, always after their parent) and the leaf value.
FEATURE, THRESHOLD, LEFT, RIGHT, VALUE = range(5)
# The fitted attributes that hold a regressor's trees: ``(nodes, roots, baseline)``.
TREE_ATTRIBUTES = ("tree_nodes_", "tree_roots_", "tree_baseline_")


def empty_trees() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(nodes, roots, baseline)`` of no trees: a model without the boosted feature."""
    return np.zeros((0, 5)), np.zeros((0, 2), dtype=np.int64), np.zeros(0)


def fit_boosted_trees(
    X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int, robust: np.ndarray | None = None
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None:
    """The fold models' trees ``(nodes, roots, baseline)`` and the out-of-fold predictions (n_rows, n_targets).

    Per target, the fold models of each leaf size in ``LEAF_SIZES`` are
    fitted and those with the smallest weighted out-of-fold squared error are
    kept; the targets that ``robust`` marks (bool per target, None: none),
    ruled by gross errors, get trees of the absolute error, chosen by it
    (``ROBUST_LOSS``). ``roots`` (n_trees, 2) holds each tree's root index and target
    column; the leaf values and the baseline are divided by the number of
    folds, so that :func:`predict_trees` is the average of the fold models.
    None (with a warning) where the arrays do not reproduce scikit-learn's
    own predictions, which would mean its tree layout changed.
    """
    n_targets = Y.shape[1]
    units = np.empty((n_targets, 2))  # each target's (center, spread) of target_units
    folds, fold_weights = _folds(X, weights, seed)
    out_of_fold, average = np.empty_like(Y), np.empty_like(Y)
    nodes, roots, baseline = [], [], np.zeros(n_targets)
    n_nodes = 0
    for target in range(n_targets):
        loss = ROBUST_LOSS if robust is not None and robust[target] else "squared_error"
        center, spread = units[target] = target_units(Y[:, target], weights, robust=loss == ROBUST_LOSS)
        models, out_of_fold[:, target], average[:, target] = _best_fold_models(
            X, Y[:, target], weights, folds, fold_weights, seed, loss
        )
        # The fold models predict the standardized target: their leaves and baselines in the target's units.
        baseline[target] = center
        for model in models:
            baseline[target] += spread * float(np.ravel(model._baseline_prediction)[0]) / len(folds)
            for predictors in model._predictors:
                tree = _tree_array(predictors[0].nodes, n_nodes, spread / len(folds))
                roots.append((n_nodes, target))
                nodes.append(tree)
                n_nodes += len(tree)
    trees = (np.concatenate(nodes), np.array(roots, dtype=np.int64), baseline)
    if not _reproduces(trees, X, average, units):
        warnings.warn(
            "the boosted feature is off: scikit-learn's HistGradientBoostingRegressor stores its trees in a "
            "layout skflow does not read (please report it with your scikit-learn version)",
            UserWarning,
            stacklevel=3,
        )
        return None
    return trees, out_of_fold


def out_of_fold_prediction(X: np.ndarray, y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """The out-of-fold prediction of one target ``y`` by the fold models that :func:`fit_boosted_trees` would
    keep for it (the same folds and leaf size), without their arrays."""
    folds, fold_weights = _folds(X, weights, seed)
    return _best_fold_models(X, y, weights, folds, fold_weights, seed)[1]


def _folds(X: np.ndarray, weights: np.ndarray, seed: int) -> tuple[list, np.ndarray | None]:
    """The folds of the rows of ``X``, and the weights the fold models get (None for equal ``weights``)."""
    folds = list(KFold(min(N_FOLDS, X.shape[0]), shuffle=True, random_state=seed).split(X))
    # Equal weights fit the same trees as none (unit weights bit for bit, others to float32 rounding), and
    # scikit-learn bins weighted data by a weighted percentile per bin edge: 85% of the trees' time on 450 rows.
    return folds, None if np.all(weights == weights[0]) else weights


def target_units(y: np.ndarray, weights: np.ndarray, robust: bool = False) -> tuple[float, float]:
    """The weighted mean and standard deviation (1 where it is 0) of one target, or with ``robust`` its median
    and interquartile range / 1.349 (gross errors would rule the others): the trees fit it standardized, so
    that they are the same trees in any units (scikit-learn's gradients are float32: fitted to ``1e-6 y`` or
    ``y + 1e6``, its trees predicted ``y`` only to 5e-9, and a flow trained on that prediction could then stop
    at another epoch)."""
    if robust:
        (center,), (spread,) = median_and_spread(y[:, None], weights)
    else:
        center = np.average(y, weights=weights)
        spread = np.sqrt(np.average((y - center) ** 2, weights=weights))
    return float(center), float(spread) if spread > 0 and np.isfinite(spread) else 1.0


def _best_fold_models(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    folds: list,
    fold_weights: np.ndarray | None,
    seed: int,
    loss: str = "squared_error",
) -> tuple[list[HistGradientBoostingRegressor], np.ndarray, np.ndarray]:
    """:func:`_fold_models` of ``loss`` and of the leaf size in ``LEAF_SIZES`` with the smallest weighted
    out-of-fold error of ``y``: squared, or absolute for the absolute error's trees. The models fit ``y``
    standardized (:func:`target_units`); the predictions are in its units."""
    center, spread = target_units(y, weights, robust=loss == ROBUST_LOSS)
    standardized = (y - center) / spread
    candidates = [_fold_models(X, standardized, fold_weights, folds, seed, leaf, loss) for leaf in LEAF_SIZES]
    if loss == ROBUST_LOSS:  # one gross error's square would choose the leaves that chase it
        best = min(candidates, key=lambda fitted: np.average(np.abs(fitted[1] - standardized), weights=weights))
    else:
        best = min(candidates, key=lambda fitted: np.average((fitted[1] - standardized) ** 2, weights=weights))
    models, out_of_fold, average = best
    return models, center + spread * out_of_fold, center + spread * average


def _fold_models(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    folds: list,
    seed: int,
    min_samples_leaf: int,
    loss: str = "squared_error",
) -> tuple[list[HistGradientBoostingRegressor], np.ndarray, np.ndarray]:
    """One target's fold models of leaf size ``min_samples_leaf`` and ``loss`` (``weights`` None: unweighted),
    their out-of-fold prediction and their average prediction of every row."""
    models, out_of_fold, average = [], np.empty_like(y), np.zeros_like(y)
    for train, held_out in folds:
        model = HistGradientBoostingRegressor(
            loss=loss, min_samples_leaf=min_samples_leaf, random_state=seed, categorical_features=None
        )
        # One thread, as the flows train: OpenMP threads that wait on busy cores made fits several times slower.
        with threadpool_limits(1):
            model.fit(X[train], y[train], sample_weight=None if weights is None else weights[train])
            prediction = model.predict(X)
        out_of_fold[held_out] = prediction[held_out]
        average += prediction / len(folds)
        models.append(model)
    return models, out_of_fold, average


def _reproduces(trees: tuple[np.ndarray, np.ndarray, np.ndarray], X: np.ndarray, average, units) -> bool:
    """Whether the arrays are well formed and predict what scikit-learn's fold models predict on ``X``,
    compared in each target's standardized ``units`` (center, spread): an offset or a gross error would
    swamp an absolute tolerance."""
    try:
        check_trees(trees, X.shape[1], len(units))
    except ValueError:
        return False
    center, spread = units[:, 0], units[:, 1]
    found, expected = (predict_trees(trees, X) - center) / spread, (average - center) / spread
    # Less what float64 keeps of a target far from 0 relative to its spread (y = 1e7 + 1e-3 steps).
    rounding = 16 * np.finfo(float).eps * np.abs(center) / spread
    return np.allclose(found, expected, rtol=1e-9, atol=1e-9 * (1 + np.abs(expected).max()) + rounding.max())


def _tree_array(tree: np.ndarray, offset: int, leaf_scale: float) -> np.ndarray:
    """One scikit-learn predictor's nodes as rows of ``nodes``, its child indices shifted by ``offset`` and its
    leaf values multiplied by ``leaf_scale``."""
    leaf = tree["is_leaf"].astype(bool)
    array = np.empty((len(tree), 5))
    array[:, FEATURE] = np.where(leaf, -1, tree["feature_idx"])
    array[:, THRESHOLD] = np.where(leaf, 0.0, tree["num_threshold"])
    array[:, LEFT] = np.where(leaf, 0, tree["left"] + offset)
    array[:, RIGHT] = np.where(leaf, 0, tree["right"] + offset)
    array[:, VALUE] = np.where(leaf, tree["value"] * leaf_scale, 0.0)
    return array


def predict_trees(trees: tuple[np.ndarray, np.ndarray, np.ndarray], X: np.ndarray) -> np.ndarray:
    """The trees' prediction (n_rows, n_targets): the baseline plus the leaf value of every tree of each target."""
    nodes, roots, baseline = trees
    prediction = np.tile(baseline, (X.shape[0], 1))
    feature, threshold = nodes[:, FEATURE].astype(np.int64), nodes[:, THRESHOLD]
    left, right = nodes[:, LEFT].astype(np.int64), nodes[:, RIGHT].astype(np.int64)
    columns = np.ascontiguousarray(X.T)
    every_row = np.arange(X.shape[0])
    for root, target in roots:
        node = np.full(X.shape[0], root)
        rows = every_row
        # Children come after their parent (check_trees), so every row reaches a leaf.
        while rows.size:
            rows = rows[feature[node[rows]] >= 0]
            at = node[rows]
            node[rows] = np.where(columns[feature[at], rows] <= threshold[at], left[at], right[at])
        prediction[:, target] += nodes[node, VALUE]
    return prediction


def check_trees(trees: tuple[np.ndarray, np.ndarray, np.ndarray], n_features: int, n_targets: int) -> None:
    """Refuse, with a ``ValueError``, stored trees that :func:`predict_trees` could not evaluate or end."""
    nodes, roots, baseline = trees
    ok = (
        isinstance(nodes, np.ndarray)
        and isinstance(roots, np.ndarray)
        and isinstance(baseline, np.ndarray)
        and nodes.ndim == 2
        and nodes.shape[1] == 5
        and nodes.dtype.kind == "f"
        and roots.ndim == 2
        and roots.shape[1] == 2
        and roots.dtype.kind == "i"
        and baseline.shape == ((n_targets,) if len(roots) else (0,))
        and bool(np.isfinite(baseline).all())
        and bool(np.isfinite(nodes[:, [FEATURE, LEFT, RIGHT, VALUE]]).all())
        and not np.isnan(nodes[:, THRESHOLD]).any()
    )
    if ok and len(roots):
        feature = nodes[:, FEATURE]
        inner = feature >= 0
        index = np.arange(len(nodes))
        children = nodes[inner][:, [LEFT, RIGHT]]
        ok = (
            bool((children == np.round(children)).all())
            and bool((feature == np.round(feature)).all() and (feature >= -1).all() and (feature < n_features).all())
            and bool((children > index[inner, None]).all())
            and bool((children < len(nodes)).all())
            and bool(((roots[:, 0] >= 0) & (roots[:, 0] < len(nodes))).all())
            and bool(((roots[:, 1] >= 0) & (roots[:, 1] < n_targets)).all())
        )
    if not ok:
        raise ValueError("the stored boosted trees are malformed (node indices, features or values out of range)")


# ------------------------------------------------------------ the estimator's side


def boosted_choices(estimator, n_rows: float) -> list[bool]:
    """Whether each flow of a fit of ``n_rows`` rows trains without and/or with the trees' prediction.

    ``boosted_feature=True``: with; False: without; "auto": both, on 40 to
    20,000 rows (``AUTO_ROWS``) of which at least ``MIN_VALIDATION_ROWS``
    validate, each flow keeping the training that scores better on them.
    """
    setting = estimator.boosted_feature
    if setting == "auto":
        return [False, True] if auto_chooses(estimator, n_rows) else [False]
    return [bool(setting)]


def auto_chooses(estimator, n_rows: float) -> bool:
    """Whether an "auto" setting (``boosted_feature``, ``relevance_scaling``) trains each flow both ways in a fit
    of ``n_rows`` rows: 40 to 20,000 rows (``AUTO_ROWS``) of which at least ``MIN_VALIDATION_ROWS`` validate."""
    low, high = AUTO_ROWS
    return low <= n_rows <= high and validates_choice(estimator, n_rows)


def validates_choice(estimator, n_rows: float) -> bool:
    """Whether at least ``MIN_VALIDATION_ROWS`` of a fit of ``n_rows`` rows validate: the rows each flow's fit
    holds out (a regressor's fit is conditional) are those that would choose."""
    return n_validation_rows(n_rows, held_out_fraction(estimator, n_rows, True)) >= MIN_VALIDATION_ROWS


def fit_tree_feature(
    estimator, X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int, robust: np.ndarray | None = None
) -> np.ndarray:
    """Fit ``estimator``'s trees (``tree_nodes_``, ``tree_roots_``, ``tree_baseline_``) where a flow may use
    them, and return the training features: ``X``, with the out-of-fold prediction appended if so.
    ``robust``: the targets the flows standardize robustly (:func:`fit_boosted_trees`)."""
    set_trees(estimator, empty_trees())
    if True not in boosted_choices(estimator, effective_rows(weights)):
        return X
    fitted = fit_boosted_trees(X, Y, weights, seed, robust)
    if fitted is None:
        return X
    trees, out_of_fold = fitted
    set_trees(estimator, trees)
    return np.hstack([X, out_of_fold])


def trees_of(estimator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(nodes, roots, baseline)`` of a fitted regressor."""
    return tuple(getattr(estimator, name) for name in TREE_ATTRIBUTES)


def set_trees(estimator, trees: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    for name, value in zip(TREE_ATTRIBUTES, trees, strict=True):
        setattr(estimator, name, value)


def with_tree_feature(estimator, X: np.ndarray) -> np.ndarray:
    """``X`` with the trees' prediction appended (unchanged for a model without trees)."""
    if not len(estimator.tree_roots_):
        return X
    return np.hstack([X, predict_trees(trees_of(estimator), X)])


def n_context_columns(n_features: int, n_targets: int, tree_roots: np.ndarray) -> int:
    """The columns a flow's context may take: the features, and with trees one prediction per target
    (:func:`with_tree_feature`); ``context_range_`` covers them all."""
    return int(n_features) + (int(n_targets) if len(tree_roots) else 0)


def check_fitted_widths(estimator) -> None:
    """Refuse (``ValueError``) a loaded fitted regressor whose trees or context scaling disagree with its
    flow: a file edited so would fail inside torch or compute with other features than it reports."""
    check_trees(trees_of(estimator), estimator.n_features_in_, estimator.n_targets_)
    width = estimator.n_features_in_ + (estimator.n_targets_ if estimator.boosted_feature_ else 0)
    location, scale, shifts = estimator.x_location_, estimator.x_scale_, estimator.x_log_shift_
    ok = (
        (len(estimator.tree_roots_) > 0 or not estimator.boosted_feature_)
        and isinstance(shifts, np.ndarray)
        and shifts.shape == (estimator.n_features_in_,)
        and shifts.dtype.kind == "f"
        and not bool(np.isinf(shifts).any())
        and all(isinstance(a, np.ndarray) and a.shape == (width,) and a.dtype.kind == "f" for a in (location, scale))
        and bool(np.isfinite(location).all() and np.isfinite(scale).all() and (scale > 0).all())
        and int(estimator.flow_.config.get("context_features", -1)) == width
    )
    bounds = estimator.context_range_  # of every column a flow may take: with the trees' prediction, if any
    every = n_context_columns(estimator.n_features_in_, estimator.n_targets_, estimator.tree_roots_)
    ok = ok and isinstance(bounds, np.ndarray) and bounds.shape == (2, every) and bounds.dtype.kind == "f"
    if not (ok and bool(np.all(bounds[0] <= bounds[1]))):
        raise ValueError(
            "the fitted context scaling (x_location_, x_scale_, x_log_shift_, context_range_) or boosted_feature_ "
            f"disagrees with the flow's {width} context columns"
        )
