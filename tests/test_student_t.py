"""Student's t in torch (skflow._core.student_t): its tail probability and the map of a t variable to a normal one."""

import numpy as np
import pytest
import torch
from scipy.stats import chi2, multivariate_normal, multivariate_t, norm
from scipy.stats import f as f_distribution
from scipy.stats import t as student_t

from skflow._core import build_flow, flow_from_config
from skflow._core.student_t import MultivariateStudentToNormal, StudentToNormal, log_tail, normal_quantile_of_log
from skflow._persisted_flow import _persist_flow, _rebuild_flow

DEGREES = [2.0, 3.1, 7.5, 26.0, 99.0]
VALUES = [0.0, 1e-9, 0.2, -0.7, 1.0, 2.5, -6.0, 40.0, -1e3, 1e8]


@pytest.mark.parametrize("nu", DEGREES)
def test_log_tail_is_scipys_far_into_the_tails(nu):
    u = torch.tensor(VALUES, dtype=torch.float64)
    found, expected = log_tail(u, nu).numpy(), student_t.logsf(np.abs(VALUES), nu)
    finite = np.isfinite(expected)  # scipy's underflows at 1e8 for many degrees of freedom
    np.testing.assert_allclose(found[finite], expected[finite], rtol=1e-12, atol=1e-15)
    # There, the tail's asymptote: P(T > u) ~ t(u) u / nu.
    far = np.abs(VALUES)[~finite]
    np.testing.assert_allclose(found[~finite], student_t.logpdf(far, nu) + np.log(far / nu), rtol=1e-9)


def test_the_normal_quantile_of_a_log_probability_holds_where_the_probability_underflows():
    log_p = torch.tensor([np.log(0.5), np.log(0.05), -50.0, -700.0, -2000.0, -1e5], dtype=torch.float64)
    z = normal_quantile_of_log(log_p)
    np.testing.assert_allclose(norm.logcdf(z.numpy()), log_p.numpy(), rtol=1e-12)
    assert z[0] == 0.0 and (z[1:] < 0).all()


