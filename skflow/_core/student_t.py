"""Student's t in torch: its tail probability, and the fixed map of a t variable to a standard normal one.

A ridge regression fitted on few rows knows its noise scale only roughly,
and its predictive distribution is a t, not a Gaussian: ``(y - y_hat) / (s
sqrt(1 + h))`` follows ``t_nu``, ``nu`` the residual degrees of freedom
(:mod:`skflow._linear_start`). :class:`StudentToNormal` maps such a t
variable to ``N(0, 1)`` through its distribution function, so that the
flow's latent stays the standard normal that quantiles, means and draws
assume. torch has no incomplete beta function, so the tail probability is
Lentz's continued fraction for it (Numerical Recipes' ``betacf``), in
float64 and in log space, accurate far into the tails.
"""

from __future__ import annotations

import math

import torch

from .transforms import Transform

# The continued fraction's iterations at most, and the relative change at which it has converged.
MAX_ITERATIONS = 300
TOLERANCE = 1e-15
# Newton steps of the inverse (each checked against a bracket, so it never leaves it).
INVERSE_STEPS = 60
_TINY = 1e-300
# The degrees of freedom the layer computes accurately: beyond, lgamma's differences lose the density's digits
# (a normal is then the model anyway).
DEGREES_OF_FREEDOM_RANGE = (1.0, 1e4)
# |u| at most this: u^2 stays finite in float64. Far beyond any flow's values (its tails take over well before).
MAX_ABS = 1e150
# Latents beyond this are inverted as this (the t's quantile there exceeds MAX_ABS for few degrees of freedom).
MAX_LATENT = 37.0


