"""FlowDensity: correctness of its numbers and its scikit-learn integration."""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import loguniform, multivariate_normal
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflow import FlowDensity

from .conftest import from_older_state

FAST = dict(n_transforms=2, hidden_units=(16,), max_epochs=15, random_state=0)
# For tests of the plumbing (searches, seeds, units), not of the fit: fewer epochs (and rows for searches).
QUICK = {**FAST, "max_epochs": 4}
SEARCH_ROWS = 300


@pytest.fixture(scope="module")
def moons():
    X, _ = make_moons(600, noise=0.1, random_state=0)
    return X * [3.0, 0.5] + [10.0, -4.0]  # not standardized: the estimator must handle units


@pytest.fixture(scope="module")
def fitted(moons):
    return FlowDensity(**FAST).fit(moons)


def test_correlated_gaussian_matches_true_log_likelihood():
    rng = np.random.RandomState(0)
    A = rng.normal(size=(5, 5))
    cov = A @ A.T + 0.5 * np.eye(5)
    mean = rng.normal(size=5) * 3
    truth = multivariate_normal(mean, cov)
    X_train = truth.rvs(5000, random_state=1)
    X_test = truth.rvs(5000, random_state=2)
    est = FlowDensity(n_transforms=3, max_epochs=60, n_iter_no_change=5, random_state=0).fit(X_train)
    gap = truth.logpdf(X_test).mean() - est.score(X_test)
    assert abs(gap) < 0.02, gap


def test_density_integrates_to_one_in_user_units(fitted, moons):
    lo, hi = moons.min(0) - 3 * moons.std(0), moons.max(0) + 3 * moons.std(0)
    gx, gy = np.linspace(lo[0], hi[0], 400), np.linspace(lo[1], hi[1], 400)
    grid = np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
    cell = (gx[1] - gx[0]) * (gy[1] - gy[0])
    mass = np.exp(fitted.score_samples(grid)).sum() * cell
    assert abs(mass - 1.0) < 0.02, mass


def test_heavy_tailed_column_goes_through_asinh_and_still_integrates_to_one():
    """A column beyond tail_bound gets the asinh layer; the density, its log-det included, still has mass 1."""
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_t(1.5, 800), rng.normal(size=800)])
    est = FlowDensity(n_transforms=2, hidden_units=(16,), max_epochs=20, random_state=0).fit(X)
    np.testing.assert_array_equal(est.asinh_columns_, [True, False])
    # Dense near the bulk, reaching +-4000 in the tail: sinh of a uniform grid.
    gx, gy = np.sinh(np.linspace(-9.0, 9.0, 1501)), np.linspace(-7.0, 7.0, 301)
    grid = np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
    density = np.exp(est.score_samples(grid)).reshape(gx.size, gy.size)
    mass = np.trapezoid(np.trapezoid(density, gy, axis=1), gx)
    assert abs(mass - 1.0) < 0.02, mass
    Z = est.transform(X[:50])
    np.testing.assert_allclose(est.inverse_transform(Z), X[:50], rtol=1e-6, atol=1e-8)


def test_comparable_with_gaussian_mixture_units(moons):
    """Scaling X by c shifts every log-density by -d log c, for us as for GaussianMixture."""
    est = FlowDensity(**QUICK).fit(moons)
    scaled = FlowDensity(**QUICK).fit(moons * 10.0)
    np.testing.assert_allclose(
        scaled.score_samples(moons * 10.0), est.score_samples(moons) - 2 * np.log(10.0), atol=1e-6
    )
    gmm = GaussianMixture(8, random_state=0).fit(moons)
    assert abs(est.score(moons) - gmm.score(moons)) < 1.0


def test_transform_round_trip_and_latent_is_gaussianized(fitted, moons):
    Z = fitted.transform(moons)
    np.testing.assert_allclose(fitted.inverse_transform(Z), moons, rtol=1e-6, atol=1e-8)
    assert Z.dtype == np.float64 and Z.shape == moons.shape


