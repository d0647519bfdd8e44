"""The command line's regressor, end to end: ``skflow fit --target``, ``skflow score`` and ``skflow predict``."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import numpy as np
import pytest

from skflow import FlowDensity, FlowRegressor

from . import test_cli
from .test_cli import FAST, assert_one_line_error, assert_quiet_when_the_reader_leaves, skflow

skflow_in_process = test_cli.skflow_in_process  # the fixture: main() called in this process

pd = pytest.importorskip("pandas")

PYTHON_FAST = dict(max_epochs=3, n_transforms=2, hidden_units=(8, 8), random_state=0)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_regression")


@pytest.fixture(scope="module")
def houses(workdir) -> pd.DataFrame:
    """Price grows with area and rooms, with a spread that grows with area; w is a weight, id a label."""
    rng = np.random.default_rng(0)
    area, rooms = rng.uniform(50, 200, 150), rng.integers(1, 6, 150).astype(float)
    price = 2.0 * area + 10.0 * rooms + (5.0 + 0.1 * area) * rng.normal(size=150)
    frame = pd.DataFrame({"area": area, "rooms": rooms, "price": price, "tax": 0.01 * price + rng.normal(size=150)})
    frame.to_csv(workdir / "houses.csv", index=False)
    return frame


@pytest.fixture(scope="module")
def model(workdir, houses) -> Path:
    result = skflow("fit", "houses.csv", "--target", "price", "-o", "price.skflow", *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "FlowRegressor epoch" in result.stderr and "FlowDensity" not in result.stderr
    assert "fitted FlowRegressor of price given 3 feature column(s) on 150 rows" in result.stderr
    return workdir / "price.skflow"


def test_fit_with_a_target_is_the_python_fit_of_the_other_columns(model, houses):
    reg = FlowRegressor.load(str(model))
    assert list(reg.feature_names_in_) == ["area", "rooms", "tax"] and list(reg.target_names_in_) == ["price"]
    X, y = houses.drop(columns="price"), houses["price"]
    reference = FlowRegressor(**PYTHON_FAST).fit(X, y)
    np.testing.assert_allclose(reg.score_samples(X, y), reference.score_samples(X, y), rtol=1e-6)


def test_score_is_the_conditional_log_density_matched_by_name(model, houses, workdir, skflow_in_process):
    # Reordered columns and an extra one: matched by name, the extra ignored.
    houses[["price", "tax", "rooms", "area"]].assign(id=1).to_parquet(workdir / "shuffled.parquet")
    result = skflow_in_process("score", model, "shuffled.parquet", "-o", "scores.csv", cwd=workdir)
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(workdir / "scores.csv")
    assert list(scores.columns) == ["log_density"]
    reg = FlowRegressor.load(str(model))
    expected = reg.score_samples(houses[["area", "rooms", "tax"]], houses["price"])
    np.testing.assert_allclose(scores["log_density"], expected, rtol=1e-9)
    assert "conditional log p(price | features)" in result.stderr


def test_predict_writes_means_intervals_and_quantiles(model, houses, workdir, skflow_in_process):
    houses.drop(columns="price").to_csv(workdir / "new.csv", index=False)  # no target needed
    args = ["predict", model, "new.csv", "--coverage", "0.5", "--quantiles", "0.1,0.9"]
    result = skflow_in_process(*args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(StringIO(result.stdout))
    assert list(table.columns) == ["price_mean", "price_lower", "price_upper", "price_q0.1", "price_q0.9"]
    reg, X = FlowRegressor.load(str(model)), houses[["area", "rooms", "tax"]]
    np.testing.assert_allclose(table["price_mean"], reg.predict(X), rtol=1e-9)
    np.testing.assert_allclose(table[["price_lower", "price_upper"]], reg.predict_interval(X, 0.5), rtol=1e-9)
    np.testing.assert_allclose(table[["price_q0.1", "price_q0.9"]], reg.predict_quantiles(X, [0.1, 0.9]), rtol=1e-9)
    # The 50% interval lies inside the 10%-90% range of the same conditional distribution.
    assert (table["price_q0.1"] < table["price_lower"]).all() and (table["price_upper"] < table["price_q0.9"]).all()
    default = skflow_in_process("predict", model, "new.csv", "-o", "predicted.parquet", cwd=workdir)
    assert default.returncode == 0, default.stderr
    interval = pd.read_parquet(workdir / "predicted.parquet")[["price_lower", "price_upper"]]
    np.testing.assert_allclose(interval, reg.predict_interval(X, 0.9), rtol=1e-9)  # --coverage defaults to 0.9


def test_a_model_saved_with_pandas_output_predicts_and_scores_as_any_other(model, houses, workdir, skflow_in_process):
    FlowRegressor.load(str(model)).set_output(transform="pandas").save(str(workdir / "pandas.skflow"))
    houses.drop(columns="price").to_csv(workdir / "new.csv", index=False)
    for command, files in (("predict", ["new.csv"]), ("score", ["houses.csv"])):
        plain = skflow_in_process(command, model, *files, cwd=workdir)
        configured = skflow_in_process(command, workdir / "pandas.skflow", *files, cwd=workdir)
        assert configured.returncode == 0, configured.stderr
        assert configured.stdout == plain.stdout


def test_several_targets_with_columns_and_a_weight(houses, workdir, skflow_in_process):
    houses.assign(w=np.linspace(0.5, 1.5, len(houses))).to_csv(workdir / "weighted.csv", index=False)
    args = ["--target", "price,tax", "--columns", "area", "--sample-weight", "w", "--verbose", "0", "--n-flows", "2"]
    args += FAST
    result = skflow_in_process("fit", "weighted.csv", "-o", "joint.skflow", *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    reg = FlowRegressor.load(str(workdir / "joint.skflow"))
    assert list(reg.feature_names_in_) == ["area"] and list(reg.target_names_in_) == ["price", "tax"]
    weights = np.linspace(0.5, 1.5, len(houses))
    assert len(reg.ensemble_) == 1
    reference = FlowRegressor(**{**PYTHON_FAST, "verbose": 0, "n_flows": 2})
    reference.fit(houses[["area"]], houses[["price", "tax"]], sample_weight=weights)
    np.testing.assert_allclose(
        reg.score_samples(houses[["area"]], houses[["price", "tax"]]),
        reference.score_samples(houses[["area"]], houses[["price", "tax"]]),
        rtol=1e-6,
    )
    predicted = skflow_in_process("predict", workdir / "joint.skflow", "weighted.csv", cwd=workdir)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.splitlines()[0] == "price_mean,tax_mean"  # several targets: their means only
    refused = skflow_in_process("predict", workdir / "joint.skflow", "weighted.csv", "--quantiles", "0.5", cwd=workdir)
    assert_one_line_error(refused, "2 targets", "one target only")


@pytest.fixture(scope="module")
def density_model(workdir, houses) -> Path:
    FlowDensity(**PYTHON_FAST).fit(houses).save(str(workdir / "density.skflow"))
    return workdir / "density.skflow"


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["fit", "houses.csv", "-o", "m.skflow", "--target", "cost"], ["'cost'", "--target", "'price'"]),
        (["fit", "houses.csv", "-o", "m.skflow", "--target", "price", "--columns", "area,price"], ["'price'", "both"]),
        (["fit", "houses.csv", "-o", "m.skflow", "--target", "price", "--sample-weight", "price"], ["'price'", "both"]),
        (["fit", "houses.csv", "-o", "m.skflow", "--target", ","], ["--target", "names no column"]),
        (["fit", "houses.csv", "-o", "m.skflow", "--target", "price", "--base", "mixture"], ["base", "linear"]),
        (["fit", "houses.csv", "-o", "m.skflow", "--base", "linear"], ["base", "mixture"]),
        (["fit", "houses.csv", "-o", "m.skflow", "--n-flows", "2"], ["--n-flows", "FlowRegressor", "--target"]),
        (["fit", "labels.csv", "-o", "m.skflow", "--target", "label"], ["'label'", "'cheap'", "--target"]),
        (["fit", "holes.csv", "-o", "m.skflow", "--target", "price"], ["'price'", "missing values", "row 2"]),
        (["fit", "only_target.csv", "-o", "m.skflow", "--target", "price"], ["no feature columns", "'price'"]),
        (["fit", "houses.csv", "-o", "m.skflow", "--target", "price", "--max-epochs", "0"], ["--max-epochs", "range"]),
        (["score", "MODEL", "features_only.csv"], ["'price'", "targets", "skflow predict"]),
        (["score", "MODEL", "houses.csv", "--by-position"], ["by name", "drop --by-position"]),
        (["score", "MODEL", "holes.csv"], ["'price'", "missing values"]),
        (["predict", "MODEL", "only_target.csv"], ["'area'", "features"]),
        (["predict", "DENSITY", "houses.csv"], ["FlowDensity", "--target"]),
        (["predict", "MODEL", "houses.csv", "--coverage", "1.5"], ["--coverage", "between 0 and 1"]),
        (["predict", "MODEL", "houses.csv", "--quantiles", "0.5,1"], ["--quantiles", "between 0 and 1"]),
        (["predict", "MODEL", "houses.csv", "--quantiles", "half"], ["--quantiles", "'half'"]),
        (["predict", "MODEL", "houses.csv", "-o", "houses.csv"], ["also an input"]),
        (["sample", "MODEL", "-n", "5"], ["FlowRegressor", "features", "skflow predict"]),
    ],
)
def test_bad_input_is_one_line_on_stderr(args, fragments, model, density_model, workdir, skflow_in_process):
    (workdir / "labels.csv").write_text("area,label\n1.0,cheap\n2.0,dear\n3.0,cheap\n")
    (workdir / "holes.csv").write_text("area,rooms,tax,price\n1.0,1,1.0,2.0\n3.0,2,1.0,\n5.0,3,1.0,6.0\n")
    (workdir / "only_target.csv").write_text("price\n1.0\n2.0\n3.0\n")
    (workdir / "features_only.csv").write_text("area,rooms,tax\n100.0,2,1.0\n120.0,3,1.0\n")
    before = (workdir / "houses.csv").read_bytes()
    swap = {"MODEL": str(model), "DENSITY": str(density_model)}
    result = skflow_in_process(*[swap.get(a, a) for a in args], cwd=workdir)
    assert_one_line_error(result, *fragments)
    assert result.returncode in (1, 2)
    assert not (workdir / "m.skflow").exists()
    assert (workdir / "houses.csv").read_bytes() == before


def test_help_documents_the_regressor(workdir, skflow_in_process):
    top = skflow_in_process("--help", cwd=workdir)
    assert "predict" in top.stdout and "--target price" in top.stdout
    fit = skflow_in_process("fit", "--help", cwd=workdir)
    assert "--target COLUMN[,...]" in fit.stdout and "FlowRegressor" in fit.stdout
    # --n-bins differs: "auto" for FlowDensity, an int defaulting to 8 with --target; the help says both.
    fit_text = " ".join(fit.stdout.split())
    assert "With --target: Spline bins per target; 8 by default" in fit_text and "its --n-bins to 8" in fit_text
    predict = skflow_in_process("predict", "--help", cwd=workdir)
    assert predict.returncode == 0 and "--coverage" in predict.stdout and "--quantiles" in predict.stdout


def test_predict_to_a_reader_that_leaves_early_ends_quietly(model, houses, workdir):
    pd.concat([houses] * 12).to_csv(workdir / "many.csv", index=False)  # 1,800 rows: ~100 kB, beyond a pipe's 64
    header = "price_mean,price_lower,price_upper"
    assert_quiet_when_the_reader_leaves(["predict", model, "many.csv"], header, workdir)