def _log_incomplete_beta(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """``log I_x(a, b)``, the regularized incomplete beta function, for ``0 < x < (a + 1) / (a + b + 2)``,
    where its continued fraction converges fast."""
    log_front = a * torch.log(x) + b * torch.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    c = torch.ones_like(x)
    d = 1 - (a + b) * x / (a + 1)
    d = 1 / torch.where(d.abs() < _TINY, torch.full_like(d, _TINY), d)
    fraction = d.clone()
    for m in range(1, MAX_ITERATIONS + 1):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / torch.where(d.abs() < _TINY, torch.full_like(d, _TINY), d)
            c = 1 + numerator / c
            c = torch.where(c.abs() < _TINY, torch.full_like(c, _TINY), c)
            step = c * d
            fraction = fraction * step
        if bool(((step - 1).abs() < TOLERANCE).all()):
            break
    return log_front + torch.log(fraction) - math.log(a)


def log_tail(u: torch.Tensor, nu: float) -> torch.Tensor:
    """``log P(T > |u|)`` for ``T ~ t_nu``: ``log(I_x(nu / 2, 1 / 2) / 2)`` with ``x = nu / (nu + u^2)``
    (``|u|`` clipped at ``MAX_ABS``)."""
    square = u.clamp(-MAX_ABS, MAX_ABS).square()
    x, one_minus_x = nu / (nu + square), square / (nu + square)
    a, b = nu / 2, 0.5
    # The fraction converges for x below (a + 1) / (a + b + 2); beyond, I_x(a, b) = 1 - I_{1 - x}(b, a).
    direct = x < (a + 1) / (a + b + 2)
    log_i = torch.empty_like(u)
    log_i[direct] = _log_incomplete_beta(x[direct], a, b)
    reflected = _log_incomplete_beta(one_minus_x[~direct].clamp_min(_TINY), b, a)  # u = 0: I_0 = 0
    log_i[~direct] = torch.log1p(-torch.exp(reflected).clamp_max(1.0))
    return math.log(0.5) + log_i


def log_density(u: torch.Tensor, nu: float) -> torch.Tensor:
    """``log t_nu(u)``."""
    normalizer = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    return normalizer - 0.5 * (nu + 1) * torch.log1p(u.square() / nu)


def _normal_log_density(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * z.square() - 0.5 * math.log(2 * math.pi)


def normal_quantile_of_log(log_p: torch.Tensor) -> torch.Tensor:
    """``Phi^-1(exp(log_p))`` for ``log_p <= log(1/2)``, also where ``exp(log_p)`` underflows: torch's ``ndtri``
    (or the tail's asymptote), then Newton steps on ``log Phi``."""
    representable = log_p > -700
    minus_two = -2 * log_p
    asymptote = -torch.sqrt((minus_two - torch.log(minus_two) - math.log(2 * math.pi)).clamp_min(0))
    z = torch.where(representable, torch.special.ndtri(torch.exp(log_p.clamp_min(-700))), asymptote)
    for _ in range(2):
        log_cdf = torch.special.log_ndtr(z)
        z = z - (log_cdf - log_p) / torch.exp(_normal_log_density(z) - log_cdf)
    return z


class StudentToNormal(Transform):
    """``z = Phi^-1(F_nu(u))`` elementwise: a ``t_nu`` variable ``u`` to a standard normal ``z``.

    log|det dz/du| = sum over features of ``log t_nu(u) - log phi(z)``. Fixed
    (``nu`` is a buffer), but differentiable, so that a flow with this layer
    can go on training (``partial_fit``): the values come from the continued
    fraction, the derivative ``dz/du = t_nu(u) / phi(z)`` is exact.
    """

    def __init__(self, degrees_of_freedom: float = DEGREES_OF_FREEDOM_RANGE[1]):
        super().__init__()
        self.register_buffer("degrees_of_freedom", torch.tensor([float(degrees_of_freedom)], dtype=torch.float64))

    @property
    def nu(self) -> float:
        return float(self.degrees_of_freedom)

    def check(self) -> None:
        """Raise ``ValueError`` unless the degrees of freedom lie in ``DEGREES_OF_FREEDOM_RANGE``."""
        low, high = DEGREES_OF_FREEDOM_RANGE
        if not low <= self.nu <= high:
            raise ValueError(f"Student's t noise has {self.nu!r} degrees of freedom; expected {low:g} to {high:g}")

    def _normal_of(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log t_nu(u) - log phi(z))`` of ``u``, computed in float64."""
        u64 = u.detach().double()
        tail_z = normal_quantile_of_log(log_tail(u64, self.nu))  # -|z|
        z = torch.where(u64 > 0, -tail_z, tail_z)
        log_slope = log_density(u64, self.nu) - _normal_log_density(z)
        return z.to(u.dtype), log_slope.to(u.dtype)

    def forward(self, x, context=None):
        z, log_slope = self._normal_of(x)
        if x.requires_grad:  # the values above, with the derivatives of z = z(x) attached
            slope = torch.exp(log_slope)
            z = z + (x - x.detach()) * slope
            log_slope = log_density(x, self.nu) - _normal_log_density(z)
        return z, log_slope.sum(1)

    def inverse(self, z, context=None):
        # Quantiles and means invert the same latent points for every row: each distinct value once.
        distinct, index = torch.unique(z.detach(), return_inverse=True)
        u = self._student_of(distinct.reshape(-1, 1))
        _, log_slope = self._normal_of(u)
        u, log_slope = u.reshape(-1)[index], log_slope.reshape(-1)[index]
        return u.to(z.dtype), (-log_slope.sum(1)).to(z.dtype)

    def _student_of(self, z: torch.Tensor) -> torch.Tensor:
        """``u = F_nu^-1(Phi(z))``: Newton's method for ``log u`` on ``log P(T > u)``, which is nearly linear in
        ``log u`` in a t's power-law tail, from ``u = |z|`` (a t's tail is the heavier: the root lies above);
        each step is kept inside the bracket that the steps before narrowed."""
        z64 = z.detach().double().clamp(-MAX_LATENT, MAX_LATENT)
        target = torch.special.log_ndtr(-z64.abs())
        low = torch.log(z64.abs().clamp_min(_TINY))
        high = torch.full_like(low, math.inf)
        # Start from the Cornish-Fisher expansion of the t's quantile in 1 / nu (Abramowitz and Stegun 26.7.5),
        # below the root in the tails, where the t's power law outgrows it.
        x, nu = z64.abs(), self.nu
        expansion = x + (x**3 + x) / (4 * nu) + (5 * x**5 + 16 * x**3 + 3 * x) / (96 * nu**2)
        log_u = torch.maximum(low, torch.log(expansion.clamp_min(_TINY)))
        for _ in range(INVERSE_STEPS):
            u = torch.exp(log_u)
            tail = log_tail(u, self.nu)
            gap = tail - target  # decreasing in u: > 0 below the root
            low, high = torch.where(gap > 0, log_u, low), torch.where(gap > 0, high, log_u)
            # d log P(T > u) / d log u = -u t(u) / P(T > u)
            newton = log_u + gap * torch.exp(tail - log_density(u, self.nu) - log_u)
            outside = torch.where(torch.isfinite(high), 0.5 * (low + high), low + 1)
            previous = log_u
            log_u = torch.where((newton >= low) & (newton <= high), newton, outside)
            if bool(((log_u - previous).abs() <= 1e-13).all()):  # u to 1e-13 relative
                break
        u = torch.where(z64 == 0, torch.zeros_like(z64), torch.exp(log_u))
        return torch.where(z64 >= 0, u, -u)
