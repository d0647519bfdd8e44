"""The Gaussian-mixture base: its density and sampling, in a flow, in FlowDensity, and persisted."""

import contextlib
import io
import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold

import skflow._fitting
from skflow import FlowDensity
from skflow._core import GaussianMixtureBase, build_flow, flow_from_config
from skflow._mixture_init import (
    Candidate,
    HeldOutScores,
    candidate_components,
    mixture_rows,
    scored_candidate,
    selection_splits,
)

from .conftest import autograd_log_abs_det, mass_on_grid, perturb_parameters


@contextlib.contextmanager
def kept_start_in_silence():
    """A fit that keeps its mixture start says so by ``best_epoch_ == 0``, not by a warning: it is the design."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert not [w for w in caught if "no epoch improved" in str(w.message)]


def random_mixture(k: int, d: int, seed: int = 0):
    rng = np.random.RandomState(seed)
    weights = rng.dirichlet(np.ones(k) * 2)
    means = rng.normal(scale=2.0, size=(k, d))
    factors = rng.normal(size=(k, d, d))
    covariances = factors @ np.swapaxes(factors, 1, 2) + 0.3 * np.eye(d)
    return weights, means, covariances


def closed_form_log_density(x, weights, means, covariances):
    densities = [w * stats.multivariate_normal(m, c).pdf(x) for w, m, c in zip(weights, means, covariances)]
    return np.log(np.sum(densities, axis=0))


@pytest.fixture
def mixture_base():
    weights, means, covariances = random_mixture(3, 3)
    precisions = GaussianMixtureBase.precisions_cholesky_from_covariances(covariances)
    return GaussianMixtureBase.from_mixture(weights, means, precisions, torch.float64), (weights, means, covariances)


def test_log_prob_is_the_closed_form_mixture_density(mixture_base, monkeypatch):
    base, (weights, means, covariances) = mixture_base
    x = np.random.RandomState(1).normal(scale=3.0, size=(200, 3))
    expected = closed_form_log_density(x, weights, means, covariances)
    np.testing.assert_allclose(base.log_prob(torch.from_numpy(x)).detach().numpy(), expected, rtol=0, atol=1e-10)
    # The memory-bounded path (one component at a time) for large batches gives the same numbers.
    monkeypatch.setattr(GaussianMixtureBase, "_BATCHED_ELEMENTS", 1)
    np.testing.assert_allclose(base.log_prob(torch.from_numpy(x)).detach().numpy(), expected, rtol=0, atol=1e-10)


def test_log_prob_stays_finite_far_from_every_component(mixture_base):
    base, _ = mixture_base
    far = torch.full((2, 3), 1e3, dtype=torch.float64)
    assert torch.isfinite(base.log_prob(far)).all()


def test_set_mixture_takes_sklearns_fit_and_matches_its_density():
    x = np.random.RandomState(0).normal(size=(300, 2)) * [1.0, 3.0]
    gmm = GaussianMixture(2, covariance_type="full", random_state=0).fit(x)
    base = GaussianMixtureBase.from_mixture(gmm.weights_, gmm.means_, gmm.precisions_cholesky_, torch.float64)
    np.testing.assert_allclose(
        base.log_prob(torch.from_numpy(x)).detach().numpy(), gmm.score_samples(x), rtol=0, atol=1e-10
    )
    with pytest.raises(ValueError, match="positive weights"):
        base.set_mixture(-gmm.weights_, gmm.means_, gmm.precisions_cholesky_)


def test_sampling_is_reproducible_from_the_generator_and_matches_the_moments(mixture_base):
    base, (weights, means, covariances) = mixture_base

    def draw(seed):
        generator = torch.Generator().manual_seed(seed)
        return base.sample(40_000, generator, torch.float64, torch.device("cpu")).numpy()

    torch.manual_seed(123)  # the global generator plays no part
    first = draw(5)
    torch.manual_seed(456)
    np.testing.assert_array_equal(first, draw(5))
    assert not np.array_equal(first, draw(6))
    mean = weights @ means
    centred = means - mean
    covariance = np.einsum("k,kij->ij", weights, covariances) + np.einsum("k,ki,kj->ij", weights, centred, centred)
    np.testing.assert_allclose(first.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(first.T), covariance, atol=0.15 * np.abs(covariance).max())


def flow_with_mixture(seed=0, degrees_of_freedom=None):
    weights, means, covariances = random_mixture(3, 2, seed)
    precisions = GaussianMixtureBase.precisions_cholesky_from_covariances(covariances)
    flow = build_flow(
        2,
        n_transforms=2,
        hidden_units=(8,),
        loc=[1.0, -2.0],
        scale=[2.0, 0.5],
        mixture=(weights, means, precisions),
        degrees_of_freedom=degrees_of_freedom,
    )
    perturb_parameters(flow.transforms, scale=0.3, seed=seed)
    perturb_parameters(flow.base, scale=0.3, seed=seed + 1)
    return flow.double()


def test_flow_density_with_a_mixture_base_integrates_to_one_on_a_grid():
    mass = mass_on_grid(flow_with_mixture(), np.linspace(-25.0, 27.0, 501), np.linspace(-9.0, 5.0, 501))
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_mixture_base_leaves_the_maps_and_log_dets_as_they_are():
    flow = flow_with_mixture(seed=3)
    x = torch.randn(20, 2, dtype=torch.float64) * 2
    z, log_det = flow(x)
    torch.testing.assert_close(log_det, autograd_log_abs_det(flow, x), atol=1e-8, rtol=1e-8)
    x_back, log_det_inverse = flow.inverse(z)
    torch.testing.assert_close(x_back, x, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(log_det_inverse, -log_det, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(flow.log_prob(x), flow.base.log_prob(z) + log_det)


def test_flow_config_rebuilds_the_mixture_base_and_old_configs_mean_the_standard_normal():
    flow = flow_with_mixture()
    assert flow.config["base"] == {"kind": "mixture", "n_components": 3}
    rebuilt = flow_from_config(flow.config).double()
    rebuilt.load_state_dict(flow.state_dict())
    x = torch.randn(10, 2, dtype=torch.float64)
    torch.testing.assert_close(rebuilt.log_prob(x), flow.log_prob(x), atol=0, rtol=0)
    old_config = {k: v for k, v in build_flow(2).config.items() if k != "base"}
    assert type(flow_from_config(old_config).base).__name__ == "StandardNormal"


def test_candidates_leave_enough_rows_per_component():
    assert candidate_components(20, 64) == [1]
    assert candidate_components(958, 64) == [1, 2, 3, 4, 6]  # digits' CV folds: 130 rows a component
    assert candidate_components(303, 30) == [1, 2, 3, 4]  # breast_cancer's
    assert candidate_components(8000, 2) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
    assert candidate_components(45, 2) == [1, 2, 3, 4]


def test_selection_finds_the_true_number_of_components_by_held_out_likelihood():
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 3.0]])
    x = np.concatenate([rng.normal(size=(200, 3)) + c for c in centres])
    chosen = scored_candidate(x, seed=0)[0]
    assert chosen.n_components == 3
    # Cross-validation, as a user would tune it: the chosen candidate scores best on held-out folds.
    held_out_score = HeldOutScores(x, list(KFold(3, shuffle=True, random_state=0).split(x)), seed=0)
    for other in (Candidate(2, "full", 1e-6), Candidate(6, "full", 1e-6), Candidate(3, "diag", 1e-1)):
        assert held_out_score(chosen) >= held_out_score(other)


# 567 elements: 7 rows of 9 x 9 outer products a chunk, so the 120 training rows end in a shorter chunk.
@pytest.mark.parametrize("chunk_elements", [2**22, 567], ids=["components-at-once", "components-in-chunks"])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
@pytest.mark.parametrize("n_components", [1, 3])
def test_the_selection_scores_candidates_as_gaussian_mixture_does(
    covariance_type, n_components, chunk_elements, monkeypatch
):
    from sklearn.mixture import GaussianMixture

    import skflow._mixture_em

    # Small chunks: the path that bounds the temporaries' memory on large data gives the same numbers.
    monkeypatch.setattr(skflow._mixture_em, "CHUNK_ELEMENTS", chunk_elements)

    rng = np.random.RandomState(0)
    # 9 columns: one component's full covariances come from centred rows, three components' from the
    # second moments (the cheaper formula for each), both to rounding of GaussianMixture's.
    x = np.concatenate([rng.normal(size=(60, 9)) @ rng.normal(size=(9, 9)) + 4 * rng.normal(size=9) for _ in range(3)])
    splits = list(KFold(3, shuffle=True, random_state=0).split(x))
    for reg_covar in (1e-6, 1e-1, 1.0):
        candidate = Candidate(n_components, covariance_type, reg_covar)
        expected = np.mean([candidate.estimator(0).fit(x[tr]).score(x[te]) for tr, te in splits])
        assert HeldOutScores(x, splits, seed=0)(candidate) == pytest.approx(expected, rel=1e-10)
    # A collapsed component scores -inf where GaussianMixture raises.
    collapsed = np.repeat(rng.normal(size=(4, 3)), 30, axis=0)
    with pytest.raises(ValueError):
        GaussianMixture(3, covariance_type=covariance_type, reg_covar=0.0, random_state=0).fit(collapsed)
    assert (
        HeldOutScores(collapsed, [(np.arange(120), np.arange(120))], seed=0)(Candidate(3, covariance_type, 0.0))
        == -np.inf
    )


def test_rows_far_from_the_origin_get_gaussian_mixtures_fit_not_a_cancelled_covariance():
    from sklearn.mixture import GaussianMixture

    from skflow._mixture_init import fit_candidate

    # standardize=False on data around 1e4 with a spread of 1e-3: E[x x^T] - mu mu^T would cancel to noise.
    rng = np.random.default_rng(0)
    x = (1e4 + 1e-3 * rng.normal(size=(600, 2)) + 2e-3 * rng.integers(0, 2, size=(600, 1))).astype(np.float32)
    x = x.astype(np.float64)
    for n_components in (1, 2):
        weights, means, precisions = fit_candidate(Candidate(n_components, "full", 1e-6), x, seed=0)
        gmm = GaussianMixture(n_components, reg_covar=1e-6, random_state=0).fit(x)
        np.testing.assert_allclose(weights, gmm.weights_, rtol=1e-6)
        np.testing.assert_allclose(precisions, gmm.precisions_cholesky_, rtol=1e-6)
    est = FlowDensity(standardize=False, n_transforms=1, hidden_units=(4,), max_epochs=1, random_state=0)
    with kept_start_in_silence():
        est.fit(x)
    assert est.best_epoch_ == 0 and np.isfinite(est.score(x))


def test_a_few_rows_in_several_dimensions_get_a_covariance_shrunk_beyond_a_floor_of_one_tenth():
    """linnerud's 16 training rows in 6 dimensions: a floor of 0.1 was the largest tried, and the held-out
    score kept rising with more shrinkage towards the identity (docs/benchmarks.md)."""
    from sklearn.datasets import load_linnerud
    from sklearn.preprocessing import StandardScaler

    data = load_linnerud()
    x = StandardScaler().fit_transform(np.hstack([data.data, data.target])[:16])
    chosen, score = scored_candidate(x, seed=0)
    assert chosen.reg_covar > 0.1
    held_out_score = HeldOutScores(x, selection_splits(len(x), seed=0), seed=0)
    assert score == pytest.approx(held_out_score(chosen))
    assert score > held_out_score(Candidate(1, "full", 0.1)) + 0.5


@pytest.mark.parametrize("n_rows", [2, 5])
def test_too_few_rows_to_cross_validate_get_one_wide_gaussian(n_rows):
    x = np.random.RandomState(0).normal(size=(n_rows, 2))
    assert scored_candidate(x, seed=0)[0] == Candidate(1, "full", 0.1)


def test_a_diagonal_mixture_becomes_the_same_density_in_the_base():
    rng = np.random.RandomState(1)
    x = np.concatenate([rng.normal(size=(100, 3)) * [1.0, 0.2, 3.0], rng.normal(size=(100, 3)) + 5])
    gmm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(x)
    factors = np.stack([np.diag(row) for row in gmm.precisions_cholesky_])  # the diagonal ones as matrices
    base = GaussianMixtureBase.from_mixture(gmm.weights_, gmm.means_, factors, torch.float64)
    with torch.no_grad():
        log_prob = base.log_prob(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(log_prob, gmm.score_samples(x), rtol=0, atol=1e-10)


def test_mixture_rows_leave_out_validation_resample_by_weight_and_add_the_noise():
    rows = torch.arange(100, dtype=torch.float32).reshape(50, 2)
    kept = mixture_rows(rows, np.ones(50), 0.2, seed=0, augment=None)
    assert kept.shape == (40, 2) and kept.dtype == np.float64
    weights = np.r_[np.zeros(25) + 1e-9, np.ones(25)]
    resampled = mixture_rows(rows, weights, 0.0, seed=0, augment=None)
    assert resampled.shape == (50, 2) and (resampled[:, 0] >= 50).all()
    noisy = mixture_rows(rows, np.ones(50), 0.0, seed=0, augment=lambda b, g: b + torch.rand(b.shape, generator=g))
    assert not np.array_equal(noisy, rows.numpy()) and np.abs(noisy - rows.numpy()).max() < 1


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.RandomState(0)
    return np.concatenate([rng.normal(size=(150, 2)) * [1.0, 0.3] + [0, 3], rng.normal(size=(150, 2)) + [4, 0]])


def test_untrained_fit_is_sklearns_mixture_of_the_standardized_data(blobs, monkeypatch):
    """Epoch 0 kept: score_samples is GaussianMixture's density of the standardized rows plus their log-det,
    the chosen mixture refitted on every training row (as GridSearchCV refits)."""
    calls = []
    original = skflow._fitting.fit_candidate

    def spy(candidate, x, seed):
        calls.append((candidate, x, seed))
        return original(candidate, x, seed)

    monkeypatch.setattr(skflow._fitting, "fit_candidate", spy)
    est = FlowDensity(n_transforms=2, hidden_units=(8,), max_epochs=1, tol=1e6, random_state=0)
    with kept_start_in_silence():
        est.fit(blobs)
    assert est.best_epoch_ == 0 and est.base == "mixture"
    (chosen, training_part, seed), (refitted, every_row, refit_seed) = calls
    assert training_part.shape == (270, 2)  # trained from: the validation rows are not seen
    assert every_row.shape == (300, 2) and refitted == chosen and refit_seed == seed
    assert chosen == scored_candidate(every_row, seed)[0]  # chosen by cross-validation on every row
    assert est.n_components_ == chosen.n_components >= 2
    gmm = chosen.estimator(seed).fit(every_row)
    standardized = (blobs - est.location_) / est.scale_
    expected = gmm.score_samples(standardized) - np.log(est.scale_).sum()
    np.testing.assert_allclose(est.score_samples(blobs), expected, rtol=0, atol=1e-8)


def test_a_refit_that_falls_back_to_one_gaussian_leaves_the_fitted_mixture(blobs, monkeypatch):
    from skflow._mixture_init import fit_candidate

    calls = []

    def second_falls_back(candidate, x, seed):
        calls.append(candidate)
        return fit_candidate(candidate if len(calls) == 1 else Candidate(1, "full", 0.1), x, seed)

    monkeypatch.setattr(skflow._fitting, "fit_candidate", second_falls_back)
    est = FlowDensity(n_transforms=2, hidden_units=(8,), max_epochs=1, tol=1e6, random_state=0)
    with kept_start_in_silence():
        est.fit(blobs)
    assert len(calls) == 2 and est.n_components_ == calls[0].n_components >= 2
    assert est.flow_.base.n_components == est.n_components_ and np.isfinite(est.score(blobs))


@pytest.fixture(scope="module")
def fitted(blobs):
    return FlowDensity(n_transforms=2, hidden_units=(8,), max_epochs=3, random_state=0).fit(blobs)


def test_transform_gives_the_mixture_latent_and_inverse_transform_inverts_it(fitted, blobs):
    assert fitted.flow_.config["base"]["kind"] == "mixture"
    Z = fitted.transform(blobs)
    np.testing.assert_allclose(fitted.inverse_transform(Z), blobs, rtol=1e-6, atol=1e-8)
    latent_density = fitted.flow_.base.log_prob(torch.from_numpy(Z)).detach().numpy()
    log_det = fitted.flow_(torch.from_numpy(blobs))[1].detach().numpy()
    np.testing.assert_allclose(fitted.score_samples(blobs), latent_density + log_det, rtol=1e-10)
    samples = fitted.sample(2000, random_state=0)
    np.testing.assert_array_equal(samples, fitted.sample(2000, random_state=0))
    np.testing.assert_allclose(samples.mean(0), blobs.mean(0), atol=0.3)


def test_mixture_model_survives_save_load_and_pickle(fitted, blobs):
    buffer = io.BytesIO()
    fitted.save(buffer)
    buffer.seek(0)
    for restored in (FlowDensity.load(buffer), pickle.loads(pickle.dumps(fitted))):
        assert restored.base == "mixture" and restored.n_components_ == fitted.n_components_
        np.testing.assert_array_equal(restored.score_samples(blobs), fitted.score_samples(blobs))
        np.testing.assert_array_equal(restored.sample(5, random_state=1), fitted.sample(5, random_state=1))


def test_normal_base_keeps_the_standard_normal(blobs):
    est = FlowDensity(base="normal", n_transforms=2, hidden_units=(8,), max_epochs=1, tol=1e6, random_state=0)
    with pytest.warns(Warning, match="no epoch improved"):
        est.fit(blobs)
    assert est.flow_.config["base"] == {"kind": "normal"} and est.n_components_ == 1
    expected = stats.norm.logpdf(blobs, blobs.mean(0), blobs.std(0)).sum(1)
    np.testing.assert_allclose(est.score_samples(blobs), expected, rtol=1e-10)
    Z = est.transform(blobs)
    np.testing.assert_allclose(Z, (blobs - blobs.mean(0)) / blobs.std(0), atol=1e-10)


def test_persisted_config_bounds_the_mixture_before_building_it():
    from skflow._persisted_flow import MAX_N_COMPONENTS, _check_flow_config

    flow = flow_with_mixture()
    state = flow.state_dict()
    _check_flow_config(flow.config, state)
    for bad in ({"kind": "mixture", "n_components": MAX_N_COMPONENTS + 1}, {"kind": "flows"}, ["mixture"]):
        with pytest.raises(ValueError, match="base="):
            _check_flow_config({**flow.config, "base": bad}, state)
    # More components than the file stores weights for: refused before anything is built.
    with pytest.raises(ValueError, match="implies at least"):
        _check_flow_config({**flow.config, "base": {"kind": "mixture", "n_components": 500}}, state)


def test_asinh_tails_stay_only_where_the_starting_mixture_scores_better_with_them():
    from sklearn.preprocessing import StandardScaler

    from benchmarks import datasets

    # Parts of a whole (olive-oil-like): the last, small part reaches beyond tail_bound, yet a mixture of
    # the standardized columns scores better held-out than one of the asinh'd columns: the start drops it.
    X = StandardScaler().fit_transform(datasets.load("compositional_8d").X_train)
    est = FlowDensity(n_transforms=2, hidden_units=(8,), max_epochs=1, random_state=0).fit(X)
    assert not est.asinh_columns_.any()
    assert FlowDensity(base="normal", n_transforms=2, hidden_units=(8,), max_epochs=1).fit(X).asinh_columns_[-1]
    # A heavy tail keeps its asinh: the mixture of asinh'd rows scores better, its log-det counted.
    rng = np.random.default_rng(0)
    heavy = np.column_stack([rng.standard_t(1.5, 800), rng.normal(size=800)])
    assert FlowDensity(n_transforms=2, hidden_units=(8,), max_epochs=1, random_state=0).fit(heavy).asinh_columns_[0]


def skewed_rows(n: int = 1000, seed: int = 0) -> np.ndarray:
    """A log-normal column and a left-skewed one: each far from symmetric, neither beyond tail_bound."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.lognormal(0.0, 0.6, n), 5.0 - rng.lognormal(0.0, 0.5, n)])