def test_transform_preserves_float32_and_computes_in_float64(fitted, moons):
    """float32 in, float32 out (no doubled memory), equal to the float64 result rounded once."""
    X32 = moons.astype(np.float32)
    Z32 = fitted.transform(X32)
    assert Z32.dtype == np.float32
    np.testing.assert_array_equal(Z32, fitted.transform(X32.astype(np.float64)).astype(np.float32))
    back = fitted.inverse_transform(Z32)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, X32, rtol=1e-5, atol=1e-5)
    assert fitted.score_samples(X32).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inverse_transform_of_far_latents_stays_strictly_inside_bounds(dtype):
    """Rounding of the logistic tails must not land a point on a bound (where the density is undefined)."""
    X = np.random.default_rng(0).beta(0.5, 0.5, size=(300, 2))
    est = FlowDensity(n_transforms=1, hidden_units=(8,), max_epochs=2, bounds=(0, 1), random_state=0).fit(X)
    Z = np.array([[40.0, -40.0], [6.0, -6.0], [0.0, 0.0]], dtype=dtype)
    back = est.inverse_transform(Z)
    assert back.dtype == dtype and ((back > 0) & (back < 1)).all()
    assert np.isfinite(est.score_samples(back)).all()
    est.transform(back)  # defined: no ValueError about the bounds


def test_sample_shape_reproducibility_and_location(fitted, moons):
    a = fitted.sample(2000, random_state=1)
    b = fitted.sample(2000, random_state=1)
    assert a.shape == (2000, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fitted.sample(2000, random_state=2))
    np.testing.assert_allclose(a.mean(0), moons.mean(0), atol=0.3 * moons.std(0).max())


def test_same_seed_reproduces_scores_bit_for_bit(moons):
    a = FlowDensity(**QUICK).fit(moons).score_samples(moons)
    b = FlowDensity(**QUICK).fit(moons).score_samples(moons)
    np.testing.assert_array_equal(a, b)


def test_score_is_mean_log_likelihood(fitted, moons):
    assert fitted.score(moons) == pytest.approx(fitted.score_samples(moons).mean())


def test_fitted_attributes(fitted, moons):
    assert fitted.n_features_in_ == 2
    assert fitted.n_iter_ == len(fitted.loss_curve_) == len(fitted.validation_scores_)
    # 0: no epoch beat the starting mixture clearly enough on the validation rows (it is kept).
    assert 0 <= fitted.best_epoch_ <= fitted.n_iter_
    np.testing.assert_allclose(fitted.location_, moons.mean(0))
    np.testing.assert_allclose(fitted.scale_, moons.std(0))
    assert str(fitted.device_) == "cpu"


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads), (None, None)])
def test_pickle_and_joblib_round_trips(fitted, moons, tmp_path, dump, load):
    if dump is None:
        path = tmp_path / "model.joblib"
        joblib.dump(fitted, path)
        restored = joblib.load(path)
    else:
        restored = load(dump(fitted))
    np.testing.assert_array_equal(restored.score_samples(moons), fitted.score_samples(moons))
    np.testing.assert_array_equal(restored.sample(5, random_state=0), fitted.sample(5, random_state=0))


def test_clone_is_unfitted_with_same_params(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "flow_")


def test_pipeline_score_samples_and_score(moons):
    pipe = make_pipeline(StandardScaler(), FlowDensity(**FAST)).fit(moons)
    assert pipe.score_samples(moons).shape == (len(moons),)
    assert np.isfinite(pipe.score(moons))


def test_grid_search_with_default_scorer_in_parallel(moons):
    moons = moons[:SEARCH_ROWS]
    search = GridSearchCV(FlowDensity(**QUICK), {"flow": ["spline", "affine"]}, cv=2, n_jobs=2).fit(moons)
    assert search.best_params_["flow"] in {"spline", "affine"}
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert search.best_score_ == pytest.approx(search.cv_results_["mean_test_score"].max())
    assert np.isfinite(best.score(moons))


def test_randomized_search(moons):
    space = {"n_bins": [4, 8], "learning_rate": loguniform(1e-3, 1e-2)}
    search = RandomizedSearchCV(FlowDensity(**QUICK), space, n_iter=2, cv=2, random_state=0)
    search.fit(moons[:SEARCH_ROWS])
    assert np.isfinite(search.best_score_)


