"""Base distributions: the density of the latent ``z`` at the end of the flow."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
import torch
from torch import nn


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """Row-wise log-density of N(0, I)."""
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * math.log(2.0 * math.pi))


class StandardNormal(nn.Module):
    """N(0, I) on ``n_features`` dimensions: no parameters."""

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = int(n_features)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z)

    def sample(
        self, n_samples: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        return torch.randn(n_samples, self.n_features, generator=generator, device=device, dtype=dtype)


class GaussianMixtureBase(nn.Module):
    """A learnable Gaussian mixture with full covariances on ``n_features`` dimensions.

    Parameters: ``logits`` (K,) of the weights (``softmax``), ``means`` (K, d),
    and per component the lower-triangular Cholesky factor ``L_k`` of the
    *precision*, ``Sigma_k^{-1} = L_k^T L_k``, unconstrained: its strictly
    lower part is ``tril(precision_tril, -1)`` and its diagonal
    ``exp(precision_log_diag)``. So ``log N(z; mu_k, Sigma_k) = -|L_k (z -
    mu_k)|^2 / 2 + sum log diag L_k - d/2 log(2 pi)``: a matrix product per
    batch, no solve. ``L_k^T`` is scikit-learn's ``precisions_cholesky_[k]``
    (``covariance_type="full"``). A new module is a placeholder (equal weights,
    zero means, identity covariances): :meth:`set_mixture` or a state dict
    gives it its numbers.
    """

    # Above this many elements in the (n, K d) intermediate, log_prob loops over the components.
    _BATCHED_ELEMENTS = 1 << 22

    def __init__(self, n_components: int, n_features: int):
        super().__init__()
        self.n_components, self.n_features = int(n_components), int(n_features)
        k, d = self.n_components, self.n_features
        self.logits = nn.Parameter(torch.zeros(k))
        self.means = nn.Parameter(torch.zeros(k, d))
        self.precision_log_diag = nn.Parameter(torch.zeros(k, d))
        self.precision_tril = nn.Parameter(torch.zeros(k, d, d))

    @classmethod
    def from_mixture(
        cls, weights, means, precisions_cholesky, dtype: torch.dtype | None = None, **base_kwargs: Any
    ) -> GaussianMixtureBase:
        """A mixture with scikit-learn's ``weights_``, ``means_`` and ``precisions_cholesky_`` (full
        covariances), its parameters in ``dtype`` (torch's default dtype if None); ``base_kwargs`` go to the
        constructor (a subclass's own, such as ``degrees_of_freedom``)."""
        means_array = np.asarray(means, dtype=np.float64)
        base = cls(*means_array.shape, **base_kwargs).to(dtype or torch.get_default_dtype())
        base.set_mixture(weights, means_array, precisions_cholesky)
        return base

    @torch.no_grad()
    def set_mixture(self, weights, means, precisions_cholesky) -> None:
        """Set the numbers (in the parameters' dtype) from weights (K,), means (K, d) and upper-triangular
        precision Cholesky factors (K, d, d), as ``GaussianMixture(covariance_type="full")`` fits them."""
        weights = np.asarray(weights, dtype=np.float64)
        means = np.asarray(means, dtype=np.float64)
        upper = np.asarray(precisions_cholesky, dtype=np.float64)
        k, d = self.n_components, self.n_features
        if weights.shape != (k,) or means.shape != (k, d) or upper.shape != (k, d, d):
            raise ValueError(
                f"a mixture of {k} component(s) on {d} feature(s) takes weights ({k},), means ({k}, {d}) and "
                f"precisions_cholesky ({k}, {d}, {d}); got {weights.shape}, {means.shape}, {upper.shape}"
            )
        lower = np.swapaxes(upper, 1, 2)
        diagonal = np.diagonal(lower, axis1=1, axis2=2)
        if not (np.all(weights > 0) and np.all(diagonal > 0) and np.isfinite(lower).all() and np.isfinite(means).all()):
            raise ValueError("the mixture needs positive weights and finite, positive-diagonal Cholesky factors")
        for parameter, value in (
            (self.logits, np.log(weights / weights.sum())),
            (self.means, means),
            (self.precision_log_diag, np.log(diagonal)),
            (self.precision_tril, np.tril(lower, -1)),
        ):
            parameter.copy_(torch.as_tensor(value, dtype=parameter.dtype))

    @staticmethod
    def precisions_cholesky_from_covariances(covariances) -> np.ndarray:
        """scikit-learn's ``precisions_cholesky_`` (upper triangular) of full covariance matrices (K, d, d)."""
        lower_cov = np.linalg.cholesky(np.asarray(covariances, dtype=np.float64))
        return np.swapaxes(np.linalg.inv(lower_cov), 1, 2)

    def precision_cholesky(self) -> torch.Tensor:
        """The lower-triangular ``L_k`` (K, d, d) with ``Sigma_k^{-1} = L_k^T L_k``."""
        return torch.tril(self.precision_tril, -1) + torch.diag_embed(self.precision_log_diag.exp())

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """(n, K): ``log w_k + log N(z; mu_k, Sigma_k)``."""
        constant = self._log_weights_and_determinants() - 0.5 * self.n_features * math.log(2.0 * math.pi)
        return constant - 0.5 * self.mahalanobis(z)

    def _log_weights_and_determinants(self) -> torch.Tensor:
        """(K,): ``log w_k + sum log diag L_k``, where ``sum log diag L_k = -log|Sigma_k| / 2``."""
        return torch.log_softmax(self.logits, 0) + self.precision_log_diag.sum(-1)

    def mahalanobis(self, z: torch.Tensor) -> torch.Tensor:
        """(n, K): the squared Mahalanobis distance ``|L_k (z - mu_k)|^2`` of each row to each component."""
        lower = self.precision_cholesky()
        shift = (lower @ self.means.unsqueeze(-1)).squeeze(-1)  # (K, d): L_k mu_k
        k, d = self.n_components, self.n_features
        if z.shape[0] * k * d <= self._BATCHED_ELEMENTS:
            # Every component's L_k z in one (n, d) x (d, K d) product: a batched product of K small
            # (n, d) x (d, d) ones costs several times more, forward and backward.
            whitened = z @ lower.reshape(k * d, d).T - shift.reshape(-1)  # (n, K d): block k is L_k (z - mu_k)
            return whitened.square().view(-1, k, d).sum(-1)
        # Bounded memory for large inference batches.
        return torch.stack([(z @ lower[k].T - shift[k]).square().sum(-1) for k in range(self.n_components)], dim=1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log sum_k w_k N(z; mu_k, Sigma_k)`` per row (log-sum-exp over the components)."""
        return torch.logsumexp(self.component_log_prob(z), dim=1)

    @torch.no_grad()
    def sample(
        self, n_samples: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """Components drawn with ``torch.multinomial``, then ``mu_k + L_k^{-1} eps``; all from ``generator``."""
        component, offset = self._component_offsets(n_samples, generator, dtype, device)
        return self.means.to(device=device, dtype=dtype)[component] + offset

    def _component_offsets(
        self, n_samples: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Drawn components (n,) and, for each, a draw ``L_k^{-1} eps`` of N(0, Sigma_k) (n, d)."""
        probs = torch.softmax(self.logits.to(device=device, dtype=torch.float64), 0)
        component = torch.multinomial(probs, n_samples, replacement=True, generator=generator)
        eps = torch.randn(n_samples, self.n_features, generator=generator, device=device, dtype=dtype)
        lower = self.precision_cholesky().to(device=device, dtype=dtype)[component]  # (n, d, d)
        return component, torch.linalg.solve_triangular(lower, eps.unsqueeze(-1), upper=False).squeeze(-1)


class StudentTMixtureBase(GaussianMixtureBase):
    """A mixture of multivariate Student t components, each with the covariance ``Sigma_k`` of its Gaussian.

    The parameters are :class:`GaussianMixtureBase`'s; ``degrees_of_freedom``
    (``nu > 2``, shared by the components, fixed) sets how heavy the tails
    are. Component k is ``t_nu(mu_k, S_k)`` with scale matrix ``S_k = Sigma_k
    (nu - 2) / nu``, so that its covariance is ``Sigma_k``, and with the
    Mahalanobis distance ``m = |L_k (z - mu_k)|^2`` under ``Sigma_k``::

        log t = lgamma((nu + d) / 2) - lgamma(nu / 2) - d / 2 log(pi (nu - 2))
                + sum log diag L_k - (nu + d) / 2 log(1 + m / (nu - 2)).

    A Gaussian's log-density falls as ``-m / 2``, a t's, for large ``m``, as
    ``-(nu + d) / 2 log m``: one row far out costs a Gaussian mixture tens of
    nats more than the t it came from (a 5-D t with 4 degrees of freedom in
    the density benchmark).
    """

    def __init__(self, n_components: int, n_features: int, degrees_of_freedom: float):
        super().__init__(n_components, n_features)
        nu = degrees_of_freedom
        if not (isinstance(nu, Real) and not isinstance(nu, bool) and math.isfinite(nu) and nu > 2.0):
            raise ValueError(f"degrees_of_freedom must be a finite number above 2, got {degrees_of_freedom!r}")
        self.degrees_of_freedom = float(nu)

    def extra_repr(self) -> str:
        sizes = f"n_components={self.n_components}, n_features={self.n_features}"
        return f"{sizes}, degrees_of_freedom={self.degrees_of_freedom:g}"

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """(n, K): ``log w_k + log t_nu(z; mu_k, Sigma_k (nu - 2) / nu)``."""
        nu, d = self.degrees_of_freedom, self.n_features
        normalizer = math.lgamma((nu + d) / 2) - math.lgamma(nu / 2) - 0.5 * d * math.log(math.pi * (nu - 2))
        # log(1 + m / (nu - 2)) without forming m / (nu - 2), which overflows float32 first as nu nears 2.
        decay = torch.log(self.mahalanobis(z) + (nu - 2)) - math.log(nu - 2)
        return self._log_weights_and_determinants() + normalizer - 0.5 * (nu + d) * decay

    @torch.no_grad()
    def sample(
        self, n_samples: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """``mu_k + L_k^{-1} eps sqrt((nu - 2) / g)`` with ``g ~ chi^2_nu``; all from ``generator``.

        torch draws gamma variates only from its global generator, so ``g`` comes
        from NumPy, seeded by a draw from ``generator``.
        """
        component, offset = self._component_offsets(n_samples, generator, dtype, device)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device))
        chi_square = 2.0 * np.random.default_rng(seed).standard_gamma(self.degrees_of_freedom / 2, n_samples)
        radial = torch.as_tensor(np.sqrt((self.degrees_of_freedom - 2) / chi_square), dtype=dtype, device=device)
        return self.means.to(device=device, dtype=dtype)[component] + offset * radial.unsqueeze(-1)
