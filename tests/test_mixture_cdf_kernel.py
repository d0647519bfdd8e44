"""The compiled mixture-CDF map against the PyTorch one, its gradient, its far tails and its fallbacks."""

import numpy as np
import pytest
import torch

from skflow._core import mixture_cdf_kernel
from skflow._core.base import standard_normal_log_prob
from skflow._core.mixture_cdf import LOG_SCALE_BOUNDS, LOG_SCALE_MAX, LOG_SCALE_MIN, MixtureCDFCoupling

from .test_mixture_cdf import known_mixture_layer, mixture_log_pdf

requires_kernel = pytest.mark.skipif(
    mixture_cdf_kernel.load(torch.zeros(1, 1), torch.zeros(1, 15, 1)) is None,
    reason="no C compiler: the PyTorch code runs",
)


def _problem(dtype, n_components=5, n_features=3, n_rows=97, scale=1.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = 2.0 * torch.randn(n_features, n_rows, generator=generator, dtype=dtype)
    params = scale * torch.randn(n_features, 3 * n_components, n_rows, generator=generator, dtype=dtype)
    log_scales = params[:, 2 * n_components :]
    # No entry beyond 35 sd, where the PyTorch code would run instead.
    params[:, n_components : 2 * n_components].clamp_(-3.0, 3.0)
    log_scales.clamp_(-1.0, 2.0)
    log_scales[0, 0, :2] = torch.tensor([LOG_SCALE_MIN - 1.0, LOG_SCALE_MAX + 1.0])  # the clamp binds
    # Near that component's mean, not in a far tail however narrow it is (and not where F is 1/2 exactly, where
    # PyTorch's choice of the tail at the median takes the gradient of the clamp at its kink).
    x[0, :2] = params[0, n_components, :2] + 1e-4
    return x, params


def kernel_computes(x: torch.Tensor, params: torch.Tensor) -> bool:
    """Whether the kernel computes these entries itself (else the PyTorch code runs)."""
    return mixture_cdf_kernel.forward(mixture_cdf_kernel.load(x, params), x, params, LOG_SCALE_BOUNDS) is not None


def _layer(n_components: int) -> MixtureCDFCoupling:
    return MixtureCDFCoupling(torch.ones(1, dtype=torch.bool), (4,), n_components=n_components)


def _run(x, params, monkeypatch, compiled: bool):
    monkeypatch.setenv("SKFLOW_COMPILED", "1" if compiled else "0")
    x, params = x.clone().requires_grad_(), params.clone().requires_grad_()
    z, log_derivative = _layer(params.shape[1] // 3)._elementwise(x, params, inverse=False)
    generator = torch.Generator().manual_seed(1)
    weights_z, weights_log = (torch.randn(z.shape, generator=generator, dtype=torch.float64).to(z.dtype) for _ in "zl")
    loss = (z * weights_z).sum() + (log_derivative * weights_log).sum()
    grad_x, grad_params = torch.autograd.grad(loss, (x, params))
    return z.detach(), log_derivative.detach(), grad_x, grad_params


@requires_kernel
@pytest.mark.parametrize("n_components", [1, 2, 5])
@pytest.mark.parametrize("scale", [0.0, 1.0, 3.0])
def test_compiled_map_and_gradient_match_pytorch_in_float64(n_components, scale, monkeypatch):
    x, params = _problem(torch.float64, n_components, scale=scale)
    assert kernel_computes(x, params)  # no fallback to the PyTorch code
    compiled = _run(x, params, monkeypatch, compiled=True)
    reference = _run(x, params, monkeypatch, compiled=False)
    for name, a, b in zip(["z", "log_derivative", "grad_x", "grad_params"], compiled, reference):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11 * max(b.abs().max().item(), 1.0), msg=name)
    assert torch.all(compiled[3][0, 2 * n_components, :2] == 0)  # no gradient where the clamp binds


@requires_kernel
def test_compiled_float32_rounds_only_its_outputs(monkeypatch):
    """The kernel computes in double precision: in float32 it is the float64 map of the same (rounded) inputs
    to float32's precision, where PyTorch's float32 arithmetic is further off."""
    x, params = (t.float() for t in _problem(torch.float64))
    exact = _run(x.double(), params.double(), monkeypatch, compiled=False)
    errors = {}
    for compiled in (True, False):
        single = _run(x, params, monkeypatch, compiled=compiled)
        errors[compiled] = [((a.double() - b).abs() / (b.abs() + 1)).max().item() for a, b in zip(single, exact)]
    assert max(errors[True]) < 1e-5
    assert errors[True][:2] <= [max(e, 1e-6) for e in errors[False][:2]]


@requires_kernel
def test_compiled_gradcheck(monkeypatch):
    monkeypatch.setenv("SKFLOW_COMPILED", "1")
    x, params = _problem(torch.float64, n_components=3, n_features=2, n_rows=7)
    params[0, 6, :2] = 0.0  # off the clamp's kinks, which finite differences would straddle
    layer = _layer(3)
    x, params = x.requires_grad_(), params.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: layer._elementwise(a, b, inverse=False), (x, params))


