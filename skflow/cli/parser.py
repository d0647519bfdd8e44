"""The ``skflow`` argument parser: one subcommand per task, with examples in each help."""

from __future__ import annotations

import argparse

from .. import __version__
from .commands import command_demo, command_fit, command_predict, command_sample, command_score
from .errors import EXIT_USAGE
from .options import add_parameter_options

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
  skflow fit houses.csv --target price -o price.skflow
      a FlowRegressor: the conditional density of price given the other columns
  skflow predict price.skflow new_houses.csv -o predicted.csv
      conditional mean and 90% interval of price for each row (skflow score: log p(price | x), given prices)
  skflow fit --help
      every FlowDensity parameter, with its default

Data files: .csv, .tsv (optionally compressed: .csv.gz, ...) or .parquet, with a header row; pandas is needed
(pip install "skflow[pandas]"). A first column without a name that holds row labels (the index that pandas'
to_csv writes unless index=False) is ignored, with a note. Set SKFLOW_DEBUG=1 to see a traceback on errors.
"""

FIT_EPILOG = """\
examples:
  skflow fit data.csv -o model.skflow
  skflow fit data.csv -o model.skflow --columns x,y,z --random-state 0
  skflow fit survey.csv -o model.skflow --sample-weight weight
  skflow fit data.csv -o model.skflow --n-transforms 8 --hidden-units 128,128 --batch-size 512
  skflow fit counts.parquet -o model.skflow --bounds=-0.5,none --verbose 0
  skflow fit houses.csv -o price.skflow --target price
  skflow fit houses.csv -o price.skflow --target price --columns area,rooms --bounds 0,none

Values: ints and floats as usual, tuples with commas (--hidden-units 64,64), true/false, auto, none.
--bounds takes one pair for every column (--bounds 0,1) or one pair per column separated by ';'
(--bounds "0,none;none,none;0,1"). Progress and a summary go to stderr; --verbose 0 silences them.
The model's column names are saved with it: skflow score matches columns by name.
A header of numbers only (2019,2020,2021) is taken for a missing header and refused, unless the command names
some of its columns (--columns 2019,2020,2021, or --target, --sample-weight): then they are the column names.

--target COLUMN[,COLUMN...] fits a FlowRegressor instead: the conditional density of the target column(s)
(jointly, for several) given the feature columns, which are --columns or every other column (but the weight).
FlowRegressor takes the same options except --standardize (and --base is linear|normal, default linear; --n-bins an
int), its own --calibrate, --boosted-feature, --n-flows (auto by default: an ensemble of 10 flows on fewer than 200
rows, 5 otherwise; 1 fits about three times faster) and --n-jobs; its --max-epochs defaults to 100, its
--learning-rate to 3e-3 and its --n-bins to 8. --bounds and --dequantize then apply to the target(s), and the features
are standardized inside the model. --bounds defaults to auto there: a positive target whose noise boosted trees find
far more likely on the log scale is modelled as log(y + c), c its smallest training value.
"""

SCORE_EPILOG = """\
examples:
  skflow score model.skflow new.csv -o scores.csv
  skflow score model.skflow new.parquet > scores.csv
  skflow score array_model.skflow new.csv --by-position

The output has one column, log_density: the log of the fitted density at each row, in nats and in the units
of the data (the same scale as GaussianMixture.score_samples); rows keep their input order. Columns are matched
by name; columns the model was not fitted on are ignored. A model fitted in Python on an array (no column names)
cannot match by name: pass --by-position to use the file's columns, all of them and in file order, as the
model's (or refit with names). A summary goes to stderr.

For a regressor (skflow fit --target), log_density is the conditional log-density log p(y | x) of each row's
target(s) given its features, in the units of the target: the file needs both.
"""

PREDICT_EPILOG = """\
examples:
  skflow predict price.skflow new_houses.csv -o predicted.csv
  skflow predict price.skflow new_houses.parquet --coverage 0.5 --quantiles 0.1,0.5,0.9 > predicted.csv

For a model fitted with skflow fit --target. The output has, for each row of the input in order, the conditional
mean TARGET_mean and the ends TARGET_lower, TARGET_upper of the central --coverage interval (exact quantiles of
the conditional density, not mean +- a spread), plus TARGET_qLEVEL for each level of --quantiles. A model of
several targets gives their means only. Feature columns are matched by name; other columns are ignored.
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


