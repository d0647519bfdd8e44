"""The commands: fit, score and sample FlowDensity models (fit, score and predict FlowRegressors), and the demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..density import FlowDensity
from ..regressor import FlowRegressor
from .errors import CLIError, one_line
from .options import CLI_DEFAULTS, regressor_only_parameters
from .regression import (
    check_target_options,
    fit_summary,
    predictions,
    regressor_parameters,
    score_regressor,
    split_targets,
)
from .tables import (
    check_numeric,
    check_output_path,
    check_writable,
    pandas_module,
    parse_column_list,
    read_table,
    select_columns,
    write_table,
)


def save_model(model: FlowDensity, path: str) -> None:
    """Write a fitted model in skflow's safe format (:meth:`FlowDensity.save`: JSON and arrays, no pickle)."""
    model.save(path)


def load_model(path: str) -> FlowDensity | FlowRegressor:
    """Read a model written by :func:`save_model` (a FlowDensity, or a FlowRegressor from ``fit --target``).

    Raises CLIError saying why not. The format never unpickles, so a model file from elsewhere cannot run code
    when loaded.
    """
    file = Path(path)
    if not file.exists():
        raise CLIError(f"{path}: no such model file")
    if file.is_dir():
        raise CLIError(f"{path}: is a directory, not a model file")
    try:
        try:
            model = FlowDensity.load(path)
        except ValueError as exc:
            if "FlowRegressor" not in str(exc).split("not a")[0]:  # "... holds a '...FlowRegressor', not a ..."
                raise
            model = FlowRegressor.load(path)
    except Exception as exc:
        raise CLIError(f"{path}: not a model written by 'skflow fit' ({one_line(exc)})") from None
    if not hasattr(model, "flow_"):
        raise CLIError(f"{path}: holds an unfitted {type(model).__name__}")
    # A model saved after set_output(transform="pandas") would hand the commands pandas objects; they write arrays.
    return model.set_output(transform="default")


def model_columns(model: FlowDensity) -> list[str]:
    """The names of the columns the model was fitted on; x0, x1, ... for a model fitted on an array."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{j}" for j in range(model.n_features_in_)]


def _read_for_model(model: FlowDensity | FlowRegressor, path: str):
    """The data file for a saved model: a header of numbers is read as names where it holds the model's columns."""
    names = [getattr(model, f"{kind}_names_in_", None) for kind in ("feature", "target")]
    known = [str(name) for some in names if some is not None for name in some]
    # The hint is a str.format template ({example}): braces in column names are escaped.
    shown = ", ".join(map(repr, known[:5])).replace("{", "{{").replace("}", "}}") + (", ..." if len(known) > 5 else "")
    hint = (
        f"a header of numbers is read as column names where it holds the model's ({shown})"
        if known
        else "with --by-position any names will do"
    )
    return read_table(path, names=known, numeric_header_hint=hint)


def _info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _read_weights(frame, column: str, path: str):
    """The weight column as an array, and the frame without it; CLIError for weights FlowDensity cannot use."""
    weight = select_columns(frame, [column], path, "named by --sample-weight")
    hint = "--sample-weight needs a column of non-negative numbers"
    weights = check_numeric(weight, path, hint=hint).iloc[:, 0].to_numpy()
    if (weights < 0).any():
        row = int((weights < 0).argmax()) + 1
        raise CLIError(f"{path}: weight column {column!r} has negative values (first in data row {row})")
    if not weights.sum() > 0:
        raise CLIError(f"{path}: weight column {column!r} is all zeros; at least one row needs a positive weight")
    return weights, frame.drop(columns=[column])


def command_fit(args: argparse.Namespace) -> int:
    """``skflow fit``: fit a FlowDensity (a FlowRegressor with --target) to a data file and save it."""
    params = {**CLI_DEFAULTS, **{k[6:]: v for k, v in vars(args).items() if k.startswith("param_")}}
    targets = parse_column_list(args.target, "--target") if args.target is not None else None
    regressor_only = [f"--{name.replace('_', '-')}" for name in regressor_only_parameters() if name in params]
    if targets is None and regressor_only:
        raise CLIError(f"{', '.join(regressor_only)}: a FlowRegressor parameter; fit a regressor with --target")
    model = FlowDensity(**params) if targets is None else FlowRegressor(**regressor_parameters(params))
    if args.output == "-":
        raise CLIError("fit writes the model to a file, not to stdout: give a file name with -o (e.g. model.skflow)")
    # Before reading and training, so that a long fit never ends in an unwritable path.
    check_writable(args.output, inputs=(args.data,))
    columns = parse_column_list(args.columns, "--columns") if args.columns is not None else None
    if columns is not None and args.sample_weight in columns:
        raise CLIError(f"column {args.sample_weight!r} cannot be both a feature (--columns) and the weight")
    if targets is not None:
        check_target_options(targets, columns, args.sample_weight)
    named = [*(columns or []), *(targets or []), *([args.sample_weight] if args.sample_weight else [])]
    frame = read_table(args.data, names=named)
    weights = None
    if args.sample_weight is not None:
        weights, frame = _read_weights(frame, args.sample_weight, args.data)
    if targets is not None:
        frame, y = split_targets(frame, targets, columns, args.data)
    elif columns is not None:
        frame = select_columns(frame, columns, args.data, "named by --columns")
    frame = check_numeric(frame, args.data)
    if frame.shape[0] < 2:
        raise CLIError(f"{args.data}: only {frame.shape[0]} data row; fitting needs at least 2")
    start = time.perf_counter()
    if targets is None:
        model.fit(frame, sample_weight=weights)
    else:
        model.fit(frame, y, sample_weight=weights)
    seconds = time.perf_counter() - start
    save_model(model, args.output)
    if model.verbose and targets is None:
        _info(
            f"fitted FlowDensity on {frame.shape[0]} rows x {frame.shape[1]} columns in {seconds:.1f} s "
            f"({model.n_iter_} epochs, weights of epoch {model.best_epoch_}); "
            f"mean log-likelihood of the training rows {model.score(frame):.4f}; saved to {args.output}"
        )
    elif model.verbose:
        _info(f"{fit_summary(model, frame, y, seconds)}; saved to {args.output}")
    return 0