@pytest.mark.parametrize("nu", DEGREES)
def test_student_to_normal_is_the_probability_integral_map_with_its_exact_log_det_and_inverse(nu):
    layer = StudentToNormal(nu)
    u = torch.tensor(VALUES[:8], dtype=torch.float64).reshape(4, 2)
    z, log_det = layer(u)
    expected = np.where(u > 0, norm.isf(student_t.sf(u, nu)), norm.ppf(student_t.cdf(u, nu)))
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        log_det.numpy(), (student_t.logpdf(u, nu) - norm.logpdf(expected)).sum(1), rtol=1e-12, atol=1e-12
    )
    # The log-det against central differences of z(u) (the layer's autograd derivative is its own formula).
    step = 1e-6 * u.abs().clamp_min(1)
    slope = (layer(u + step)[0] - layer(u - step)[0]) / (2 * step)
    np.testing.assert_allclose(np.log(slope.numpy()).sum(1), log_det.numpy(), rtol=1e-6, atol=1e-7)
    back, log_det_inverse = layer.inverse(z)
    torch.testing.assert_close(back, u, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(log_det_inverse, -log_det)
    # Far latents, and the draws of a standard normal, map back and forth too.
    far = torch.tensor([[-37.0], [-8.0], [0.0], [8.0], [37.0]], dtype=torch.float64)
    torch.testing.assert_close(layer(layer.inverse(far)[0])[0], far, rtol=1e-10, atol=1e-10)


def test_student_to_normal_trains_with_exact_gradients():
    layer = StudentToNormal(4.5)
    u = torch.tensor([[-3.0, 0.1], [0.5, 7.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda rows: layer(rows)[0], (u,))
    assert torch.autograd.gradcheck(lambda rows: layer(rows)[1], (u,))


def test_a_linear_shift_of_student_noise_is_the_t_regression_and_saves_and_loads():
    rng = np.random.default_rng(8)
    weight, bias, log_scale, nu = rng.normal(size=(1, 2)), rng.normal(size=1), np.array([0.4]), 5.5
    flow = build_flow(
        1, n_transforms=2, hidden_units=(8,), context_features=2, linear_shift=(weight, bias, log_scale, None, None, nu)
    ).double()
    x, c = torch.randn(6, 1, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    expected = student_t.logpdf(x.numpy()[:, 0], nu, c.numpy() @ weight[0] + bias[0], np.exp(log_scale[0]))
    np.testing.assert_allclose(flow.log_prob(x, c).detach().numpy(), expected, rtol=1e-6)  # float32 numbers
    assert flow.config["linear_shift_student"]
    rebuilt = flow_from_config(flow.config).double()
    rebuilt.load_state_dict(flow.state_dict())
    torch.testing.assert_close(rebuilt.log_prob(x, c), flow.log_prob(x, c))
    plain = build_flow(1, n_transforms=2, hidden_units=(8,), context_features=2, linear_shift=(weight, bias, log_scale))
    assert "linear_shift_student" not in plain.config
    assert not any(isinstance(layer, StudentToNormal) for layer in flow_from_config(plain.config).transforms)


@pytest.mark.parametrize("degrees", [0.0, -3.0, np.inf, 1e15])
def test_a_stored_flow_whose_student_noise_has_no_valid_degrees_of_freedom_is_refused(degrees):
    linear_shift = (np.ones((1, 2)), np.zeros(1), np.zeros(1), None, None, 5.0)
    flow = build_flow(1, n_transforms=1, hidden_units=(4,), context_features=2, linear_shift=linear_shift).double()
    stored = _persist_flow(flow)
    assert _rebuild_flow(stored).log_prob(torch.zeros(1, 1), torch.zeros(1, 2)).isfinite().all()
    name = next(key for key in stored["state_dict"] if key.endswith("degrees_of_freedom"))
    stored["state_dict"][name] = torch.tensor([degrees], dtype=torch.float64)
    with pytest.raises(
        ValueError, match="not a valid flow: Student's t noise has .* degrees of freedom; expected 1 to"
    ):
        _rebuild_flow(stored)


@pytest.mark.parametrize("mixing", [[[2.0, 0.0], [0.3, 1.0]], [[1.0, 5.0], [0.3, 1.0]], [[1.0, 0.0], [np.inf, 1.0]]])
def test_a_stored_linear_shift_whose_mixing_is_not_unit_lower_triangular_is_refused(mixing):
    linear_shift = (np.ones((2, 2)), np.zeros(2), np.zeros(2), None, np.array([[1.0, 0.0], [0.3, 1.0]]))
    flow = build_flow(2, n_transforms=1, hidden_units=(4,), context_features=2, linear_shift=linear_shift).double()
    stored = _persist_flow(flow)
    _rebuild_flow(stored)
    stored["state_dict"][next(key for key in stored["state_dict"] if key.endswith("noise_mixing"))] = torch.tensor(
        mixing, dtype=torch.float64
    )
    with pytest.raises(ValueError, match="noise_mixing must be finite and unit lower-triangular"):
        _rebuild_flow(stored)


def test_a_linear_shift_needs_a_context():
    with pytest.raises(ValueError, match="a linear shift needs a context"):
        build_flow(1, n_transforms=1, hidden_units=(4,), linear_shift=(np.ones((1, 0)), [0.0], [0.0]))


@pytest.mark.parametrize("nu", [2.0, 5.0, 40.0])
@pytest.mark.parametrize("d", [2, 3])
def test_the_multivariate_t_maps_radially_to_the_normal_with_its_exact_log_det_and_inverse(d, nu):
    layer = MultivariateStudentToNormal(nu)
    t = multivariate_t(np.zeros(d), np.eye(d), df=nu)
    u = torch.tensor(np.vstack([t.rvs(500, random_state=1), np.eye(d)[:1] * [[1e-9], [0.4], [300.0]]]))
    z, log_det = layer(u)
    # Radial: each row keeps its direction, and |z|^2 is the chi-square quantile of |u|^2 / d's F(d, nu) level.
    square = (u**2).sum(1).numpy()
    expected = chi2.isf(f_distribution.sf(square / d, d, nu), d)
    torch.testing.assert_close(z / z.norm(dim=1, keepdim=True), u / u.norm(dim=1, keepdim=True))
    np.testing.assert_allclose((z**2).sum(1).numpy()[square > 1e-5], expected[square > 1e-5], rtol=1e-12)
    np.testing.assert_allclose(
        log_det.numpy(), t.logpdf(u.numpy()) - multivariate_normal(np.zeros(d)).logpdf(z.numpy()), atol=1e-11
    )
    back, log_det_inverse = layer.inverse(z)
    torch.testing.assert_close(back, u, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(log_det_inverse, -log_det)
    # The log-det against the central-difference Jacobian of z(u), row by row.
    for row in u[[0, 1, -2]]:
        step = 1e-6 * max(1.0, float(row.abs().max()))
        jacobian = torch.stack(
            [
                (layer((row + step * e)[None])[0] - layer((row - step * e)[None])[0])[0] / (2 * step)
                for e in torch.eye(d)
            ]
        )
        log_abs_det = float(torch.linalg.slogdet(jacobian).logabsdet)
        assert log_abs_det == pytest.approx(float(layer(row[None])[1]), abs=1e-6)
    # Draws of the t become draws of the normal: their squared radii average d.
    assert float((z[:500] ** 2).sum(1).mean()) == pytest.approx(d, rel=0.15)


def test_the_multivariate_map_trains_with_exact_gradients_and_ignores_the_features_order():
    layer = MultivariateStudentToNormal(4.5)
    u = torch.tensor([[-3.0, 0.1, 0.7], [0.5, 7.0, -0.2]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda rows: layer(rows)[0], (u,))
    assert torch.autograd.gradcheck(lambda rows: layer(rows)[1], (u,))
    order = [2, 0, 1]
    torch.testing.assert_close(layer(u[:, order])[0], layer(u)[0][:, order])
    torch.testing.assert_close(layer(u[:, order])[1], layer(u)[1])


@pytest.mark.parametrize("nu", [2.0, 5.0])
@pytest.mark.parametrize("d", [2, 3, 4, 5])
def test_the_radial_map_holds_far_out(d, nu):
    layer = MultivariateStudentToNormal(nu)
    radius = np.array([1e-2, 1.0, 1e3, 1e6, 1e9, 1e12])  # above the center, where the map is linear to 1e-6
    u = torch.tensor(radius[:, None] * np.eye(d)[0], dtype=torch.float64)
    z, log_det = layer(u)
    # |z|^2 at the chi-square level of |u|^2 / d's F level (scipy's, which holds this far for these nu).
    # Near the center the lower tails resolve the level, far out the upper ones.
    lower = chi2.ppf(f_distribution.cdf(radius**2 / d, d, nu), d)
    expected = np.where(radius < 1, lower, chi2.isf(np.exp(f_distribution.logsf(radius**2 / d, d, nu)), d))
    np.testing.assert_allclose((z**2).sum(1).numpy(), expected, rtol=1e-9)
    torch.testing.assert_close(layer.inverse(z)[0], u, rtol=1e-11, atol=1e-15)
    assert torch.isfinite(log_det).all()
    # Training far out stays finite (float32, as flows train).
    rows = u.float().requires_grad_()
    z32, log_det32 = layer(rows)
    (z32.square().sum() - log_det32.sum()).backward()
    assert torch.isfinite(rows.grad).all()
