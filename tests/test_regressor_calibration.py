"""FlowRegressor's latent scale (``calibrate``): fitted on the validation rows, exact density, saved and loaded."""

import io
from functools import partial

import numpy as np
import torch
from scipy.stats import norm

from skflow import FlowRegressor
from skflow._calibration import PRIOR_ROWS, fit_latent_scale
from skflow._core.train import validation_split
from skflow._fitting import draw_seed
from skflow._preprocessing import Preprocessing

from .conftest import ONE_FLOW_ALONE, SMALL_REGRESSOR, from_older_state

# Trained flows, as calibrated: a kept ridge regression (base="linear") is not rescaled (tests/test_linear_start.py).
FAST = {**SMALL_REGRESSOR, **ONE_FLOW_ALONE, "base": "normal"}


def noisy(n, seed, n_targets=1):
    """A linear signal in one of five features, with noise the flow can overfit on a few hundred rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    Y = X[:, :1] + 0.5 * rng.normal(size=(n, n_targets))
    return X, Y[:, 0] if n_targets == 1 else Y


def latent(reg, X, Y):
    context = torch.as_tensor(reg._context(X))
    with torch.no_grad():
        z, log_abs_det = reg.flow_(torch.as_tensor(Y.reshape(len(X), -1)), context)
    return z.numpy(), log_abs_det.numpy()


def shrunk_scale(z):
    """The latents' mean square per target, with the training's own s = 1 counted as PRIOR_ROWS more rows."""
    n = len(z)
    return np.sqrt((PRIOR_ROWS + n * np.mean(z**2, axis=0)) / (PRIOR_ROWS + n))


def scale_of(reg, X, Y, validation, weights):
    """``fit_latent_scale`` of the regressor's fitted flow on its validation rows, under ``weights``."""
    preprocessing = Preprocessing(**reg._trainer_state_["preprocessing"])
    Y = Y.reshape(len(X), -1)
    context = reg._context(X)
    return fit_latent_scale(reg.flow_, Y, weights, context, validation, preprocessing, torch.device("cpu"))


def test_scale_is_the_validation_rows_mean_square_shrunk_toward_one_per_target():
    X, Y = noisy(300, 0, n_targets=2)
    reg = FlowRegressor(max_epochs=15, **FAST).fit(X, Y)
    plain = FlowRegressor(max_epochs=15, calibrate=False, **FAST).fit(X, Y)
    # Calibration happens after training: the same flow, a different base.
    for a, b in zip(reg.flow_.state_dict().values(), plain.flow_.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    np.testing.assert_array_equal(plain.latent_scale_, [1.0, 1.0])
    generator = torch.Generator().manual_seed(draw_seed(reg))
    _, validation = validation_split(len(X), reg.validation_fraction, generator, torch.device("cpu"))
    z, log_abs_det = latent(reg, X[validation.numpy()], Y[validation.numpy()])
    np.testing.assert_allclose(reg.latent_scale_, shrunk_scale(z), rtol=1e-10)
    assert np.all(np.abs(np.log(reg.latent_scale_)) < np.abs(np.log(np.sqrt(np.mean(z**2, axis=0)))))
    # Weighted rows count by Kish's effective number: weights of 3 change nothing, and weights of 0 drop rows.
    rescaled = partial(scale_of, reg, X, Y, validation)
    np.testing.assert_allclose(rescaled(np.full(len(X), 3.0)), reg.latent_scale_, rtol=1e-12)
    first_half = np.zeros(len(X))
    first_half[validation.numpy()[: len(validation) // 2]] = 1.0
    np.testing.assert_allclose(rescaled(first_half), shrunk_scale(z[: len(validation) // 2]), rtol=1e-10)
    # The exact density under the base N(0, diag(s^2)), and the uncalibrated one under N(0, I).
    z, log_abs_det = latent(reg, X, Y)
    s = reg.latent_scale_
    expected = norm.logpdf(z / s).sum(axis=1) - np.log(s).sum() + log_abs_det
    np.testing.assert_allclose(reg.score_samples(X, Y), expected, rtol=1e-10)
    np.testing.assert_allclose(plain.score_samples(X, Y), norm.logpdf(z).sum(axis=1) + log_abs_det, rtol=1e-10)


def test_no_validation_rows_leave_the_scale_at_one():
    X, y = noisy(100, 2)
    reg = FlowRegressor(max_epochs=3, validation_fraction=0.0, **FAST).fit(X, y)
    np.testing.assert_array_equal(reg.latent_scale_, [1.0])


def test_scale_survives_save_and_load_and_older_states_load_uncalibrated():
    X, y = noisy(200, 3)
    reg = FlowRegressor(max_epochs=5, **FAST).fit(X, y)
    assert reg.latent_scale_[0] != 1.0
    buffer = io.BytesIO()
    reg.save(buffer)
    buffer.seek(0)
    loaded = FlowRegressor.load(buffer)
    np.testing.assert_array_equal(loaded.latent_scale_, reg.latent_scale_)
    np.testing.assert_array_equal(loaded.predict_interval(X[:5]), reg.predict_interval(X[:5]))
    # A model saved before the latent scale existed had base N(0, I) and no calibrate parameter.
    old = from_older_state(reg, ("latent_scale_", "calibrate"))
    assert old.get_params()["calibrate"] is False
    z, log_abs_det = latent(reg, X, y)
    np.testing.assert_allclose(old.score_samples(X, y), norm.logpdf(z[:, 0]) + log_abs_det, rtol=1e-10)