def test_skewed_columns_start_from_a_mixture_after_a_yeo_johnson_map():
    from skflow._core import YeoJohnson

    X = skewed_rows()
    est = FlowDensity(n_transforms=2, hidden_units=(8,), max_epochs=3, random_state=0).fit(X)
    assert est.flow_.config["power"]
    (power,) = [layer for layer in est.flow_.preprocessing if isinstance(layer, YeoJohnson)]
    lambdas = power.lambdas.numpy()
    assert lambdas[0] < 0.8 and lambdas[1] > 1.2  # the right skew pulled in, the left one out
    # Still an exact density in the data's units: mass 1 on a grid, exact inverse, finite draws.
    gx, gy = np.linspace(-1.0, 8.0, 451), np.linspace(-2.0, 6.0, 401)
    grid = np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
    density = np.exp(est.score_samples(grid)).reshape(gx.size, gy.size)
    assert abs(np.trapezoid(np.trapezoid(density, gy, axis=1), gx) - 1.0) < 0.01
    np.testing.assert_allclose(est.inverse_transform(est.transform(X[:50])), X[:50], rtol=1e-6, atol=1e-8)
    assert np.isfinite(est.sample(2000, random_state=0)).all()


def test_yeo_johnson_start_round_trips_and_symmetric_data_goes_without(tmp_path):
    X = skewed_rows()
    est = FlowDensity(n_transforms=2, hidden_units=(8,), max_epochs=3, random_state=0).fit(X)
    est.save(tmp_path / "power.skflow")
    restored = FlowDensity.load(tmp_path / "power.skflow")
    np.testing.assert_array_equal(restored.score_samples(X), est.score_samples(X))
    gaussian = np.random.default_rng(1).normal(size=(600, 2))
    plain = FlowDensity(n_transforms=2, hidden_units=(8,), max_epochs=3, random_state=0).fit(gaussian)
    assert not plain.flow_.config["power"]


