"""The command line, end to end: ``python -m skflow ...`` in a subprocess on small files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parents[1]
# Few epochs and a small flow: these tests check the plumbing, not the fit.
FAST = ["--max-epochs", "3", "--n-transforms", "2", "--hidden-units", "8,8", "--random-state", "0"]


def skflow(*args: str, cwd: Path, command: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m skflow ARGS`` (or ``command ARGS``) in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("SKFLOW_DEBUG", None)
    command = command or [sys.executable, "-m", "skflow"]
    return subprocess.run([*command, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def skflow_in_process(monkeypatch, capsys):
    """``main`` called in this process (fast; for the many error cases), returning what a subprocess would."""
    from skflow.cli import main

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd)
        monkeypatch.delenv("SKFLOW_DEBUG", raising=False)
        capsys.readouterr()
        try:
            status = main(list(map(str, args)))
        except SystemExit as exc:  # argparse's --help and usage errors
            status = exc.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out, err)

    return run


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A failed command: non-zero status, one line on stderr naming the problem, no traceback."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def data(workdir) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -1.0], columns=["a", "b", "c"])
    frame.to_csv(workdir / "train.csv", index=False)
    frame.to_parquet(workdir / "train.parquet")
    return frame


@pytest.fixture(scope="module")
def model(workdir, data) -> Path:
    result = skflow("fit", "train.csv", "-o", "model.skflow", *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # fit writes its progress and summary to stderr only
    assert "FlowDensity epoch" in result.stderr and "saved to model.skflow" in result.stderr
    return workdir / "model.skflow"


def load(path: Path):
    from skflow import FlowDensity

    return FlowDensity.load(str(path))


def test_fit_saves_a_model_with_the_given_parameters(model, data):
    est = load(model)
    assert list(est.feature_names_in_) == ["a", "b", "c"]
    assert (est.max_epochs, est.n_transforms, est.hidden_units, est.random_state) == (3, 2, (8, 8), 0)
    assert est.n_iter_ <= 3
    # The command-line fit is the same fit as in Python with the same parameters.
    from skflow import FlowDensity

    reference = FlowDensity(max_epochs=3, n_transforms=2, hidden_units=(8, 8), random_state=0).fit(data)
    np.testing.assert_allclose(est.score_samples(data), reference.score_samples(data), rtol=1e-6)


def test_score_writes_one_log_density_per_row(model, data, workdir, skflow_in_process):
    result = skflow_in_process("score", model, "train.csv", "-o", "scores.csv", cwd=workdir)
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(workdir / "scores.csv")
    assert list(scores.columns) == ["log_density"]
    np.testing.assert_allclose(scores["log_density"], load(model).score_samples(data), rtol=1e-9)
    assert f"mean log-density {scores['log_density'].mean():.4f}" in result.stderr


def test_score_matches_columns_by_name_and_reads_parquet(model, data, workdir, skflow_in_process):
    # Reordered columns plus an extra id column: columns are matched by name, extras ignored.
    shuffled = data[["c", "a", "b"]].assign(id=np.arange(len(data)))
    shuffled.to_parquet(workdir / "shuffled.parquet")
    result = skflow_in_process("score", model, "shuffled.parquet", "-o", "scores.parquet", cwd=workdir)
    assert result.returncode == 0, result.stderr
    scores = pd.read_parquet(workdir / "scores.parquet")
    np.testing.assert_allclose(scores["log_density"], load(model).score_samples(data), rtol=1e-9)


def test_score_to_stdout(model, workdir, skflow_in_process):
    result = skflow_in_process("score", model, "train.csv", cwd=workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "log_density" and len(lines) == 121
    float(lines[1])


@pytest.mark.parametrize("name", ["rows.tsv", "rows.csv.gz"])
def test_score_reads_tsv_and_compressed_csv(name, model, data, workdir, skflow_in_process):
    data.to_csv(workdir / name, sep="\t" if name.endswith(".tsv") else ",", index=False)
    result = skflow_in_process("score", model, name, "-o", "scores.tsv", cwd=workdir)
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(workdir / "scores.tsv", sep="\t")
    np.testing.assert_allclose(scores["log_density"], load(model).score_samples(data), rtol=1e-9)


def test_without_pandas_the_message_says_what_to_install(model, workdir, skflow_in_process, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` raise ImportError
    result = skflow_in_process("score", model, "train.csv", cwd=workdir)
    assert_one_line_error(result, "needs pandas", "pip install")


def test_sample_writes_rows_with_the_model_columns(model, workdir, skflow_in_process):
    result = skflow_in_process("sample", model, "-n", "50", "-o", "samples.csv", "--random-state", "1", cwd=workdir)
    assert result.returncode == 0, result.stderr
    samples = pd.read_csv(workdir / "samples.csv")
    assert list(samples.columns) == ["a", "b", "c"] and samples.shape == (50, 3)
    np.testing.assert_allclose(samples.to_numpy(), load(model).sample(50, random_state=1), rtol=1e-9)
    # A different seed gives a different draw; the same seed the same one.
    again = skflow_in_process("sample", model, "-n", "50", "--random-state", "1", cwd=workdir)
    other = skflow_in_process("sample", model, "-n", "50", "--random-state", "2", cwd=workdir)
    from io import StringIO

    np.testing.assert_allclose(pd.read_csv(StringIO(again.stdout)).to_numpy(), samples.to_numpy(), rtol=1e-12)
    assert not np.allclose(pd.read_csv(StringIO(other.stdout)).to_numpy(), samples.to_numpy())


def test_fit_on_parquet_with_selected_columns_and_typed_options(workdir, data, skflow_in_process):
    result = skflow_in_process(
        "fit",
        "train.parquet",
        "-o",
        "ab.skflow",
        "--columns",
        "b,a",
        "--flow",
        "affine",
        "--standardize",
        "true",
        "--validation-fraction",
        "0.2",
        "--batch-size",
        "auto",
        "--bounds",
        "none,none;-100,100",
        "--verbose",
        "0",
        *FAST,
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    # --verbose 0: no progress, only the one-line warning that 3 epochs did not reach early stopping
    assert all(line.startswith("skflow: warning: max_epochs=3") for line in result.stderr.splitlines())
    est = load(workdir / "ab.skflow")
    assert list(est.feature_names_in_) == ["b", "a"]
    assert est.flow == "affine" and est.standardize is True and est.validation_fraction == 0.2
    assert est.bounds == ((None, None), (-100, 100)) and est.batch_size == "auto"


def test_fit_with_a_weight_column(workdir, data, skflow_in_process):
    from skflow import FlowDensity

    weights = np.linspace(0.0, 2.0, len(data))
    data.assign(w=weights).to_csv(workdir / "weighted.csv", index=False)
    args = ["--max-epochs", "3", "--n-transforms", "1", "--hidden-units", "8", "--random-state", "0", "--verbose", "0"]
    result = skflow_in_process("fit", "weighted.csv", "-o", "w.skflow", "--sample-weight", "w", *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    est = load(workdir / "w.skflow")
    assert list(est.feature_names_in_) == ["a", "b", "c"]  # the weight column is not a feature
    reference = FlowDensity(max_epochs=3, n_transforms=1, hidden_units=(8,), random_state=0)
    reference.fit(data, sample_weight=weights)
    np.testing.assert_allclose(est.score_samples(data), reference.score_samples(data), rtol=1e-6)
    unweighted = FlowDensity(max_epochs=3, n_transforms=1, hidden_units=(8,), random_state=0).fit(data)
    assert not np.allclose(est.score_samples(data), unweighted.score_samples(data))


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["fit", "missing.csv", "-o", "m.skflow"], ["missing.csv", "no such file"]),
        (["fit", "notes.xlsx", "-o", "m.skflow"], ["unknown file type", ".xlsx"]),
        (["fit", "empty.csv", "-o", "m.skflow"], ["empty.csv", "empty"]),
        (["fit", "header_only.csv", "-o", "m.skflow"], ["no data rows"]),
        (["fit", "text.csv", "-o", "m.skflow"], ["non-numeric", "'city'", "'Paris'"]),
        (["fit", "holes.csv", "-o", "m.skflow"], ["'b'", "missing values", "row 2"]),
        (["fit", "binary.parquet", "-o", "m.skflow"], ["binary.parquet", "could not be read"]),
        (["fit", "nullable.parquet", "-o", "m.skflow"], ["'n'", "missing values", "row 3"]),
        (["fit", "train.csv", "-o", "nodir/m.skflow"], ["does not exist"]),
        (["fit", "train.csv", "-o", "m.skflow", "--columns", "a,zz"], ["'zz'", "--columns"]),
        (["fit", "train.csv", "-o", "m.skflow", "--max-epochs", "many"], ["--max-epochs", "INT", "'many'"]),
        (["fit", "train.csv", "-o", "m.skflow", "--max-epochs", "0"], ["--max-epochs", "range"]),
        (["fit", "train.csv", "-o", "m.skflow", "--flow", "maf"], ["--flow", "'maf'"]),
        (["fit", "train.csv", "-o", "m.skflow", "--hidden-units", "8,x"], ["--hidden-units"]),
        (["fit", "train.csv", "-o", "m.skflow", "--nonsense", "1"], ["unrecognized", "--nonsense"]),
        (["fit", "train.csv"], ["-o"]),
        (["score", "nomodel.skflow", "train.csv"], ["nomodel.skflow", "no such model file"]),
        (["score", "train.csv", "train.csv"], ["train.csv", "not a model"]),
        (["sample", "train.csv", "-n", "3"], ["not a model"]),
        (["sample", "MODEL", "-n", "0"], ["positive integer"]),
        (["score", "MODEL", "two_columns.csv"], ["'c'", "fitted on"]),
        (["score", "MODEL", "train.csv", "-o", "scores.xlsx"], ["unknown file type"]),
        (["frobnicate"], ["invalid choice", "frobnicate"]),
        (["fit", "train.csv", "-o", "m.skflow", "--sample-weight", "zz"], ["'zz'", "--sample-weight"]),
        (["fit", "negative_weight.csv", "-o", "m.skflow", "--sample-weight", "w"], ["'w'", "negative", "row 2"]),
        (["fit", "no_header.csv", "-o", "m.skflow"], ["no_header.csv", "header row"]),
        (["demo", "--out", "figure.xyz"], ["figure.xyz", "unsupported figure format"]),
        (["demo", "--out", "train.csv/plots/demo.png"], ["train.csv", "not a directory"]),
        (["fit", "blank.csv", "-o", "m.skflow"], ["blank.csv", "empty"]),
        (["fit", "train.csv", "-o", "m.skflow", "--columns", "a,b,a"], ["--columns", "'a'", "more than once"]),
        (["fit", "train.csv", "-o", "m.skflow", "--columns", ","], ["--columns", "names no column"]),
        (["fit", "repeated_header.csv", "-o", "m.skflow"], ["repeated_header.csv", "repeats", "'a'"]),
        (["score", "MODEL", "repeated_header.csv"], ["repeated_header.csv", "repeats", "'a'"]),
        (["fit", "text_weight.csv", "-o", "m.skflow", "--sample-weight", "w"], ["'w'", "non-numeric", "weight"]),
        (["fit", "holes_weight.csv", "-o", "m.skflow", "--sample-weight", "w"], ["'w'", "missing values", "row 2"]),
        (["fit", "zero_weight.csv", "-o", "m.skflow", "--sample-weight", "w"], ["'w'", "all zeros"]),
        (["fit", "train.csv", "-o", "m.skflow", "--sample-weight", "a", "--columns", "a,b"], ["'a'", "both"]),
    ],
)
def test_bad_input_is_one_line_on_stderr(args, fragments, model, workdir, skflow_in_process):
    (workdir / "empty.csv").write_text("")
    (workdir / "header_only.csv").write_text("a,b,c\n")
    (workdir / "text.csv").write_text("a,city\n1.0,Paris\n2.0,Lyon\n")
    (workdir / "holes.csv").write_text("a,b\n1.0,2.0\n3.0,\n5.0,6.0\n")
    (workdir / "two_columns.csv").write_text("a,b\n1.0,2.0\n3.0,4.0\n")
    (workdir / "negative_weight.csv").write_text("a,w\n1.0,1.0\n3.0,-1.0\n5.0,1.0\n")
    (workdir / "no_header.csv").write_text("1.0,2.0\n3.0,4.0\n1.0,2.0\n")
    (workdir / "blank.csv").write_text("\n  \n")
    (workdir / "repeated_header.csv").write_text("a,b,a,c\n1.0,2.0,3.0,4.0\n5.0,6.0,7.0,8.0\n")
    (workdir / "text_weight.csv").write_text("a,w\n1.0,1.0\n3.0,heavy\n5.0,1.0\n")
    (workdir / "holes_weight.csv").write_text("a,w\n1.0,1.0\n3.0,\n5.0,1.0\n")
    (workdir / "zero_weight.csv").write_text("a,w\n1.0,0\n3.0,0\n5.0,0\n")
    nullable = pd.DataFrame({"x": [1.0, 2.0, 3.0], "n": pd.array([1, 2, None], dtype="Int64")})
    nullable.to_parquet(workdir / "nullable.parquet")
    (workdir / "binary.parquet").write_bytes(b"\x00\x01 definitely not parquet \xff" * 10)
    result = skflow_in_process(*[str(model) if a == "MODEL" else a for a in args], cwd=workdir)
    assert_one_line_error(result, *fragments)
    assert result.returncode in (1, 2)
    assert not (workdir / "m.skflow").exists()


def test_bad_input_end_to_end(workdir, data):
    # The same handling as in-process above, in a fresh process through the `skflow` console script where it is
    # installed (pip install -e .), else python -m skflow: one subprocess keeps the suite fast.
    (workdir / "text.csv").write_text("a,city\n1.0,Paris\n2.0,Lyon\n")
    script = shutil.which("skflow", path=os.path.dirname(sys.executable)) or shutil.which("skflow")
    result = skflow("fit", "text.csv", "-o", "m.skflow", cwd=workdir, command=[script] if script else None)
    assert_one_line_error(result, "non-numeric", "'city'")


def test_help_shows_commands_parameters_and_examples(workdir, skflow_in_process):
    top = skflow_in_process("--help", cwd=workdir)
    assert top.returncode == 0
    for text in ("fit", "score", "sample", "demo", "examples:", "skflow fit data.csv -o model.skflow"):
        assert text in top.stdout
    fit = skflow_in_process("fit", "--help", cwd=workdir)
    assert fit.returncode == 0
    from skflow import FlowDensity

    # Every FlowDensity parameter is an option, with its docstring and its default.
    for name in FlowDensity().get_params():
        assert f"--{name.replace('_', '-')}" in fit.stdout
    assert "Number of coupling (or autoregressive) layers. [default: 5]" in " ".join(fit.stdout.split())
    assert "examples:" in fit.stdout
    no_command = skflow_in_process(cwd=workdir)
    assert no_command.returncode == 2 and "examples:" in no_command.stderr


def test_demo_quick_prints_a_table_and_saves_a_plot(workdir):
    result = skflow("demo", "--quick", "--out", "plots/demo.png", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    # The held-out table: a header naming the three models, then one row per dataset with three numbers,
    # exactly one of them marked best, and the best is the highest.
    top = next(i for i, line in enumerate(lines) if line.startswith("Held-out mean log-likelihood"))
    assert lines[top + 1].split()[-3:] == ["FlowDensity", "GaussianMixture", "KernelDensity"]
    rows = lines[top + 2 : top + 4]
    assert [row.split()[0] for row in rows] == ["two", "breast"]
    for row in rows:
        cells = row.split()[-3:]
        values = [float(cell.rstrip("*")) for cell in cells]
        assert [cell.endswith("*") for cell in cells] == [v == max(values) for v in values]
    # The paired differences: FlowDensity's mean minus the better other model's, as in the table.
    paired = next(i for i, line in enumerate(lines) if line.startswith("FlowDensity minus the better"))
    for row, line in zip(rows, lines[paired + 1 : paired + 3], strict=True):
        flow, mixture, kde = (float(cell.rstrip("*")) for cell in row.split()[-3:])
        mean, error, rival = re.search(r"([+-]\d+\.\d+) \+- (\d+\.\d+)  \(against (\w+)\)$", line).groups()
        assert rival == ("GaussianMixture" if mixture >= kde else "KernelDensity")
        assert abs(float(mean) - (flow - max(mixture, kde))) <= 0.002 and float(error) > 0
    png = workdir / "plots" / "demo.png"  # the missing folder is created
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "plots/demo.png" in result.stdout


def test_console_script_entry_point_is_main():
    import importlib
    import re

    from skflow.cli.app import main

    target = re.search(r'^skflow = "([\w.]+):(\w+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M)
    assert target is not None
    assert getattr(importlib.import_module(target.group(1)), target.group(2)) is main


@pytest.fixture(scope="module")
def array_model(workdir, data) -> Path:
    """A model fitted in Python on an array, so without column names, saved as a file."""
    from skflow import FlowDensity

    est = FlowDensity(max_epochs=3, n_transforms=2, hidden_units=(8, 8), random_state=0).fit(data.to_numpy())
    assert getattr(est, "feature_names_in_", None) is None
    est.save(str(workdir / "array.skflow"))
    return workdir / "array.skflow"


def test_score_does_not_match_a_model_without_names_by_position_silently(array_model, data, workdir, skflow_in_process):
    # The file names its columns, in another order than the array the model saw: matched by position without a
    # word, c would be scored as a, a as b and b as c.
    data[["c", "a", "b"]].to_csv(workdir / "reordered.csv", index=False)
    refused = skflow_in_process("score", array_model, "reordered.csv", "-o", "refused.csv", cwd=workdir)
    assert_one_line_error(refused, "without column names", "--by-position", "refit")
    assert not (workdir / "refused.csv").exists()
    # --by-position is the explicit request: the file's columns, in file order, are the model's.
    args = ["score", array_model, "train.csv", "-o", "positional.csv", "--by-position"]
    accepted = skflow_in_process(*args, cwd=workdir)
    assert accepted.returncode == 0, accepted.stderr
    scores = pd.read_csv(workdir / "positional.csv")["log_density"]
    np.testing.assert_allclose(scores, load(array_model).score_samples(data.to_numpy()), rtol=1e-9)
    assert "columns taken by position: a, b, c" in accepted.stderr


def test_by_position_is_refused_where_it_does_not_apply(model, array_model, workdir, skflow_in_process):
    named = skflow_in_process("score", model, "train.csv", "--by-position", cwd=workdir)
    assert_one_line_error(named, "has column names", "drop --by-position")
    (workdir / "four_columns.csv").write_text("a,b,c,d\n1,2,3,4\n5,6,7,8\n")
    wider = skflow_in_process("score", array_model, "four_columns.csv", "--by-position", cwd=workdir)
    assert_one_line_error(wider, "4 columns", "fitted on 3")


@pytest.mark.parametrize("command", ["sample", "score"])
def test_a_reader_that_leaves_early_ends_the_command_quietly(command, model, data, workdir):
    # `skflow sample ... | head -1` with a real pipe: far more output than the pipe buffer holds (64 KiB), so the
    # command is still writing when its reader leaves.
    if command == "sample":
        args, header = ["sample", model, "-n", "100000"], "a,b,c"
    else:
        pd.concat([data] * 200).to_csv(workdir / "many.csv", index=False)
        args, header = ["score", model, "many.csv"], "log_density"
    assert_quiet_when_the_reader_leaves(args, header, workdir)


def assert_quiet_when_the_reader_leaves(args: list, header: str, cwd: Path) -> None:
    """``skflow ARGS | head -1`` with a real pipe: the header line, then a quiet exit with status 141."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("SKFLOW_DEBUG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "skflow", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert first.strip() == header, err
    assert err == ""  # neither "error: [Errno 32] Broken pipe" nor Python's "Exception ignored ..."
    assert process.returncode == 141  # what a shell reports for `yes` or `cat` whose reader left