def _add_fit(commands, formatter) -> None:
    fit = commands.add_parser(
        "fit",
        help="fit a FlowDensity (a FlowRegressor with --target) to a data file and save the model",
        description="Fit a FlowDensity (exact-likelihood normalizing flow) to the numeric columns of a data file "
        "and save the fitted model.",
        epilog=FIT_EPILOG,
        formatter_class=formatter,
    )
    fit.add_argument("data", help="training data: .csv, .tsv or .parquet with a header row")
    fit.add_argument(
        "-o", "--output", required=True, metavar="MODEL", help="where to save the model (e.g. model.skflow)"
    )
    fit.add_argument(
        "--columns",
        metavar="A,B,...",
        help="fit on these columns only (default: all columns); also how to use a header of numbers such as years "
        "(--columns 2019,2020,2021), which is otherwise refused as a missing header",
    )
    fit.add_argument(
        "--target",
        metavar="COLUMN[,...]",
        help="fit a FlowRegressor of these column(s) given the others (or --columns) instead of a FlowDensity",
    )
    fit.add_argument(
        "--sample-weight",
        metavar="COLUMN",
        help="a column of non-negative row weights (weighted maximum likelihood); it is not a feature",
    )
    add_parameter_options(fit)
    fit.set_defaults(handler=command_fit)


def _add_score(commands, formatter) -> None:
    score = commands.add_parser(
        "score",
        help="log-density of each row of a data file under a fitted model (log p(y | x) for a regressor)",
        description="Write the log-density of each row of a data file under a model saved by 'skflow fit'.",
        epilog=SCORE_EPILOG,
        formatter_class=formatter,
    )
    score.add_argument("model", help="a model file written by 'skflow fit'")
    score.add_argument("data", help="rows to score: .csv, .tsv or .parquet with the model's columns")
    score.add_argument("-o", "--output", metavar="FILE", help="scores file (.csv, .tsv, .parquet); default: stdout")
    score.add_argument(
        "--by-position",
        action="store_true",
        help="for a model fitted without column names only: take the file's columns in order as the model's",
    )
    score.set_defaults(handler=command_score)


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text}")
    return value


def _add_predict(commands, formatter) -> None:
    predict = commands.add_parser(
        "predict",
        help="conditional mean, interval and quantiles of a fitted regressor for each row of a data file",
        description="Write the conditional mean, central interval and quantiles of the target(s) of a regressor "
        "saved by 'skflow fit --target', for each row of a data file.",
        epilog=PREDICT_EPILOG,
        formatter_class=formatter,
    )
    predict.add_argument("model", help="a model file written by 'skflow fit --target'")
    predict.add_argument("data", help="rows to predict: .csv, .tsv or .parquet with the model's feature columns")
    predict.add_argument("-o", "--output", metavar="FILE", help="predictions (.csv, .tsv, .parquet); default: stdout")
    predict.add_argument(
        "--coverage", type=_probability, metavar="C", help="probability of the central interval [default: 0.9]"
    )
    predict.add_argument("--quantiles", metavar="L,L,...", help="also these quantile levels, e.g. 0.1,0.5,0.9")
    predict.set_defaults(handler=command_predict)


def _add_sample(commands, formatter) -> None:
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
    sample.set_defaults(handler=command_sample)


def _add_demo(commands, formatter) -> None:
    demo = commands.add_parser(
        "demo",
        help="compare FlowDensity with GaussianMixture and KernelDensity on data shipped with scikit-learn",
        description="Fit FlowDensity, a tuned GaussianMixture and a tuned KernelDensity on datasets that ship with "
        "scikit-learn, print their held-out log-likelihoods side by side and save a plot of the fitted densities.",
        formatter_class=formatter,
    )
    demo.add_argument("--out", default="skflow_demo.png", metavar="PNG", help="plot file [default: skflow_demo.png]")
    demo.add_argument("--quick", action="store_true", help="a seconds-long smoke run on tiny data (for tests)")
    demo.set_defaults(handler=command_demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``skflow`` argument parser, with one subcommand per task.

    Returns
    -------
    parser : argparse.ArgumentParser
        Parsed arguments carry ``handler``, the command's function, for every subcommand.
    """
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="skflow",
        description="skflow: normalizing-flow density estimation with scikit-learn's API. "
        "Fit a FlowDensity to a table of numbers, score new rows by their log-density, draw samples; "
        "or fit a FlowRegressor of a target column (--target) and predict it.",
        epilog=MAIN_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"skflow {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (_add_fit, _add_score, _add_predict, _add_sample, _add_demo):
        add(commands, formatter)
    return parser
