"""Command line: fit, score and sample FlowDensity models on CSV/Parquet files, and the demo.

Run ``skflow --help`` (or ``python -m skflow --help``) for the commands and examples. Every error is reported as one
line on stderr with a non-zero exit status; set the environment variable ``SKFLOW_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import warnings
from pathlib import Path

from . import __version__
from ._cli_options import CLI_DEFAULTS, _add_parameter_options
from ._tables import (
    CLIError,
    _check_numeric,
    _check_output_path,
    _check_writable,
    _one_line,
    _pandas,
    _select_columns,
    read_table,
    write_table,
)
from .density import FlowDensity

EXIT_ERROR = 1
EXIT_USAGE = 2

MAIN_EPILOG = """\
examples:
  python -m skflow demo
      compare FlowDensity with GaussianMixture and KernelDensity on data shipped with scikit-learn
  skflow fit data.csv -o model.skflow
      fit with the default parameters (every column of data.csv must be numeric)
  skflow fit data.parquet -o model.skflow --flow affine --hidden-units 64,64 --max-epochs 200 --random-state 0
  skflow score model.skflow new.csv -o scores.csv
      log-density of each row of new.csv, in the units of the data (higher = more typical)
  skflow sample model.skflow -n 1000 -o samples.csv --random-state 1
  skflow fit --help
      every FlowDensity parameter, with its default

Data files: .csv, .tsv (optionally compressed: .csv.gz, ...) or .parquet, with a header row; pandas is needed
(pip install "skflow[pandas]"). Set SKFLOW_DEBUG=1 to see a traceback on errors.
"""

FIT_EPILOG = """\
examples:
  skflow fit data.csv -o model.skflow
  skflow fit data.csv -o model.skflow --columns x,y,z --random-state 0
  skflow fit survey.csv -o model.skflow --sample-weight weight
  skflow fit data.csv -o model.skflow --n-transforms 8 --hidden-units 128,128 --batch-size 512
  skflow fit counts.parquet -o model.skflow --dequantize true --bounds 0,none --verbose 0

Values: ints and floats as usual, tuples with commas (--hidden-units 64,64), true/false, auto, none.
--bounds takes one pair for every column (--bounds 0,1) or one pair per column separated by ';'
(--bounds "0,none;none,none;0,1"). Progress and a summary go to stderr; --verbose 0 silences them.
"""

SCORE_EPILOG = """\
examples:
  skflow score model.skflow new.csv -o scores.csv
  skflow score model.skflow new.parquet > scores.csv

The output has one column, log_density: the log of the fitted density at each row, in nats and in the units
of the data (the same scale as GaussianMixture.score_samples); rows keep their input order. Columns are matched
by name; columns the model was not fitted on are ignored. A summary goes to stderr.
"""

SAMPLE_EPILOG = """\
examples:
  skflow sample model.skflow -n 1000 -o samples.csv --random-state 1
  skflow sample model.skflow -n 10 | head

Samples have the columns the model was fitted on. Without --random-state the seed fitted with the model
(--random-state of skflow fit) is used, so repeated calls give the same rows; pass a seed for a new draw.
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (with a pointer to --help) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------------------------------------------ models


def save_model(model: FlowDensity, path: str) -> None:
    """Write a fitted model in skflow's safe format (:meth:`FlowDensity.save`: JSON and arrays, no pickle)."""
    model.save(path)


def load_model(path: str) -> FlowDensity:
    """Read a model written by :func:`save_model`, or raise CLIError saying why not.

    The format never unpickles, so a model file from elsewhere cannot run code when loaded.
    """
    file = Path(path)
    if not file.exists():
        raise CLIError(f"{path}: no such model file")
    if file.is_dir():
        raise CLIError(f"{path}: is a directory, not a model file")
    try:
        model = FlowDensity.load(path)
    except Exception as exc:
        raise CLIError(f"{path}: not a model written by 'skflow fit' ({_one_line(exc)})") from None
    if not isinstance(model, FlowDensity) or not hasattr(model, "flow_"):
        raise CLIError(f"{path}: holds a {type(model).__name__}, not a fitted FlowDensity")
    return model


