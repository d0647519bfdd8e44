"""The command line's regressor: ``skflow fit --target``, ``skflow score`` and ``skflow predict`` on a FlowRegressor.

A regressor model knows its feature columns (``feature_names_in_``) and its target columns (``target_names_in_``,
recorded because ``fit`` gets the targets as a named pandas Series or DataFrame): files are matched by those names.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..regressor import FlowRegressor
from .errors import CLIError
from .tables import check_numeric, pandas_module, select_columns


def regressor_parameters(params: dict) -> dict:
    """``params`` for FlowRegressor, or CLIError naming the FlowDensity-only options given with --target."""
    known = FlowRegressor().get_params()
    foreign = [name for name in params if name not in known]
    if foreign:
        listed = ", ".join(f"--{name.replace('_', '-')}" for name in foreign)
        raise CLIError(f"{listed}: not a parameter of FlowRegressor (fit with --target); drop it or drop --target")
    return params


def check_target_options(targets: list[str], columns: list[str] | None, weight: str | None) -> None:
    """CLIError for a target that is also a feature (--columns) or the weight column (--sample-weight)."""
    for target in targets:
        if columns is not None and target in columns:
            raise CLIError(f"column {target!r} cannot be both a feature (--columns) and a target (--target)")
        if target == weight:
            raise CLIError(f"column {target!r} cannot be both the weight (--sample-weight) and a target (--target)")


def split_targets(frame, targets: list[str], columns: list[str] | None, path: str):
    """The features (``columns``, or every column but the targets) and the target(s): a Series for one target."""
    hint = "--target needs numeric columns (a regressor models numbers; encode a categorical target first)"
    y = check_numeric(select_columns(frame, targets, path, "named by --target"), path, hint=hint)
    if columns is not None:
        features = select_columns(frame, columns, path, "named by --columns")
    else:
        features = frame.drop(columns=targets)
    if features.shape[1] == 0:
        raise CLIError(f"{path}: no feature columns besides the target(s) {', '.join(map(repr, targets))}")
    return check_numeric(features, path), y.iloc[:, 0] if len(targets) == 1 else y


def fit_summary(model: FlowRegressor, X, y, seconds: float) -> str:
    """One line on what was fitted: targets, features, rows, epochs and the training rows' mean log p(y | x)."""
    targets = ", ".join(map(str, model.target_names_in_))
    return (
        f"fitted FlowRegressor of {targets} given {X.shape[1]} feature column(s) on {X.shape[0]} rows in "
        f"{seconds:.1f} s ({model.n_iter_} epochs, weights of epoch {model.best_epoch_}); "
        f"mean log p(y | x) of the training rows {model.score_samples(X, y).mean():.4f}"
    )


def model_targets(model: FlowRegressor, path: str) -> list[str]:
    """The target columns a regressor was fitted on, or CLIError for one fitted on unnamed targets."""
    names = getattr(model, "target_names_in_", None)
    if names is None or getattr(model, "feature_names_in_", None) is None:
        raise CLIError(
            f"{path}: a FlowRegressor fitted without column names (on arrays), so a file's columns cannot be "
            "matched to its features and targets; refit with 'skflow fit --target' or on a pandas DataFrame and "
            "a named Series"
        )
    return [str(name) for name in names]


def regressor_features(model: FlowRegressor, frame, args: argparse.Namespace):
    """The model's feature columns of the file, by name, as numbers."""
    model_targets(model, args.model)
    names = [str(name) for name in model.feature_names_in_]
    features = select_columns(frame, names, args.data, "that the model was fitted on (as features)")
    return check_numeric(features, args.data, hint="the model needs numbers in every feature it was fitted on")


def score_regressor(model: FlowRegressor, frame, args: argparse.Namespace) -> np.ndarray:
    """``skflow score`` on a regressor: ``log p(y | x)`` of each row; the file needs the targets too."""
    if args.by_position:
        raise CLIError(f"{args.model}: a FlowRegressor matches columns by name; drop --by-position")
    features = regressor_features(model, frame, args)
    targets = model_targets(model, args.model)
    what = "that the model predicts (its targets; 'skflow predict' needs none)"
    y = check_numeric(select_columns(frame, targets, args.data, what), args.data)
    return model.score_samples(features, y if len(targets) > 1 else y.iloc[:, 0])


def parse_levels(text: str | None, option: str) -> list[float]:
    """Probability levels from ``0.1,0.5,0.9``, each strictly between 0 and 1, or CLIError."""
    if text is None:
        return []
    try:
        levels = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise CLIError(f"{option} {text!r}: expected numbers between 0 and 1 separated by commas") from None
    if not levels or not all(0 < level < 1 for level in levels):
        raise CLIError(f"{option} {text!r}: every level must lie strictly between 0 and 1")
    return levels


def predictions(model: FlowRegressor, frame, args: argparse.Namespace):
    """``skflow predict``: a DataFrame of conditional means and, for one target, interval ends and quantiles."""
    coverage = 0.9 if args.coverage is None else args.coverage
    if not 0 < coverage < 1:
        raise CLIError(f"--coverage {coverage:g}: must lie strictly between 0 and 1 (e.g. 0.9)")
    levels = parse_levels(args.quantiles, "--quantiles")
    targets = model_targets(model, args.model)
    if len(targets) > 1 and (levels or args.coverage is not None):
        raise CLIError(
            f"{args.model}: the model predicts {len(targets)} targets jointly; quantiles and intervals exist for one "
            "target only (drop --coverage and --quantiles)"
        )
    features = regressor_features(model, frame, args)
    mean = np.asarray(model.predict(features)).reshape(len(features), -1)
    columns = {f"{target}_mean": mean[:, j] for j, target in enumerate(targets)}
    if len(targets) == 1:
        (target,) = targets
        interval = model.predict_interval(features, coverage=coverage)
        columns[f"{target}_lower"], columns[f"{target}_upper"] = interval[:, 0], interval[:, 1]
        if levels:
            quantiles = model.predict_quantiles(features, levels)
            columns.update({f"{target}_q{level:g}": quantiles[:, j] for j, level in enumerate(levels)})
    return pandas_module().DataFrame(columns)
