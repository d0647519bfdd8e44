"""The compiled coupling spline against the PyTorch one, its gradient, and the fallback where it cannot be built."""

import pytest
import torch

from skflow._core import spline_kernel
from skflow._core.splines import coupling_spline

requires_kernel = pytest.mark.skipif(
    spline_kernel.load(torch.zeros(1, 1), torch.zeros(1, 23, 1)) is None,
    reason="no C compiler: the PyTorch spline runs",
)


def _problem(dtype, n_rows=97, n_bins=8, scale=1.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = 3.0 * torch.randn(n_rows, 5, generator=generator, dtype=dtype)
    x[:5, 1] = torch.tensor([-7.0, 7.0, -4.0, 4.0, float("inf")], dtype=dtype)  # beyond and at the bound
    transformed = torch.tensor([1, 2, 4])
    params = scale * torch.randn(3, 3 * n_bins - 1, n_rows, generator=generator, dtype=dtype)
    return x, params, transformed


def _run(x, params, transformed, monkeypatch, compiled: bool):
    monkeypatch.setenv("SKFLOW_COMPILED_SPLINE", "1" if compiled else "0")
    x, params = x.clone().requires_grad_(), params.clone().requires_grad_()
    y, log_det = coupling_spline(x, params, transformed, 4.0)
    generator = torch.Generator().manual_seed(1)
    weights_y = torch.randn(y.shape, generator=generator, dtype=y.dtype)
    weights_log_det = torch.randn(log_det.shape, generator=generator, dtype=y.dtype)
    grad_x, grad_params = torch.autograd.grad((y * weights_y).sum() + (log_det * weights_log_det).sum(), (x, params))
    return y.detach(), log_det.detach(), grad_x, grad_params


@requires_kernel
@pytest.mark.parametrize("n_bins", [2, 8, 13])
@pytest.mark.parametrize("scale", [0.0, 1.0, 4.0])
@pytest.mark.parametrize("dtype, rtol, atol", [(torch.float64, 1e-10, 1e-12), (torch.float32, 2e-3, 1e-5)])
def test_compiled_spline_matches_pytorch(n_bins, scale, dtype, rtol, atol, monkeypatch):
    x, params, transformed = _problem(dtype, n_bins=n_bins, scale=scale)
    compiled = _run(x, params, transformed, monkeypatch, compiled=True)
    reference = _run(x, params, transformed, monkeypatch, compiled=False)
    for name, a, b in zip(["y", "log_det", "grad_x", "grad_params"], compiled, reference):
        # Steep bins (scale 4) make some gradients ill-conditioned: both codes round them differently.
        assert torch.allclose(a, b, rtol=rtol, atol=atol * max(b.abs().max().item(), 1.0)), name
    untouched = [0, 3]
    assert torch.equal(compiled[0][:, untouched], x[:, untouched])
    assert torch.equal(compiled[2][:, untouched], reference[2][:, untouched])


@requires_kernel
def test_compiled_spline_gradcheck(monkeypatch):
    monkeypatch.setenv("SKFLOW_COMPILED_SPLINE", "1")
    x, params, transformed = _problem(torch.float64, n_rows=15, n_bins=4)
    # Without the rows at the bound, where the log-det has a kink that finite differences straddle.
    x, params = x[5:].clone().requires_grad_(), params[..., 5:].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: coupling_spline(a, b, transformed, 4.0), (x, params))


@requires_kernel
def test_compiled_spline_propagates_nan(monkeypatch):
    """A diverged step's NaN parameters must give NaN outputs, which training detects."""
    monkeypatch.setenv("SKFLOW_COMPILED_SPLINE", "1")
    x, params, transformed = _problem(torch.float32)
    params[0, 0, 10] = float("nan")
    y, log_det = coupling_spline(x, params, transformed, 4.0)
    assert torch.isnan(log_det[10]) and torch.isfinite(log_det[11:]).all()


@pytest.mark.parametrize("compiler", ["no-such-compiler", "false"])
def test_fallback_without_compiler(compiler, tmp_path, monkeypatch):
    """No compiler, a build that fails, or the switch off: the PyTorch spline runs and gives the same map."""
    x, params, transformed = _problem(torch.float64)
    monkeypatch.setenv("SKFLOW_COMPILED_SPLINE", "0")
    assert spline_kernel.load(x, params) is None
    reference = coupling_spline(x, params, transformed, 4.0)

    monkeypatch.setenv("SKFLOW_COMPILED_SPLINE", "1")
    monkeypatch.setenv("SKFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", compiler)
    spline_kernel._library.cache_clear()
    try:
        assert spline_kernel.load(x, params) is None
        y, log_det = coupling_spline(x, params, transformed, 4.0)
    finally:
        spline_kernel._library.cache_clear()
    assert torch.equal(y, reference[0]) and torch.equal(log_det, reference[1])
    assert list(tmp_path.iterdir()) == []  # no half-built library left behind


def test_no_compiled_spline_off_the_cpu_or_for_many_bins():
    half = torch.zeros(1, 1, dtype=torch.float16)
    assert spline_kernel.load(half, torch.zeros(1, 23, 1, dtype=torch.float16)) is None
    assert spline_kernel.load(torch.zeros(1, 1), torch.zeros(1, 3 * 1000 - 1, 1)) is None
    assert spline_kernel.load(torch.zeros(1, 1), torch.zeros(1, 23, 1, dtype=torch.float64)) is None
