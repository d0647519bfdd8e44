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
# Below this |u|^2 / d, the radial map is its linear part at the center (MultivariateStudentToNormal).
CENTER = 1e-6
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


def _log_beta_tail(x: torch.Tensor, one_minus_x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """``log I_x(a, b)`` for ``0 <= x <= 1``, given ``x`` and ``1 - x`` (each accurate where it is small)."""
    direct = x < (a + 1) / (a + b + 2)
    log_i = torch.empty_like(x)
    log_i[direct] = _log_incomplete_beta(x[direct].clamp_min(_TINY), a, b)
    reflected = _log_incomplete_beta(one_minus_x[~direct].clamp_min(_TINY), b, a)
    log_i[~direct] = torch.log1p(-torch.exp(reflected).clamp_max(1.0))
    return log_i


def _solve_log_tail(log_tail_of, log_density_of, target: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """The ``v > 0`` at which the decreasing ``log_tail_of(v) = log P(V > v)`` is ``target``: Newton's method on
    ``log v`` (``d log P(V > v) / d log v = -v p(v) / P(V > v)``, ``log_density_of`` giving ``log p``) from
    ``start``, each step kept inside the bracket that the steps before narrowed."""
    log_v = torch.log(start.clamp_min(_TINY))
    low, high = torch.full_like(log_v, -math.inf), torch.full_like(log_v, math.inf)
    for _ in range(INVERSE_STEPS):
        v = torch.exp(log_v)
        tail = log_tail_of(v)
        gap = tail - target  # > 0: v below the root
        low, high = torch.where(gap > 0, log_v, low), torch.where(gap > 0, high, log_v)
        newton = log_v + gap * torch.exp(tail - log_density_of(v) - log_v)
        bounded = torch.isfinite(low) & torch.isfinite(high)
        fallback = torch.where(bounded, 0.5 * (low + high), torch.where(torch.isfinite(low), low + 1, high - 1))
        previous = log_v
        log_v = torch.where((newton >= low) & (newton <= high), newton, fallback)
        if bool(((log_v - previous).abs() <= 1e-13).all()):
            break
    return torch.exp(log_v)


def log_tail(u: torch.Tensor, nu: float) -> torch.Tensor:
    """``log P(T > |u|)`` for ``T ~ t_nu``: ``log(I_x(nu / 2, 1 / 2) / 2)`` with ``x = nu / (nu + u^2)``
    (``|u|`` clipped at ``MAX_ABS``)."""
    square = u.clamp(-MAX_ABS, MAX_ABS).square()
    return math.log(0.5) + _log_beta_tail(nu / (nu + square), square / (nu + square), nu / 2, 0.5)


def log_density(u: torch.Tensor, nu: float) -> torch.Tensor:
    """``log t_nu(u)``."""
    return _log_t_of_square(u.square(), nu, 1)


def _log_t_of_square(square: torch.Tensor, nu: float, d: int) -> torch.Tensor:
    """``log t_nu(u)`` of a standard ``d``-variate t, from ``|u|^2``."""
    normalizer = math.lgamma((nu + d) / 2) - math.lgamma(nu / 2) - 0.5 * d * math.log(nu * math.pi)
    return normalizer - 0.5 * (nu + d) * torch.log1p(square / nu)


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
        """``u = F_nu^-1(Phi(z))``: :func:`_solve_log_tail` on ``log P(T > u)``, which is nearly linear in
        ``log u`` in a t's power-law tail."""
        z64 = z.detach().double().clamp(-MAX_LATENT, MAX_LATENT)
        # Start from the Cornish-Fisher expansion of the t's quantile in 1 / nu (Abramowitz and Stegun 26.7.5),
        # below the root in the tails, where the t's power law outgrows it.
        x, nu = z64.abs(), self.nu
        expansion = x + (x**3 + x) / (4 * nu) + (5 * x**5 + 16 * x**3 + 3 * x) / (96 * nu**2)
        u = _solve_log_tail(
            lambda u: log_tail(u, nu),
            lambda u: log_density(u, nu),
            torch.special.log_ndtr(-x),
            torch.maximum(x, expansion),
        )
        u = torch.where(z64 == 0, torch.zeros_like(z64), u)
        return torch.where(z64 >= 0, u, -u)


class MultivariateStudentToNormal(StudentToNormal):
    """A standard multivariate ``t_nu`` vector ``u`` (d >= 2 features) to a standard normal ``z``, radially:
    ``z = u |z| / |u|`` with ``|z|^2`` the chi-square quantile of the level of ``|u|^2 / d``, an ``F(d, nu)``
    variable. Being radial, it treats every direction alike: the density does not depend on the features'
    order (independent t's per feature would).

    log|det dz/du| = ``log t_nu(u) - log phi(z)`` (the map carries the one density to the other). Fixed and
    differentiable as :class:`StudentToNormal`: the derivative is ``g I + (rho' - g) e e^T``, ``g = |z| /
    |u|``, ``e = u / |u|``, ``rho' = exp(log-det) / g^(d - 1)``.
    """

    def _log_t(self, square: torch.Tensor, d: int) -> torch.Tensor:
        return _log_t_of_square(square, self.nu, d)

    def _log_f_tail(self, s: torch.Tensor, d: int) -> torch.Tensor:
        """``log P(S > s)``, ``S ~ F(d, nu)``: ``log I_x(nu / 2, d / 2)``, ``x = nu / (nu + d s)``."""
        nu = self.nu
        return _log_beta_tail(nu / (nu + d * s), d * s / (nu + d * s), nu / 2, d / 2)

    def _log_f_density(self, s: torch.Tensor, d: int) -> torch.Tensor:
        nu, a, b = self.nu, d / 2, self.nu / 2
        log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
        return a * math.log(d / nu) + (a - 1) * torch.log(s) - (a + b) * torch.log1p(d * s / nu) - log_beta

    @staticmethod
    def _log_chi_square_tail(q: torch.Tensor, d: int) -> torch.Tensor:
        """``log P(Q > q)``, ``Q ~ chi^2_d``; past float64's underflow, the incomplete gamma's asymptote."""
        a, x = d / 2, q / 2
        value = torch.special.gammaincc(torch.full_like(x, a), x)
        below = torch.special.gammainc(torch.full_like(x, a), x)
        asymptote = (a - 1) * torch.log(x) - x - math.lgamma(a) + torch.log1p((a - 1) / x)
        # Near 1 the tail is 1 less the (accurate) lower part; far out, past underflow, the asymptote.
        log_value = torch.where(below < 0.5, torch.log1p(-below), torch.log(value.clamp_min(_TINY)))
        return torch.where(value > _TINY, log_value, asymptote)

    @staticmethod
    def _chi_square_start(log_level: torch.Tensor, d: int) -> torch.Tensor:
        """A start for the chi-square quantile at ``log P(Q > q) = log_level``: the tail's asymptote solved
        twice by substitution (far out, Newton on ``log q`` would creep from a poor start)."""
        a = d / 2
        x = (-log_level).clamp_min(1.0)
        for _ in range(2):
            x = (-log_level + (a - 1) * torch.log(x) - math.lgamma(a)).clamp_min(1.0)
        return 2 * x

    @staticmethod
    def _log_chi_square_density(q: torch.Tensor, d: int) -> torch.Tensor:
        a = d / 2
        return (a - 1) * torch.log(q) - q / 2 - a * math.log(2) - math.lgamma(a)

    def _center_gain(self, d: int) -> float:
        """``|z| / |u|`` at the center, ``(t_nu(0) / phi(0))^(1 / d)``: near it the map is this linear one (to
        ``|u|^2``), which the tails there, all but 1, cannot resolve."""
        zero = torch.zeros(1, dtype=torch.float64)
        return math.exp((float(self._log_t(zero, d)) + 0.5 * d * math.log(2 * math.pi)) / d)

    def _radii(self, u_square: torch.Tensor, d: int) -> torch.Tensor:
        """``|z|^2`` of ``|u|^2`` (float64)."""
        s = u_square.clamp(_TINY, MAX_ABS) / d
        target = self._log_f_tail(s, d)
        start = torch.where(target < -10, self._chi_square_start(target, d), d * s)
        z_square = _solve_log_tail(
            lambda q: self._log_chi_square_tail(q, d), lambda q: self._log_chi_square_density(q, d), target, start
        )
        return torch.where(s < CENTER, self._center_gain(d) ** 2 * u_square, z_square)

    def forward(self, x, context=None):
        d = x.shape[1]
        u = x.detach().double()
        u_square = u.square().sum(1)
        z_square = self._radii(u_square, d)
        center = u_square / d < CENTER  # the linear map there, also at u = 0
        gain = torch.where(center, self._center_gain(d), torch.sqrt(z_square / u_square.clamp_min(_TINY)))
        log_det = self._log_t(u_square, d) + 0.5 * z_square + 0.5 * d * math.log(2 * math.pi)
        z, log_det = (u * gain[:, None]).to(x.dtype), log_det.to(x.dtype)
        if x.requires_grad:  # the values above, with the derivatives of z = z(x) attached
            g = gain.to(x.dtype)[:, None]
            radial_slope = torch.exp(log_det - (d - 1) * torch.log(g[:, 0]))[:, None]
            tiny = torch.finfo(x.dtype).tiny
            direction = x.detach() / torch.sqrt(x.detach().square().sum(1, keepdim=True)).clamp_min(tiny)
            delta = x - x.detach()
            z = z + g * delta + (radial_slope - g) * (delta * direction).sum(1, keepdim=True) * direction
            log_det = self._log_t(x.square().sum(1), d) + 0.5 * z.square().sum(1) + 0.5 * d * math.log(2 * math.pi)
        return z, log_det

    def inverse(self, z, context=None):
        d = z.shape[1]
        z64 = z.detach().double()
        z_square = z64.square().sum(1).clamp(_TINY, MAX_LATENT**2 * d)
        target = self._log_chi_square_tail(z_square, d)
        s = _solve_log_tail(lambda s: self._log_f_tail(s, d), lambda s: self._log_f_density(s, d), target, z_square / d)
        # The forward's switch, s < CENTER, where z^2 = gain^2 d s.
        u_square = torch.where(
            z_square < self._center_gain(d) ** 2 * d * CENTER, z_square / self._center_gain(d) ** 2, d * s
        )
        u = z64 * torch.sqrt(u_square / z_square)[:, None]
        log_det = self._log_t(u_square, d) + 0.5 * z_square + 0.5 * d * math.log(2 * math.pi)
        return u.to(z.dtype), (-log_det).to(z.dtype)
