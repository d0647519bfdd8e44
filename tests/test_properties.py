"""Property-based tests (hypothesis) over shapes, scales, data kinds and seeds.

Every example fits a tiny flow for two epochs: the properties are about
numerical safety, which must hold for any weights, not about fit quality.
"""

import warnings

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skflow import FlowDensity

KINDS = ("normal", "cauchy", "integer", "constant_column", "clusters", "tied")

PROPERTY_SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_data(kind: str, n: int, d: int, log_scale: float, seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    scale = 10.0**log_scale * rng.uniform(0.5, 2.0, size=d)
    offset = rng.normal(size=d) * 10.0**log_scale * 3
    if kind == "normal":
        X = rng.normal(size=(n, d))
    elif kind == "cauchy":  # heavy tails: a few points hundreds of scales away
        X = rng.standard_cauchy(size=(n, d))
    elif kind == "integer":
        return rng.poisson(10.0 ** min(log_scale, 3), size=(n, d)).astype(float)
    elif kind == "constant_column":
        X = rng.normal(size=(n, d))
        X[:, rng.randint(d)] = 0.37
    elif kind == "clusters":
        X = rng.normal(size=(n, d)) * 0.05 + rng.randint(0, 2, size=(n, 1)) * 4.0
    else:  # many tied values
        X = rng.randint(0, 3, size=(n, d)) + 0.5
    return X * scale + offset


data_params = st.tuples(
    st.sampled_from(KINDS),
    st.integers(2, 80),  # n_samples
    st.integers(1, 4),  # n_features
    st.floats(-6, 6),  # log10 of the scale
    st.integers(0, 2**16),  # data seed
)
model_params = st.fixed_dictionaries(
    {
        "flow": st.sampled_from(["spline", "affine"]),
        "n_transforms": st.integers(1, 2),
        "random_state": st.integers(0, 2**16),
    }
)


def fit_tiny(X, **params):
    est = FlowDensity(hidden_units=(4,), n_bins=4, max_epochs=2, batch_size=32, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant-column and max_epochs warnings are expected here
        return est.fit(X)


def probes(X, spread, seed):
    """Training points, random points 1 to 1e6 spreads from the centre, and points beyond float32's range."""
    rng = np.random.RandomState(seed)
    centre = X.mean(0)
    factors = 10.0 ** rng.uniform(0, 6, size=(60, 1))
    directions = rng.normal(size=(60, X.shape[1]))
    far = centre + factors * directions * spread
    extreme = np.vstack([centre + 1e200, centre - 1e200])
    return np.vstack([X, far, extreme]), far


@PROPERTY_SETTINGS
@given(data=data_params, model=model_params)
def test_score_samples_is_never_nan_nor_plus_inf(data, model):
    X = make_data(*data)
    est = fit_tiny(X, **model)
    everything, far = probes(X, est.scale_, data[-1])
    scores = est.score_samples(everything)
    assert not np.isnan(scores).any()
    assert not (scores == np.inf).any()
    # Training points and points up to 1e6 spreads away are finite, straight from the flow
    # (not through score_samples' overflow-to--inf guard).
    with torch.inference_mode():
        raw = est.flow_.log_prob(torch.as_tensor(np.vstack([X, far]), dtype=torch.float64)).numpy()
    assert np.isfinite(raw).all(), np.vstack([X, far])[~np.isfinite(raw)]
    np.testing.assert_allclose(scores[: len(raw)], raw)


@PROPERTY_SETTINGS
@given(data=data_params, model=model_params)
def test_inverse_transform_recovers_the_training_data(data, model):
    X = make_data(*data)
    est = fit_tiny(X, **model)
    Z = est.transform(X)
    assert np.isfinite(Z).all()
    recovered = est.inverse_transform(Z)
    # 1e-4 relative to each column's magnitude on the training range.
    tolerance = 1e-4 * np.maximum(np.abs(X).max(0), est.scale_)
    assert (np.abs(recovered - X) <= tolerance).all(), np.abs(recovered - X).max(0) / tolerance


@PROPERTY_SETTINGS
@given(
    n=st.integers(5, 80),
    seed=st.integers(0, 2**16),
    low=st.floats(-1e3, 1e3),
    log_width=st.floats(-3, 3),
    two_sided=st.booleans(),
)
def test_bounded_data_scores_samples_and_round_trips(n, seed, low, log_width, two_sided):
    rng = np.random.RandomState(seed)
    width = 10.0**log_width
    u = rng.beta(0.7, 1.5, size=(n, 1)).clip(1e-6, 1 - 1e-6)
    X = low + width * u if two_sided else low + width * rng.exponential(size=(n, 1)) + 1e-9 * width
    bounds = (low, low + width) if two_sided else (low, None)
    est = fit_tiny(X, bounds=bounds, random_state=seed)
    scores = est.score_samples(X)
    assert np.isfinite(scores).all()
    outside = est.score_samples(np.array([[low], [low - width]]))
    np.testing.assert_array_equal(outside, [-np.inf, -np.inf])
    samples = est.sample(200, random_state=seed)
    assert (samples >= low).all() and (not two_sided or (samples <= low + width).all())
    tolerance = 1e-4 * max(abs(low), width)
    assert np.abs(est.inverse_transform(est.transform(X)) - X).max() <= tolerance