@requires_kernel
def test_known_mixture_density_through_the_kernel(monkeypatch):
    monkeypatch.setenv("SKFLOW_COMPILED", "1")
    layer = known_mixture_layer()
    x = np.array([-12.0, -3.0, 0.0, 0.5, 2.2, 9.0, 30.0])
    params = layer._params(torch.from_numpy(x[:, None]), None)
    params = params.detach().contiguous()  # the constant conditioner's rows are one row, expanded
    assert kernel_computes(torch.from_numpy(x[None]), params)
    with torch.no_grad():
        z, log_det = layer(torch.from_numpy(x[:, None]))
    np.testing.assert_allclose((standard_normal_log_prob(z) + log_det).numpy(), mixture_log_pdf(x), rtol=1e-12)


@requires_kernel
@pytest.mark.parametrize("far", [1e3, -1e3, float("inf"), float("nan")])
def test_a_far_or_nan_entry_leaves_the_whole_call_to_pytorch(far, monkeypatch):
    """Beyond ~35 sd of z (and at NaN) the kernel computes nothing; the PyTorch code, exact in any tail, runs."""
    x, params = _problem(torch.float64)
    x[1, 5] = far
    assert not kernel_computes(x, params)
    compiled = _run(x, params, monkeypatch, compiled=True)
    reference = _run(x, params, monkeypatch, compiled=False)
    for a, b in zip(compiled, reference):
        assert torch.equal(a.nan_to_num(), b.nan_to_num())


@requires_kernel
@pytest.mark.parametrize("parameter", [3, 7, 12])  # a logit, a mean, a log-scale
def test_nan_parameters_give_nan_outputs(parameter, monkeypatch):
    """A diverged step's NaN parameters must give NaN outputs, which training detects."""
    x, params = _problem(torch.float32)
    x[0, 10] = params[0, 5 + parameter % 5, 10]  # at the component's mean: however narrow, not in a far tail
    params[0, parameter, 10] = float("nan")
    z, log_derivative = _run(x, params, monkeypatch, compiled=True)[:2]
    assert torch.isnan(log_derivative[0, 10]) and torch.isfinite(log_derivative[0, 11:]).all()


def test_switched_off_or_without_a_compiler(tmp_path, monkeypatch):
    x, params = _problem(torch.float64)
    monkeypatch.setenv("SKFLOW_COMPILED", "0")
    assert mixture_cdf_kernel.load(x, params) is None
    reference = _run(x, params, monkeypatch, compiled=False)
    monkeypatch.setenv("SKFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a compiler whose every build fails
    mixture_cdf_kernel._library.cache_clear()
    try:
        assert mixture_cdf_kernel.load(x, params) is None
        without = _run(x, params, monkeypatch, compiled=True)
    finally:
        mixture_cdf_kernel._library.cache_clear()
    assert all(torch.equal(a, b) for a, b in zip(without, reference))
    assert list(tmp_path.iterdir()) == []  # no half-built library left behind


def test_no_kernel_off_the_cpu_or_for_many_components():
    half = torch.zeros(1, 1, dtype=torch.float16)
    assert mixture_cdf_kernel.load(half, torch.zeros(1, 15, 1, dtype=torch.float16)) is None
    assert mixture_cdf_kernel.load(torch.zeros(1, 1), torch.zeros(1, 15, 1, dtype=torch.float64)) is None
    assert mixture_cdf_kernel.load(torch.zeros(1, 1), torch.zeros(1, 3 * 100, 1)) is None
