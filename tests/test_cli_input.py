"""The command line's reading of options and files: integer options without a range (--n-jobs), a written pandas
index (a first column without a name) and a header of numbers (years)."""

from __future__ import annotations

from io import StringIO
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pytest

from skflow import FlowDensity, FlowRegressor

from . import test_cli
from .test_cli import FAST, assert_one_line_error

skflow_in_process = test_cli.skflow_in_process  # the fixture: main() called in this process

pd = pytest.importorskip("pandas")

# A single flow: --n-jobs then starts no worker processes, and the fit stays a fraction of a second.
REGRESSOR_FAST = [*FAST, "--n-flows", "1", "--verbose", "0"]


def frame(columns: list[str], rows: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(columns))), columns=columns)


# --n-jobs: FlowRegressor's constraint is [None, Integral], a bare type rather than an Interval.


@pytest.mark.parametrize("text, value", [("2", 2), ("-1", -1), ("none", None), ("None", None)])
def test_n_jobs_takes_an_integer_or_none(text, value):
    from skflow.cli.parser import build_parser

    args = build_parser().parse_args(["fit", "data.csv", "-o", "m.skflow", "--target", "y", "--n-jobs", text])
    assert args.param_n_jobs == value


def test_n_jobs_reaches_the_regressor_and_its_help_shows_int(tmp_path, skflow_in_process):
    frame(["x", "y"]).to_csv(tmp_path / "good.csv", index=False)
    args = ["fit", "good.csv", "-o", "m.skflow", "--target", "y", "--n-jobs", "-1", *REGRESSOR_FAST]
    result = skflow_in_process(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert FlowRegressor.load(str(tmp_path / "m.skflow")).n_jobs == -1
    assert "--n-jobs none|INT" in skflow_in_process("fit", "--help", cwd=tmp_path).stdout
    bad = skflow_in_process("fit", "good.csv", "-o", "m.skflow", "--target", "y", "--n-jobs", "all", cwd=tmp_path)
    assert_one_line_error(bad, "--n-jobs", "none|INT", "'all'")


def test_bare_number_types_are_described_and_parsed():
    from skflow.cli.options import _describe, _value_parser

    assert _describe([None, Integral]) == "none|INT"
    assert _describe([None, Real]) == "none|FLOAT"
    assert _value_parser([None, Integral], "none|INT")("-1") == -1
    assert _value_parser([None, Real], "none|FLOAT")("0.5") == 0.5
    assert _value_parser([None, Real], "none|FLOAT")("none") is None


# A CSV written with pandas' default index=True: a first column without a name holding row labels.


@pytest.mark.parametrize(
    "index",
    [None, np.arange(100, 140)[::-1], [f"row{i}" for i in range(40)]],
    ids=["range", "shuffled-integers", "texts"],
)
def test_a_written_index_is_dropped_with_a_note_in_fit_and_score(index, tmp_path, skflow_in_process):
    data = frame(["a", "b", "c"])
    indexed = data if index is None else data.set_axis(index)
    indexed.to_csv(tmp_path / "withindex.csv")  # header ",a,b,c"
    fit = skflow_in_process("fit", "withindex.csv", "-o", "m.skflow", *FAST, "--verbose", "0", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    note = fit.stderr.splitlines()[0]
    assert note.startswith("skflow: note: withindex.csv:") and "no name" in note and "index=False" in note
    model = FlowDensity.load(str(tmp_path / "m.skflow"))
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    reference = FlowDensity(max_epochs=3, n_transforms=2, hidden_units=(8, 8), random_state=0, verbose=0).fit(data)
    score = skflow_in_process("score", "m.skflow", "withindex.csv", cwd=tmp_path)
    assert score.returncode == 0, score.stderr
    assert "skflow: note: withindex.csv:" in score.stderr
    scores = pd.read_csv(StringIO(score.stdout))["log_density"]
    np.testing.assert_allclose(scores, reference.score_samples(data), rtol=1e-6)


def test_a_written_index_is_dropped_in_predict_too(tmp_path, skflow_in_process):
    data = frame(["x", "y"])
    data.to_csv(tmp_path / "withindex.csv")
    fit = skflow_in_process("fit", "withindex.csv", "-o", "r.skflow", "--target", "y", *REGRESSOR_FAST, cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    assert list(FlowRegressor.load(str(tmp_path / "r.skflow")).feature_names_in_) == ["x"]
    predict = skflow_in_process("predict", "r.skflow", "withindex.csv", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    assert "skflow: note: withindex.csv:" in predict.stderr
    assert len(pd.read_csv(StringIO(predict.stdout))) == 40


@pytest.mark.parametrize(
    "command, text, fragments",
    [
        ("fit", "a,,c\n1,2,3\n4,5,6\n7,8,9\n", ["column 2 of 3", "no name"]),
        ("fit", "a,b,\n1,2,\n4,5,\n7,8,\n", ["column 3 of 3", "no name", "end of the header"]),
        ("fit", ",b,c\n1.5,2,3\n1.5,5,6\n2.5,8,9\n", ["first column has no name", "not row labels", "name it"]),
        ("score", "a,,c\n1,2,3\n4,5,6\n7,8,9\n", ["column 2 of 3", "no name"]),
        ("predict", ",b,c\n1.5,2,3\n1.5,5,6\n2.5,8,9\n", ["first column has no name", "not row labels"]),
    ],
)
def test_a_column_without_a_name_elsewhere_is_an_error(command, text, fragments, tmp_path, skflow_in_process):
    (tmp_path / "unnamed.csv").write_text(text)
    if command == "fit":
        args = ["fit", "unnamed.csv", "-o", "m.skflow"]
    else:  # refused on reading, before the model is used: any saved model of the right kind will do
        model = FlowDensity(max_epochs=1, n_transforms=1, hidden_units=(4,), verbose=0).fit(frame(["a", "c"]))
        if command == "predict":
            model = FlowRegressor(max_epochs=1, n_transforms=1, hidden_units=(4,), n_flows=1, verbose=0)
            model.fit(frame(["b"]), frame(["c"])["c"])
        model.save(str(tmp_path / "model.skflow"))
        args = [command, "model.skflow", "unnamed.csv"]
    result = skflow_in_process(*args, cwd=tmp_path)
    assert_one_line_error(result, "unnamed.csv", *fragments)
    assert not (tmp_path / "m.skflow").exists()


# A header of numbers (years): refused as a missing header unless the command names some of its columns.


def test_a_header_of_numbers_is_read_when_the_columns_are_named(tmp_path, skflow_in_process):
    years = frame(["2019", "2020", "2021"])
    years.to_csv(tmp_path / "years.csv", index=False)
    refused = skflow_in_process("fit", "years.csv", "-o", "m.skflow", cwd=tmp_path)
    assert_one_line_error(refused, "years.csv", "header row", "--columns 2019,2020,2021")
    args = ["fit", "years.csv", "-o", "m.skflow", "--columns", "2019,2020,2021", *FAST, "--verbose", "0"]
    fit = skflow_in_process(*args, cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    model = FlowDensity.load(str(tmp_path / "m.skflow"))
    assert list(model.feature_names_in_) == ["2019", "2020", "2021"]
    # score knows the names from the model: the same file is read with its header.
    score = skflow_in_process("score", "m.skflow", "years.csv", cwd=tmp_path)
    assert score.returncode == 0, score.stderr
    scores = pd.read_csv(StringIO(score.stdout))["log_density"]
    np.testing.assert_allclose(scores, model.score_samples(years), rtol=1e-9)
    # --target names a column too; predict knows the regressor's columns.
    args = ["fit", "years.csv", "-o", "r.skflow", "--target", "2021", *REGRESSOR_FAST]
    regressor = skflow_in_process(*args, cwd=tmp_path)
    assert regressor.returncode == 0, regressor.stderr
    predict = skflow_in_process("predict", "r.skflow", "years.csv", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    assert list(pd.read_csv(StringIO(predict.stdout)).columns) == ["2021_mean", "2021_lower", "2021_upper"]


def test_a_file_without_a_header_is_still_refused(tmp_path, skflow_in_process):
    (tmp_path / "no_header.csv").write_text("1.0,2.0\n3.0,4.0\n1.0,2.0\n")
    # Names that are not in the first line do not make it a header.
    result = skflow_in_process("fit", "no_header.csv", "-o", "m.skflow", "--columns", "x0,x1", cwd=tmp_path)
    assert_one_line_error(result, "no_header.csv", "header row", "--columns")
    model = FlowDensity(max_epochs=1, n_transforms=1, hidden_units=(4,), verbose=0).fit(frame(["a", "b"]))
    model.save(str(tmp_path / "model.skflow"))
    score = skflow_in_process("score", "model.skflow", "no_header.csv", cwd=tmp_path)
    assert_one_line_error(score, "no_header.csv", "header row", "'a', 'b'")
    # Column names with braces go into the message as they are (the hint is a format template).
    braces = FlowDensity(max_epochs=1, n_transforms=1, hidden_units=(4,), verbose=0).fit(frame(["a{b}", "c"]))
    braces.save(str(tmp_path / "braces.skflow"))
    score = skflow_in_process("score", "braces.skflow", "no_header.csv", cwd=tmp_path)
    assert_one_line_error(score, "no_header.csv", "header row", "'a{b}', 'c'")


def test_help_documents_the_header_rules(tmp_path: Path, skflow_in_process):
    fit = " ".join(skflow_in_process("fit", "--help", cwd=tmp_path).stdout.split())
    assert "--columns 2019,2020,2021" in fit and "header of numbers" in fit
    top = " ".join(skflow_in_process("--help", cwd=tmp_path).stdout.split())
    assert "without a name" in top and "index=False" in top


def test_a_latin_1_file_is_named_as_not_utf8_with_the_fix(skflow_in_process, tmp_path):
    (tmp_path / "latin.csv").write_bytes("città,valore\n1,2\n3,4\n".encode("latin-1"))
    result = skflow_in_process("fit", "latin.csv", "-o", "m.skflow", cwd=tmp_path)
    assert_one_line_error(result, "latin.csv", "not UTF-8 text", "Latin-1", "iconv")