def _columns_to_score(model: FlowDensity, frame, args: argparse.Namespace):
    """The model's columns of ``frame``: by name, or by position where the model has no names and the user says so.

    A model fitted on an array has no column names; matching a file's named columns to it silently by position
    scores garbage when the order differs, so position is used only on request (--by-position).
    """
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        if args.by_position:
            raise CLIError(
                f"{args.model}: the model has column names, so columns are matched by name; drop --by-position"
            )
        return select_columns(frame, [str(n) for n in names], args.data, "that the model was fitted on")
    n_features = model.n_features_in_
    if not args.by_position:
        raise CLIError(
            f"{args.model}: fitted without column names (on an array), so the columns of {args.data} cannot be "
            f"matched by name; pass --by-position to take its columns in file order as the model's {n_features}, "
            "or refit from a file with a header (skflow fit) or a DataFrame"
        )
    if frame.shape[1] != n_features:
        raise CLIError(
            f"{args.data}: {frame.shape[1]} columns, but the model was fitted on {n_features}; with --by-position "
            f"the file must hold exactly the model's columns, in the order it was fitted on"
        )
    return frame


def command_score(args: argparse.Namespace) -> int:
    """``skflow score``: the log-density of each row of a data file under a saved model."""
    import numpy as np

    check_output_path(args.output, inputs=(args.model, args.data))
    model = load_model(args.model)
    named = getattr(model, "feature_names_in_", None) is not None
    if isinstance(model, FlowRegressor):
        scores = score_regressor(model, _read_for_model(model, args.data), args)
    else:
        frame = _columns_to_score(model, _read_for_model(model, args.data), args)
        frame = check_numeric(frame, args.data, hint="the model needs numbers in every column it was fitted on")
        # An array for a model without names: FlowDensity would warn that the frame's names were not seen in fit.
        scores = model.score_samples(frame if named else frame.to_numpy())
    write_table(pandas_module().DataFrame({"log_density": scores}), args.output)
    finite = scores[np.isfinite(scores)]
    summary = f"scored {len(scores)} rows: mean log-density {finite.mean():.4f}" if len(finite) else "scored"
    if len(finite) < len(scores):
        summary += f"; {len(scores) - len(finite)} row(s) at -inf (outside the model's support)"
    if isinstance(model, FlowRegressor):
        summary += f"; conditional log p({', '.join(model.target_names_in_)} | features)"
    elif not named:
        summary += f"; columns taken by position: {', '.join(map(str, frame.columns))}"
    if args.output not in (None, "-"):
        summary += f"; written to {args.output}"
    _info(summary)
    return 0


def command_sample(args: argparse.Namespace) -> int:
    """``skflow sample``: draw rows from a saved model."""
    check_output_path(args.output, inputs=(args.model,))
    model = load_model(args.model)
    if isinstance(model, FlowRegressor):
        raise CLIError(
            f"{args.model}: holds a FlowRegressor, whose draws need features: use FlowRegressor.sample(X) in Python, "
            "or 'skflow predict' for means, intervals and quantiles"
        )
    samples = model.sample(args.n_samples, random_state=args.random_state)
    write_table(pandas_module().DataFrame(samples, columns=model_columns(model)), args.output)
    if args.output not in (None, "-"):
        _info(f"wrote {args.n_samples} samples to {args.output}")
    return 0


def command_predict(args: argparse.Namespace) -> int:
    """``skflow predict``: conditional means, intervals and quantiles of a saved FlowRegressor, row by row."""
    check_output_path(args.output, inputs=(args.model, args.data))
    model = load_model(args.model)
    if not isinstance(model, FlowRegressor):
        raise CLIError(
            f"{args.model}: holds a FlowDensity, which predicts nothing; fit a regressor with "
            "'skflow fit DATA --target COLUMN -o MODEL' (skflow score gives a density's log-density)"
        )
    table = predictions(model, _read_for_model(model, args.data), args)
    write_table(table, args.output)
    where = f"; written to {args.output}" if args.output not in (None, "-") else ""
    _info(f"predicted {len(table)} rows: columns {', '.join(table.columns)}{where}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    """``skflow demo``: FlowDensity next to GaussianMixture and KernelDensity."""
    from .demo import run_demo  # scikit-learn's datasets and matplotlib load only for the demo

    run_demo(plot_path=args.out, quick=args.quick)
    return 0