def test_on_large_data_a_map_losing_with_the_best_starts_mixture_gets_no_selection_of_its_own(monkeypatch):
    import skflow._mixture_start

    selections = []
    original = skflow._mixture_start._power_start

    def spy(*args):
        selections.append(args)
        return original(*args)

    monkeypatch.setattr(skflow._mixture_start, "_power_start", spy)
    X = skewed_rows(6000)  # beyond CROSS_VALIDATION_MAX_ROWS: one held-out fifth
    settings = dict(n_transforms=1, hidden_units=(4,), max_epochs=1, random_state=0)
    with kept_start_in_silence():
        assert FlowDensity(**settings).fit(X).flow_.config["power"]  # the map wins: it got its selection
    assert len(selections) >= 1
    # Every map counted as losing by more than the threshold: none is selected for, none is kept.
    selections.clear()
    monkeypatch.setattr(skflow._mixture_start, "HOPELESS_MAP_LOSS", -np.inf)
    with kept_start_in_silence():
        assert not FlowDensity(**settings).fit(X).flow_.config["power"]
    assert selections == []


def test_a_power_map_that_only_wins_by_noise_is_not_kept():
    from sklearn.datasets import load_linnerud
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    # 16 rows of 6 columns: lambdas fitted on every row made the map look 0.4 nats a row better held-out,
    # and the flow that kept it scored 2.3 nats worse on the other 4 rows than the mixture alone.
    train, test = train_test_split(np.hstack(load_linnerud(return_X_y=True)), test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(train)
    est = FlowDensity(random_state=0).fit(scaler.transform(train))
    assert not est.flow_.config["power"]
    assert est.score(scaler.transform(test)) > -10.5


def test_mixture_rows_map_the_selected_rows_as_if_every_row_were_mapped_first():
    """The start maps only the (at most 20,000) rows the mixture sees, not a full-size copy: same result."""
    from skflow._mixture_init import MAX_ROWS, mixture_rows

    rows = torch.randn(MAX_ROWS + 500, 3, generator=torch.Generator().manual_seed(0))
    weights = np.ones(rows.shape[0])
    weights[::7] = 3.0

    def row_map(x):
        return torch.sinh(x.double()).float()

    for w in (np.ones(rows.shape[0]), weights):
        np.testing.assert_array_equal(
            mixture_rows(rows, w, 0.1, 3, None, row_map), mixture_rows(row_map(rows), w, 0.1, 3, None)
        )


@pytest.mark.parametrize(
    ("n_rows", "base", "expected"),
    [(5000, "mixture", (300, 3.0)), (4999, "mixture", (0, 1.0)), (5000, "normal", (0, 1.0))],
)
def test_long_training_from_a_fitted_mixture_warms_up_and_steps_the_base_faster(n_rows, base, expected, monkeypatch):
    """From 5,000 rows a fit that starts from a fitted mixture warms up over 300 steps and its base takes
    steps 3x the learning rate; below that, or from the standard normal, neither."""
    configs = []
    original = skflow._fitting.train_flow

    def spy(flow, x, weights, config, *args):
        configs.append(config)
        return original(flow, x, weights, config, *args)

    monkeypatch.setattr(skflow._fitting, "train_flow", spy)
    X = np.random.RandomState(0).normal(size=(n_rows, 2))
    settings = dict(n_transforms=1, hidden_units=(4,), max_epochs=1, base=base, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FlowDensity(**settings).fit(X)
    assert [(c.warmup_steps, c.base_lr_factor) for c in configs] == [expected]