def test_pandas_in_and_out(moons):
    df = pd.DataFrame(moons, columns=["width", "height"])
    est = FlowDensity(**FAST).fit(df)
    np.testing.assert_array_equal(est.feature_names_in_, ["width", "height"])
    est.set_output(transform="pandas")
    Z = est.transform(df)
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == ["flowdensity0", "flowdensity1"]
    np.testing.assert_array_equal(est.score_samples(df[["width", "height"]]), est.score_samples(moons))


def test_sample_weight_zero_equals_dropping_heavy_outliers(moons):
    X = np.vstack([moons, np.full((60, 2), 100.0)])
    weights = np.r_[np.ones(len(moons)), np.zeros(60)]
    est = FlowDensity(**FAST).fit(X, sample_weight=weights)
    assert est.score_samples(np.full((1, 2), 100.0))[0] < est.score_samples(moons).min()


def test_one_feature():
    X = np.random.RandomState(0).exponential(size=(500, 1))
    est = FlowDensity(**FAST).fit(X)
    grid = np.linspace(-5, 15, 4001).reshape(-1, 1)
    mass = np.exp(est.score_samples(grid)).sum() * (grid[1, 0] - grid[0, 0])
    assert abs(mass - 1) < 0.02


def test_tiny_data_keeps_the_mixture_start():
    """16 rows leave one validation row: a trained epoch must not replace the start on it alone."""
    from sklearn.datasets import load_linnerud

    data = load_linnerud()
    X = np.hstack([data.data, data.target]).astype(float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = FlowDensity(random_state=0).fit(X[:16])
    assert not [w for w in caught if "no epoch improved" in str(w.message)]  # a designed outcome: no warning
    assert est.best_epoch_ == 0 and est.n_components_ == 1
    # The start is one full Gaussian whose covariance is shrunk towards the identity (a variance floor of 0.3
    # in standardized units): below the unshrunk maximum-likelihood Gaussian on its 16 training rows, by
    # less than a nat, and ahead of it on the 4 rows left out.
    gaussian = GaussianMixture(1, reg_covar=1e-6).fit(X[:16])
    assert gaussian.score(X[:16]) - 1 < est.score(X[:16]) < gaussian.score(X[:16])
    assert est.score(X[16:]) > gaussian.score(X[16:]) + 1


@pytest.mark.parametrize(
    "n_samples, expected",
    [(300, 100), (4999, 100), (8000, 345), (20000, 141), (200000, 100)],
)
def test_auto_max_epochs_gives_mid_sized_data_ten_thousand_steps(n_samples, expected):
    """From 5,000 rows "auto" plans at least 10,000 optimizer steps (and never fewer than 100 epochs)."""
    from skflow._auto_parameters import auto_batch_size, resolve_max_epochs

    batch = auto_batch_size(n_samples)
    epochs = resolve_max_epochs("auto", n_samples, batch, 0.1)
    assert epochs == expected
    steps_per_epoch = -(-(n_samples - int(0.1 * n_samples)) // batch)
    if n_samples >= 5000:
        assert epochs * steps_per_epoch >= 10_000 > (epochs - 1) * steps_per_epoch or epochs == 100
    assert resolve_max_epochs(7, n_samples, batch, 0.1) == 7


@pytest.mark.parametrize("n_features, kind, epochs", [(7, "autoregressive", 690), (2, "spline", 345)])
def test_autoregressive_layers_get_twenty_thousand_steps(n_features, kind, epochs):
    """flow="auto" on 8,000 rows: autoregressive layers plan 20,000 steps, coupling layers 10,000."""
    from types import SimpleNamespace

    from skflow._auto_parameters import resolve_training_sizes

    estimator = SimpleNamespace(
        flow="auto", n_bins="auto", hidden_units="auto", batch_size="auto", max_epochs="auto", validation_fraction=0.1
    )
    resolve_training_sizes(estimator, 8000, n_features)
    assert (estimator.flow_kind_, estimator.max_epochs_) == (kind, epochs)
    assert estimator.n_bins_ == (16 if n_features <= 2 else 8)


@pytest.mark.parametrize(
    "n_samples, n_features, expected",
    [
        (4999, 7, "spline"),
        (5000, 3, "autoregressive"),
        (25_000, 32, "autoregressive"),
        (10_000, 2, "spline"),
        (10_000, 33, "spline"),
    ],
)
def test_auto_flow_is_autoregressive_from_five_thousand_rows_and_three_to_32_features(n_samples, n_features, expected):
    from skflow._auto_parameters import resolve_flow_kind

    assert resolve_flow_kind("auto", n_samples, n_features) == expected
    for kind in ("spline", "affine", "autoregressive"):
        assert resolve_flow_kind(kind, n_samples, n_features) == kind


def test_auto_flow_builds_the_kind_it_resolves_and_old_states_keep_theirs():
    from skflow._core.autoregressive import AutoregressiveSpline
    from skflow._core.couplings import SplineCoupling

    rng = np.random.default_rng(0)
    small = FlowDensity(n_transforms=1, hidden_units=(8,), max_epochs=1, random_state=0).fit(rng.normal(size=(300, 3)))
    assert FlowDensity().flow == "auto" and small.flow_kind_ == "spline"
    assert any(isinstance(t, SplineCoupling) for t in small.flow_.transforms)
    large = FlowDensity(n_transforms=1, hidden_units=(8,), max_epochs=1, base="normal", random_state=0)
    large.fit(rng.normal(size=(5000, 3)))
    assert large.flow_kind_ == "autoregressive"
    assert any(isinstance(t, AutoregressiveSpline) for t in large.flow_.transforms)
    # A model pickled before flow="auto" has no flow_kind_: its flow's config says which kind it is
    # (not the flow parameter, which set_params may have changed since).
    restored = from_older_state(small, ("flow_kind_",), flow="affine")
    assert restored.flow_kind_ == "spline"
    X_new = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(restored.score_samples(X_new), small.score_samples(X_new))


@pytest.mark.parametrize("n_features, expected", [(1, 16), (2, 16), (3, 8), (40, 8)])
def test_auto_bins_are_sixteen_for_one_or_two_features_else_eight(n_features, expected):
    from skflow._auto_parameters import resolve_n_bins

    assert resolve_n_bins("auto", n_features) == expected
    assert resolve_n_bins(5, n_features) == 5


def test_auto_bins_build_the_splines_they_resolve_and_old_states_keep_theirs():
    X = np.random.default_rng(0).normal(size=(300, 2))
    fitted = FlowDensity(n_transforms=1, hidden_units=(8,), max_epochs=1, base="normal", random_state=0).fit(X)
    assert FlowDensity().n_bins == "auto" and fitted.n_bins_ == 16
    spline = fitted.flow_.transforms[-1]
    assert spline.params_per_feature == 3 * 16 - 1
    explicit = FlowDensity(n_bins=5, n_transforms=1, hidden_units=(8,), max_epochs=1, random_state=0).fit(X)
    assert explicit.n_bins_ == 5
    three = FlowDensity(n_transforms=1, hidden_units=(8,), max_epochs=1, base="normal", random_state=0)
    assert three.fit(np.c_[X, X[:, 0] * X[:, 1]]).n_bins_ == 8
    assert three.flow_.transforms[-1].params_per_feature == 3 * 8 - 1
    streamed = FlowDensity(n_transforms=1, hidden_units=(8,), base="normal", random_state=0).partial_fit(X)
    assert streamed.n_bins_ == 16 and streamed.flow_.config["n_bins"] == 16
    # A model pickled before n_bins="auto" has no n_bins_: its flow's config holds the bins.
    restored = from_older_state(explicit, ("n_bins_",), n_bins=12)
    assert restored.n_bins_ == 5
    np.testing.assert_array_equal(restored.score_samples(X[:5]), explicit.score_samples(X[:5]))


def test_max_epochs_is_resolved_and_limits_training():
    X = np.random.default_rng(0).normal(size=(200, 2))
    est = FlowDensity(n_transforms=1, hidden_units=(8,), max_epochs=3, n_iter_no_change=10, random_state=0).fit(X)
    assert est.max_epochs_ == 3 and est.n_iter_ <= 3
    assert FlowDensity().max_epochs == "auto"