@pytest.mark.parametrize(
    "output, fragment",
    [
        ("nodir/m.skflow", "does not exist"),
        ("outdir", "is a directory"),
        ("precious.csv/m.skflow", "not a directory"),
        ("precious.csv", "also an input"),
        ("-", "not to stdout"),
    ],
)
def test_fit_checks_the_output_path_before_training(output, fragment, data, workdir, skflow_in_process, monkeypatch):
    from skflow import FlowDensity

    (workdir / "outdir").mkdir(exist_ok=True)
    data.to_csv(workdir / "precious.csv", index=False)
    before = (workdir / "precious.csv").read_bytes()
    trained = []
    monkeypatch.setattr(FlowDensity, "fit", lambda self, *args, **kwargs: trained.append(True) or self)
    result = skflow_in_process("fit", "precious.csv", "-o", output, cwd=workdir)
    assert_one_line_error(result, fragment)
    assert trained == []  # refused before any training
    assert (workdir / "precious.csv").read_bytes() == before  # the data survives


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write to read-only folders")
def test_fit_refuses_a_read_only_folder_before_training(data, tmp_path, skflow_in_process, monkeypatch):
    from skflow import FlowDensity

    data.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o500)
    trained = []
    monkeypatch.setattr(FlowDensity, "fit", lambda self, *args, **kwargs: trained.append(True) or self)
    try:
        result = skflow_in_process("fit", "train.csv", "-o", "locked/m.skflow", cwd=tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o700)
    assert_one_line_error(result, "locked/m.skflow", "cannot be written")
    assert trained == []
