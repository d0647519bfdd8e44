"""FlowOutlierDetector: scikit-learn's outlier-detector contract and detection quality."""

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV

from skflow import FlowDensity, FlowOutlierDetector

from .conftest import fast_flow


def fast_density(**params):
    return fast_flow(**{"max_epochs": 5, **params})


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=300, centers=[[0, 0], [4, 4]], cluster_std=[1.0, 0.5], random_state=0)
    return X * [2.0, 1.0] + [100.0, -5.0]  # not standardized: the detector must handle units


@pytest.fixture(scope="module")
def fitted(blobs):
    return FlowOutlierDetector(density=fast_density(max_epochs=15)).fit(blobs)


def test_api_contract(fitted, blobs):
    X_new = np.vstack([blobs[:50], blobs[:5] + [60.0, 30.0]])
    labels, decision, scores = fitted.predict(X_new), fitted.decision_function(X_new), fitted.score_samples(X_new)
    assert labels.shape == decision.shape == scores.shape == (55,)
    assert labels.dtype.kind == "i" and set(np.unique(labels)) <= {-1, 1}
    assert decision.dtype == scores.dtype == np.float64
    np.testing.assert_allclose(decision, scores - fitted.offset_)
    np.testing.assert_array_equal(labels, np.where(decision < 0, -1, 1))
    np.testing.assert_allclose(scores, fitted.density_.score_samples(X_new))  # the log-density itself
    assert (labels[-5:] == -1).all() and (decision[-5:] < 0).all()  # far-away points are outliers
    assert isinstance(fitted.offset_, float) and fitted.score(X_new) == pytest.approx(scores.mean())


@pytest.mark.parametrize("contamination", [0.01, 0.1, 0.25, 0.5])
def test_contamination_is_the_training_outlier_fraction(blobs, contamination):
    detector = FlowOutlierDetector(density=fast_density(max_epochs=10), contamination=contamination)
    n_outliers = int((detector.fit_predict(blobs) == -1).sum())
    assert abs(n_outliers - contamination * len(blobs)) <= 1


def test_auto_is_tukeys_fence_on_training_log_densities(fitted, blobs):
    q1, q3 = np.percentile(fitted.score_samples(blobs), [25, 75])
    assert fitted.offset_ == pytest.approx(q1 - 1.5 * (q3 - q1))
    assert 0 < (fitted.predict(blobs) == -1).mean() < 0.1


@pytest.mark.parametrize("contamination", [0, 0.0, -0.1, 0.5001, 1.0, "high", None])
def test_bad_contamination_raises_clear_error(blobs, contamination):
    with pytest.raises(ValueError, match="contamination"):
        FlowOutlierDetector(density=fast_density(), contamination=contamination).fit(blobs)


def test_bad_density_raises_clear_error(blobs):
    with pytest.raises((TypeError, ValueError), match="density"):
        FlowOutlierDetector(density="spline").fit(blobs)


def test_sample_weight_reaches_the_density(blobs):
    weights = np.r_[np.ones(150), np.full(150, 5.0)]
    detector = FlowOutlierDetector(density=fast_density(max_epochs=5)).fit(blobs, sample_weight=weights)
    reference = fast_density(max_epochs=5).fit(blobs, sample_weight=weights)
    unweighted = fast_density(max_epochs=5).fit(blobs)
    np.testing.assert_allclose(detector.score_samples(blobs), reference.score_samples(blobs))
    assert not np.allclose(detector.score_samples(blobs), unweighted.score_samples(blobs))


