import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    np.random.seed(0)


def perturb_parameters(module: torch.nn.Module, scale: float = 0.5, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values so tests see a non-identity transform."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale)
    return module


def autograd_log_abs_det(function, x: torch.Tensor) -> torch.Tensor:
    """log|det J| per row, from the full autograd Jacobian of a row-wise map."""
    values = []
    for row in x:
        jacobian = torch.autograd.functional.jacobian(lambda r: function(r.unsqueeze(0))[0].squeeze(0), row)
        values.append(torch.linalg.slogdet(jacobian).logabsdet)
    return torch.stack(values)