def _model_columns(model: FlowDensity) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{j}" for j in range(model.n_features_in_)]


# ---------------------------------------------------------------------------------------------------- commands


def _info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _command_fit(args: argparse.Namespace) -> int:
    params = {**CLI_DEFAULTS, **{k[6:]: v for k, v in vars(args).items() if k.startswith("param_")}}
    model = FlowDensity(**params)
    _check_writable(args.output)
    frame = read_table(args.data)
    weights = None
    if args.sample_weight is not None:
        weight = _select_columns(frame, [args.sample_weight], args.data, "named by --sample-weight")
        weights = _check_numeric(weight, args.data).iloc[:, 0].to_numpy()
        if (weights < 0).any():
            row = int((weights < 0).argmax()) + 1
            raise CLIError(
                f"{args.data}: weight column {args.sample_weight!r} has negative values (first in data row {row})"
            )
        frame = frame.drop(columns=[args.sample_weight])
    if args.columns:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        if args.sample_weight in columns:
            raise CLIError(f"column {args.sample_weight!r} cannot be both a feature (--columns) and the weight")
        frame = _select_columns(frame, columns, args.data, "named by --columns")
    frame = _check_numeric(frame, args.data)
    if frame.shape[0] < 2:
        raise CLIError(f"{args.data}: only {frame.shape[0]} data row; fitting needs at least 2")
    start = time.perf_counter()
    model.fit(frame, sample_weight=weights)
    seconds = time.perf_counter() - start
    save_model(model, args.output)
    if model.verbose:
        _info(
            f"fitted FlowDensity on {frame.shape[0]} rows x {frame.shape[1]} columns in {seconds:.1f} s "
            f"({model.n_iter_} epochs, weights of epoch {model.best_epoch_}); "
            f"mean log-likelihood of the training rows {model.score(frame):.4f}; saved to {args.output}"
        )
    return 0


def _command_score(args: argparse.Namespace) -> int:
    import numpy as np

    _check_output_path(args.output)
    model = load_model(args.model)
    frame = read_table(args.data)
    columns = _model_columns(model)
    if getattr(model, "feature_names_in_", None) is not None:
        frame = _select_columns(frame, columns, args.data, "that the model was fitted on")
    elif frame.shape[1] != model.n_features_in_:
        raise CLIError(f"{args.data}: {frame.shape[1]} columns, but the model was fitted on {model.n_features_in_}")
    frame = _check_numeric(frame, args.data)
    scores = model.score_samples(frame if hasattr(model, "feature_names_in_") else frame.to_numpy())
    write_table(_pandas().DataFrame({"log_density": scores}), args.output)
    finite = scores[np.isfinite(scores)]
    summary = f"scored {len(scores)} rows: mean log-density {finite.mean():.4f}" if len(finite) else "scored"
    if len(finite) < len(scores):
        summary += f"; {len(scores) - len(finite)} row(s) at -inf (outside the model's support)"
    if args.output not in (None, "-"):
        summary += f"; written to {args.output}"
    _info(summary)
    return 0


def _command_sample(args: argparse.Namespace) -> int:
    _check_output_path(args.output)
    model = load_model(args.model)
    samples = model.sample(args.n_samples, random_state=args.random_state)
    write_table(_pandas().DataFrame(samples, columns=_model_columns(model)), args.output)
    if args.output not in (None, "-"):
        _info(f"wrote {args.n_samples} samples to {args.output}")
    return 0