def test_nested_parameters_are_tunable_by_grid_search(blobs):
    search = GridSearchCV(
        FlowOutlierDetector(density=fast_density(max_epochs=10)), {"density__n_transforms": [1, 2]}, cv=2
    )
    search.fit(blobs)  # scored by held-out mean log-likelihood: no labels needed
    assert search.best_params_["density__n_transforms"] in (1, 2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.density_.n_transforms == search.best_params_["density__n_transforms"]


def test_high_auc_on_easy_synthetic_task():
    """Inliers on a ring, outliers inside the hole and outside it: a Gaussian fit scores AUC 0.5 here."""
    rng = np.random.RandomState(0)

    def polar(radius):
        angle = rng.uniform(0, 2 * np.pi, len(radius))
        return np.c_[radius * np.cos(angle), radius * np.sin(angle)]

    X_train, X_inliers = polar(2 + 0.2 * rng.normal(size=500)), polar(2 + 0.2 * rng.normal(size=200))
    X_outliers = polar(np.r_[rng.uniform(0, 1, 50), rng.uniform(3, 4, 50)])
    density = fast_density(max_epochs=30, batch_size=64, learning_rate=1e-2, hidden_units=(16,))
    detector = FlowOutlierDetector(density=density).fit(X_train)
    scores = detector.score_samples(np.vstack([X_inliers, X_outliers]))
    auc = roc_auc_score(np.r_[np.zeros(200), np.ones(100)], -scores)
    assert auc > 0.95, auc


def test_anomaly_benchmark_quick_mode(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("anomaly", Path(__file__).parents[1] / "benchmarks" / "anomaly.py")
    anomaly = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "anomaly", anomaly)  # dataclasses look their module up there
    spec.loader.exec_module(anomaly)
    output = tmp_path / "anomaly.json"
    record = anomaly.main(["--quick", "--output", str(output)])
    assert json.loads(output.read_text())["mean_rank"] == record["mean_rank"]
    (rows,) = record["results"].values()
    for name in anomaly.DETECTORS:
        assert 0.5 < rows[name]["roc_auc"] <= 1 and 0 < rows[name]["average_precision"] <= 1, (name, rows[name])
    assert sum(record["mean_rank"]["roc_auc"].values()) == pytest.approx(sum(range(1, len(anomaly.DETECTORS) + 1)))
    assert rows["oracle"]["roc_auc"] >= max(rows[name]["roc_auc"] for name in anomaly.DETECTORS) - 0.05
    # --from-json renders a saved run's table without running anything: the committed results are in docs/anomaly.md.
    committed = Path(__file__).parents[1] / "benchmarks" / "results" / "anomaly.json"
    saved = json.loads(committed.read_text())["results"]
    assert anomaly.main(["--from-json", str(committed)])["results"] == saved
    page = (committed.parents[2] / "docs" / "anomaly.md").read_text()
    assert anomaly.ranked_table(saved)[1] in page


def test_random_state_seeds_an_unseeded_density_only(blobs):
    unseeded = fast_density(random_state=None)
    first = FlowOutlierDetector(density=unseeded, random_state=0).fit(blobs)
    second = FlowOutlierDetector(density=unseeded, random_state=0).fit(blobs)
    other = FlowOutlierDetector(density=unseeded, random_state=1).fit(blobs)
    np.testing.assert_array_equal(first.score_samples(blobs), second.score_samples(blobs))
    assert not np.array_equal(first.score_samples(blobs), other.score_samples(blobs))
    assert unseeded.random_state is None and isinstance(first.density_.random_state, int)
    seeded = FlowOutlierDetector(density=fast_density(random_state=7), random_state=0).fit(blobs)
    assert seeded.density_.random_state == 7  # the density's own seed wins


def test_string_column_is_named_in_the_error(blobs):
    df = pd.DataFrame({"a": blobs[:, 0], "city": ["x", "y"] * 150})
    with pytest.raises(ValueError, match=r"FlowOutlierDetector needs numeric features.*'city'"):
        FlowOutlierDetector(density=fast_density()).fit(df)
    fitted = FlowOutlierDetector(density=fast_density()).fit(df[["a"]].assign(b=blobs[:, 1]))
    with pytest.raises(ValueError, match=r"'b'"):
        fitted.score_samples(pd.DataFrame({"a": blobs[:5, 0], "b": ["u"] * 5}))


def test_save_load_round_trip_and_validation(fitted, blobs, tmp_path):
    path = tmp_path / "detector.skflow"
    fitted.save(path)
    restored = FlowOutlierDetector.load(path)
    assert type(restored) is FlowOutlierDetector and type(restored.density_) is FlowDensity
    np.testing.assert_array_equal(restored.decision_function(blobs), fitted.decision_function(blobs))
    np.testing.assert_array_equal(restored.predict(blobs), fitted.predict(blobs))
    assert restored.offset_ == fitted.offset_ and restored.get_params().keys() == fitted.get_params().keys()
    with pytest.raises(ValueError, match="holds a 'skflow.outlier.FlowOutlierDetector', not a 'skflow.density"):
        FlowDensity.load(path)

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(members["skflow.json"])
    metadata["state"]["__dict__"]["n_features_in_"] = 3
    with zipfile.ZipFile(tmp_path / "bad.skflow", "w") as archive:
        for name, content in {**members, "skflow.json": json.dumps(metadata).encode()}.items():
            archive.writestr(name, content)
    with pytest.raises(ValueError, match="density_ has n_features_in_ != 3"):
        FlowOutlierDetector.load(tmp_path / "bad.skflow")


def test_failed_save_leaves_the_existing_detector_file_intact(fitted, tmp_path, monkeypatch):
    path = tmp_path / "detector.skflow"
    fitted.save(path)
    before = path.read_bytes()
    monkeypatch.setattr(np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        fitted.save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["detector.skflow"]


def test_nested_parameters_need_an_explicit_density():
    """density=None has no density__ parameters: a clear ValueError, not AttributeError on None."""
    default = FlowOutlierDetector()
    with pytest.raises(ValueError, match=r"density__random_state.*density=None.*FlowDensity\(\)"):
        default.set_params(density__random_state=0)
    assert default.density is None  # nothing was changed
    with pytest.raises(ValueError, match="density=None"):
        default.set_params(contamination=0.1, density__n_transforms=1)
    assert default.contamination == "auto"  # checked before any parameter is set
    # With a density (already there, or passed in the same call) the nested parameters are set on it.
    detector = FlowOutlierDetector(density=FlowDensity()).set_params(density__random_state=0)
    assert detector.get_params()["density__random_state"] == 0
    detector = FlowOutlierDetector().set_params(density=FlowDensity(), density__n_transforms=1)
    assert detector.density.n_transforms == 1 and detector.get_params()["density__n_transforms"] == 1
    assert FlowOutlierDetector().set_params(density=None, contamination=0.2).contamination == 0.2


def test_grid_search_over_an_explicit_density_then_save_and_load(blobs, tmp_path):
    density = fast_density(max_epochs=2, n_transforms=1, device="cpu")
    search = GridSearchCV(
        FlowOutlierDetector(density=density), {"density__n_transforms": [1], "density__random_state": [0, 1]}, cv=2
    ).fit(blobs[:200])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.density_.random_state == search.best_params_["density__random_state"]
    assert density.random_state == 0  # the template is cloned, never set
    best.save(tmp_path / "best.skflow")
    restored = FlowOutlierDetector.load(tmp_path / "best.skflow")
    np.testing.assert_array_equal(restored.decision_function(blobs), best.decision_function(blobs))
    nested = {key: value for key, value in best.get_params().items() if key != "density"}
    assert {key: value for key, value in restored.get_params().items() if key != "density"} == nested


def test_a_failed_refit_leaves_the_fitted_detector_as_it_was():
    X = np.random.default_rng(0).normal(size=(150, 2))
    detector = FlowOutlierDetector(density=FlowDensity(n_transforms=1, hidden_units=(8,), max_epochs=2), random_state=0)
    detector.fit(X)
    before = detector.decision_function(X[:5])
    with pytest.raises(ValueError):
        detector.fit(np.c_[X, X[:, 0]], sample_weight=np.zeros(len(X)))
    assert detector.n_features_in_ == 2
    np.testing.assert_array_equal(detector.decision_function(X[:5]), before)
