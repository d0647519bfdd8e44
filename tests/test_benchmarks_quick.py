"""The density benchmark's quick mode runs end to end, so the harness cannot rot.

Nothing here asserts speed or which model wins: tiny sizes and two epochs only
check that every contender is fitted, scored and sampled on the same split and
that the report is complete and consistent.
"""

import json

import numpy as np
import pytest
from scipy import stats

from benchmarks import datasets
from benchmarks.density import MODELS, Settings, main, run, zuko_available


@pytest.fixture(scope="module")
def quick_report():
    settings = Settings.for_mode(quick=True)
    settings.max_rows = 120
    return run(["moons", "banana_2d"], list(MODELS), settings, log=lambda line: None)


def test_quick_report_covers_every_model_and_dataset(quick_report):
    expected = set(MODELS) if zuko_available() else set(MODELS) - {"zuko"}
    for name in ("moons", "banana_2d"):
        models = {r["model"] for r in quick_report["results"] if r["dataset"] == name}
        assert models == expected
    for r in quick_report["results"]:
        assert np.isfinite(r["test_log_likelihood"])
        assert r["fit_seconds"] > 0 and r["score_rows_per_second"] > 0 and r["sample_rows_per_second"] > 0
        assert r["model"] in quick_report["table"]
    json.dumps(quick_report)  # the report is written as JSON


def test_gap_is_true_optimum_minus_log_likelihood(quick_report):
    optimum = quick_report["true_optimum"]["banana_2d"]
    for r in quick_report["results"]:
        if r["dataset"] == "banana_2d":
            assert r["gap"] == pytest.approx(optimum - r["test_log_likelihood"])
            assert r["gap_per_dim"] == pytest.approx(r["gap"] / 2)
        else:
            assert r["gap"] is None


def test_traces_are_timed_fits_that_reach_the_kept_score(quick_report):
    """Per-epoch held-out scores on a clock that excludes their own evaluation; the kept weights are among them."""
    traced = [r for r in quick_report["results"] if r["model"] in ("flow", "zuko")]
    assert traced
    for r in traced:
        times, scores = zip(*r["trace"])
        assert all(a < b for a, b in zip(times, times[1:])) and times[-1] <= r["fit_seconds"]
        assert min(abs(np.array(scores) - r["test_log_likelihood"])) < 1e-3
    for row in quick_report["time_to_reach_zuko"]:
        flow = next(r for r in traced if r["dataset"] == row["dataset"] and r["model"] == "flow")
        assert (row["flow_seconds"] is None) == (flow["test_log_likelihood"] < row["zuko_test_loglik"])


def test_cli_writes_json(tmp_path):
    out = tmp_path / "density.json"
    main(["--quick", "--datasets", "wine", "--models", "flow", "gmm", "--out", str(out)])
    report = json.loads(out.read_text())
    assert {r["model"] for r in report["results"]} == {"flow", "gmm"}
    assert report["shapes"]["wine"][2] == 13


def test_merge_records_each_rows_source_and_zukos_time(tmp_path, quick_report):
    """Merged rows name the file they were measured in; the last file wins a row measured twice."""
    first, second = tmp_path / "old.json", tmp_path / "new.json"
    first.write_text(json.dumps(quick_report))
    newer = dict(quick_report, results=[dict(r, test_log_likelihood=1.0) for r in quick_report["results"][:1]])
    second.write_text(json.dumps(newer))
    merged = main(["--merge", str(first), str(second), "--note", "two runs"])
    sources = {(r["dataset"], r["model"]): (r["source"], r["test_log_likelihood"]) for r in merged["results"]}
    row = quick_report["results"][0]
    assert sources.pop((row["dataset"], row["model"])) == ("new.json", 1.0)
    assert {source for source, _ in sources.values()} == {"old.json"}
    assert merged["note"] == "two runs" and set(merged["sources"]) == {"old.json", "new.json"}
    zuko = [r for r in merged["results"] if r["model"] == "zuko"]
    assert [row["dataset"] for row in merged["zuko_time_to_score"]] == [r["dataset"] for r in zuko]
    for row, r in zip(merged["zuko_time_to_score"], zuko):
        assert row["zuko_seconds"] <= r["fit_seconds"]
    kept = main(["--merge", str(first), "--datasets", "banana_2d", "--models", "gmm", "kde"])
    assert {(r["dataset"], r["model"]) for r in kept["results"]} == {("banana_2d", "gmm"), ("banana_2d", "kde")}
    assert set(kept["shapes"]) == set(kept["true_optimum"]) == {"banana_2d"}


def test_gaussian_truth_has_the_analytic_entropy():
    """The closed-form density is right: E[log p] of a Gaussian is minus its entropy."""
    data = datasets.load("gaussian_16d", max_rows=20_000)
    X = np.vstack([data.X_train, data.X_test])
    cov = np.cov(X.T)
    entropy = stats.multivariate_normal(np.zeros(16), cov).entropy()
    assert np.mean(data.log_density(X)) == pytest.approx(-entropy, abs=0.05)


@pytest.mark.parametrize("name", ["banana_2d", "counts_3d", "funnel_4d"])
def test_synthetic_densities_are_normalized(name):
    """Importance sampling from a broad Gaussian proposal: the true density integrates to 1."""
    data = datasets.load(name, max_rows=2000)
    X = data.X_train
    d = X.shape[1]
    proposal = stats.multivariate_normal(X.mean(0), np.diag(X.var(0) * 4.0))
    Z = proposal.rvs(400_000, random_state=0).reshape(-1, d)
    mass = np.mean(np.exp(data.log_density(Z) - proposal.logpdf(Z)))
    assert mass == pytest.approx(1.0, abs=0.03)


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("nope")


def test_low_dimensional_experiment_writes_one_scored_line_per_set(tmp_path):
    from benchmarks.experiments import low_dimensional

    out = tmp_path / "low.jsonl"
    params = {"n_transforms": 1, "hidden_units": [8], "max_epochs": 2}
    low_dimensional.main(["--sets", "blocks_1d,square", "--params", json.dumps(params), "--out", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["dataset"], row["dims"], row["n_bins_"]) for row in rows] == [("blocks_1d", 1, 16), ("square", 2, 16)]
    assert all(np.isfinite(row["test_log_likelihood"]) and row["standard_error"] > 0 for row in rows)
    # The checkerboard is the README figure's: uniform on 8 of 16 unit squares, so on the dark ones.
    board = low_dimensional.SETS["checkerboard_0"]()
    assert board.shape == (1500, 2) and ((np.floor(board[:, 0]) + np.floor(board[:, 1])) % 2 == 0).all()