def _command_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(plot_path=args.out, quick=args.quick)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The ``skflow`` argument parser, with one subcommand per task."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="skflow",
        description="skflow: normalizing-flow density estimation with scikit-learn's API. "
        "Fit a FlowDensity to a table of numbers, score new rows by their log-density, draw samples.",
        epilog=MAIN_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"skflow {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    fit = commands.add_parser(
        "fit",
        help="fit a FlowDensity to a data file and save the model",
        description="Fit a FlowDensity (exact-likelihood normalizing flow) to the numeric columns of a data file "
        "and save the fitted model.",
        epilog=FIT_EPILOG,
        formatter_class=formatter,
    )
    fit.add_argument("data", help="training data: .csv, .tsv or .parquet with a header row")
    fit.add_argument(
        "-o", "--output", required=True, metavar="MODEL", help="where to save the model (e.g. model.skflow)"
    )
    fit.add_argument("--columns", metavar="A,B,...", help="fit on these columns only (default: all columns)")
    fit.add_argument(
        "--sample-weight",
        metavar="COLUMN",
        help="a column of non-negative row weights (weighted maximum likelihood); it is not a feature",
    )
    _add_parameter_options(fit)
    fit.set_defaults(handler=_command_fit)

    score = commands.add_parser(
        "score",
        help="log-density of each row of a data file under a fitted model",
        description="Write the log-density of each row of a data file under a model saved by 'skflow fit'.",
        epilog=SCORE_EPILOG,
        formatter_class=formatter,
    )
    score.add_argument("model", help="a model file written by 'skflow fit'")
    score.add_argument("data", help="rows to score: .csv, .tsv or .parquet with the model's columns")
    score.add_argument("-o", "--output", metavar="FILE", help="scores file (.csv, .tsv, .parquet); default: stdout")
    score.set_defaults(handler=_command_score)

    sample = commands.add_parser(
        "sample",
        help="draw new rows from a fitted model",
        description="Draw samples from a model saved by 'skflow fit'.",
        epilog=SAMPLE_EPILOG,
        formatter_class=formatter,
    )
    sample.add_argument("model", help="a model file written by 'skflow fit'")
    sample.add_argument("-n", "--n-samples", type=_positive_int, default=1000, metavar="N", help="[default: 1000]")
    sample.add_argument("-o", "--output", metavar="FILE", help="samples file (.csv, .tsv, .parquet); default: stdout")
    sample.add_argument("--random-state", type=_seed, metavar="INT", help="seed for this draw")
    sample.set_defaults(handler=_command_sample)

    demo = commands.add_parser(
        "demo",
        help="compare FlowDensity with GaussianMixture and KernelDensity on data shipped with scikit-learn",
        description="Fit FlowDensity, a tuned GaussianMixture and a tuned KernelDensity on datasets that ship with "
        "scikit-learn, print their held-out log-likelihoods side by side and save a plot of the fitted densities.",
        formatter_class=formatter,
    )
    demo.add_argument("--out", default="skflow_demo.png", metavar="PNG", help="plot file [default: skflow_demo.png]")
    demo.add_argument("--quick", action="store_true", help="a seconds-long smoke run on tiny data (for tests)")
    demo.set_defaults(handler=_command_demo)
    return parser


# --------------------------------------------------------------------------------------------------------- main


def _option_message(exc: Exception) -> str:
    """sklearn's "The 'max_epochs' parameter of FlowDensity must be ..." as "--max-epochs must be ..."."""
    message = _one_line(exc)
    match = re.match(r"The '(\w+)' parameter of FlowDensity (.*)", message)
    if match:
        return f"--{match.group(1).replace('_', '-')} {match.group(2)}"
    return message


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"skflow: warning: {_one_line(Warning(message))}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the ``skflow`` command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments after the program name; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 1 on an error, 2 on a usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    prog = f"skflow {args.command}"
    debug = os.environ.get("SKFLOW_DEBUG", "") not in ("", "0")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            # torch's note on read-only arrays (pandas' copy-on-write views, read by FlowDensity.fit with bounds)
            # is harmless here (nothing writes to them) and not something a command-line user can act on.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return args.handler(args)
    except CLIError as exc:
        message = _one_line(exc)  # file content (a quoted header) could hold a newline
    except (ValueError, TypeError) as exc:
        if debug:
            raise
        message = _option_message(exc)
    except OSError as exc:
        if debug:
            raise
        message = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else _one_line(exc)
    except BrokenPipeError:  # e.g. `skflow sample ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        message = f"unexpected {type(exc).__name__}: {_one_line(exc)} (set SKFLOW_DEBUG=1 for the traceback)"
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return EXIT_ERROR
