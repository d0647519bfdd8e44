"""A one-target flow's tails beyond its training targets' widened range: exponential, with the flow's mass.

Beyond its training targets a flow extrapolates, and through a target's
``asinh`` tail or a bound's ``exp`` its extrapolation grows exponentially.
One data-entry error among 100 training rows (``y = 100``, the rest within
-2.5 to 3) made the default ensemble's 0.9975 quantile exceed 1,000 on 177 of
500 test rows, 2e24 at most, and its CRPS 1e17 (docs/regression_design_notes.md,
"Tails beyond the training targets"). So the flow's distribution is kept only
on a range the data vouch for. With ``[min, max]`` the training targets' range
(``target_range_``), ``w = max - min`` and the splice points ``a = min - w``,
``b = max + w``, the flow's density ``p`` and distribution function ``F``:

    p~(y) = p(y)                                  for a <= y <= b,
    p~(y) = (1 - F(b)) exp(-(y - b) / w) / w      for y > b,
    p~(y) = F(a) exp(-(a - y) / w) / w            for y < a.

Each tail keeps the flow's mass, so ``p~`` is normalized and equals ``p`` on
every training row (training never sees the splice); only the shape of the
mass beyond changes. Quantiles and draws stay exact by inversion:
``q~(tau) = b + w log((1 - F(b)) / (1 - tau))`` for ``tau > F(b)``. Where a
bound of the support (``bounds``) lies beyond a splice point, the exponential
tail is cut there and renormalized (its mass still the flow's); where it lies
at or inside one, that side keeps the flow's tail, which the bound ends.
Several targets keep the flows' tails: their joint distribution has no such
split.

A bound that ``bounds="auto"`` inferred (``-c`` of the log scale
``log(y + c)``, ``c`` of its mirror image ``-log(c - y)``, or the logit
scale's ``-min`` and ``2 - max``:
:mod:`skflow._target_scale`) is no such limit: a target positive on every
training row need not be on new ones. There the flows model ``t(y)``, the
log or the logit, and the splice points are a width beyond the training
range on that scale, ``t^-1(t(min) - w_t)`` (and ``t^-1(t(max) + w_t)``
below an inferred upper bound), ``w_t = t(max) - t(min)``: inside the
support, so the exponential runs on beyond them, uncut, and the support is
the whole line (:func:`support_bounds`). The points lie near the bounds:
on the log scale a width below the data is ``-c + (min + c)^2 / (max + c)``.
So a target that piles up near its smallest values (rates of a few
percent) keeps that mass where the flow put it, and only the little beyond
the point spreads out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import log_ndtr

from ._core import ToUnbounded
from ._target_scale import is_auto

# ``latent(rows, points)``: the standardized latent ``f(points[i]; x) / s`` of context row ``rows[i]``, so that the
# flow's ``F(points[i]) = Phi(latent)``.
Latent = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Tail:
    """One spliced side: its splice ``point``, ``sign`` (+1 above, -1 below: ``distance = sign (y - point)``),
    ``width`` ``w`` (the exponential's scale) and ``room``, the distance from the point to the bound (inf:
    none), where the exponential is cut."""

    point: float
    sign: int
    width: float
    room: float

    def distance(self, y: np.ndarray) -> np.ndarray:
        return self.sign * (y - self.point)

    def log_mass(self, latent: Latent, rows: np.ndarray) -> np.ndarray:
        """The flow's log-mass beyond the point at context rows ``rows``: ``log(1 - F(b))`` or ``log F(a)``, each
        exact in its own tail."""
        if rows.size == 0:
            return np.empty(0)
        return log_ndtr(-self.sign * latent(rows, np.full(rows.size, self.point)))

    def _log_cut(self) -> float:
        """``log(1 - exp(-room / w))``: the log-mass of the uncut exponential inside the room (0 if no bound)."""
        return float(np.log1p(-np.exp(-self.room / self.width)))

    def log_mass_beyond(self, log_mass: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """``log`` of the spliced tail's mass beyond ``distance`` (0 <= distance <= room)."""
        with np.errstate(divide="ignore"):  # at the bound: no mass beyond
            inside_room = np.log1p(-np.exp(-(self.room - distance) / self.width))
        return log_mass - distance / self.width + inside_room - self._log_cut()

    def log_density(self, log_mass: np.ndarray, distance: np.ndarray) -> np.ndarray:
        return log_mass - distance / self.width - np.log(self.width) - self._log_cut()

    def distance_of(self, log_mass: np.ndarray, log_tail_level: np.ndarray) -> np.ndarray:
        """The distance beyond which the spliced tail holds the mass ``exp(log_tail_level)`` (``1 - tau`` above,
        ``tau`` below): inverse of :meth:`log_mass_beyond`. Clipped to ``[0, room]``: a level at the point,
        which rounding put beyond it, stays there."""
        log_fraction = np.minimum(log_tail_level - log_mass, 0.0)
        distance = -self.width * np.logaddexp(-self.room / self.width, log_fraction + self._log_cut())
        return np.clip(distance, 0.0, self.room)


def splice_tails(model) -> list[Tail]:
    """The spliced sides of a fitted one-target flow ``model``: none for several targets, a constant target,
    or a model saved before ``target_range_``; a side whose bound lies at or inside its point keeps the flow's."""
    if model.n_targets_ != 1:
        return []
    low, high = (float(value) for value in model.target_range_[:, 0])
    width = high - low
    if not (np.isfinite(width) and width > 0):
        return []
    lower_bound, upper_bound = float(model.low_[0]), float(model.high_[0])
    below = Tail(low - width, -1, width, (low - width) - lower_bound)
    above = Tail(high + width, 1, width, upper_bound - (high + width))
    if is_auto(model.bounds) and (np.isfinite(lower_bound) or np.isfinite(upper_bound)):
        # Inferred, not declared: the tails run on beyond them.
        lower_point, upper_point = _points_on_the_modelled_scale(low, high, lower_bound, upper_bound)
        if np.isfinite(lower_bound):
            below = Tail(lower_point, -1, width, np.inf)
        if np.isfinite(upper_bound):
            above = Tail(upper_point, 1, width, np.inf)
    return [tail for tail in (below, above) if tail.room > 0]


def _points_on_the_modelled_scale(low: float, high: float, lower: float, upper: float) -> tuple[float, float]:
    """The splice points a width beyond the training range ``[low, high]`` on the scale ``t`` the flows model
    under inferred bounds (their bounds map, :class:`skflow._core.ToUnbounded`: ``log(y - lower)``, or the logit
    on ``(lower, upper)``): ``t^-1(t(low) - w_t)`` and ``t^-1(t(high) + w_t)``, ``w_t = t(high) - t(low)``;
    strictly inside the bounds."""
    to_scale = ToUnbounded(torch.tensor([lower], dtype=torch.float64), torch.tensor([upper], dtype=torch.float64))
    with torch.no_grad():
        t_low, t_high = to_scale(torch.tensor([[low], [high]], dtype=torch.float64))[0][:, 0].tolist()
        beyond = torch.tensor([[2 * t_low - t_high], [2 * t_high - t_low]], dtype=torch.float64)
        below, above = to_scale.inverse(beyond)[0][:, 0].tolist()
    return max(below, np.nextafter(lower, np.inf)), min(above, np.nextafter(upper, -np.inf))


def support_bounds(model, tails: list[Tail]) -> tuple[np.ndarray, np.ndarray]:
    """The support of ``model``'s distribution with its ``tails`` spliced: ``low_`` and ``high_``, open on a side
    whose tail is uncut (a bound that ``bounds="auto"`` inferred)."""
    low, high = model.low_.copy(), model.high_.copy()
    for tail in tails:
        if np.isinf(tail.room):
            (low if tail.sign < 0 else high)[0] = tail.sign * np.inf
    return low, high


def spliced_log_density(tails: list[Tail], latent: Latent, y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``log p~(y)`` from the flow's ``values`` = ``log p(y)``, ``y[i]`` given context row ``i``."""
    values = values.copy()
    for tail in tails:
        beyond = np.flatnonzero(tail.distance(y) > 0)
        values[beyond] = tail.log_density(tail.log_mass(latent, beyond), tail.distance(y[beyond]))
    return values


def spliced_cdf_and_density(
    tails: list[Tail], latent: Latent, y: np.ndarray, rows: np.ndarray, cdf: np.ndarray, density: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``F~(y)`` and ``p~(y)`` from the flow's ``cdf`` and ``density`` at ``y[i]``, given context row ``rows[i]``.

    In the mixture's quantile search the masses are recomputed at each step, for the points beyond only:
    almost always none."""
    cdf, density = cdf.copy(), density.copy()
    for tail in tails:
        beyond = np.flatnonzero(tail.distance(y) > 0)
        log_mass, distance = tail.log_mass(latent, rows[beyond]), tail.distance(y[beyond])
        mass_beyond = np.exp(tail.log_mass_beyond(log_mass, distance))
        cdf[beyond] = 1.0 - mass_beyond if tail.sign > 0 else mass_beyond
        density[beyond] = np.exp(tail.log_density(log_mass, distance))
    return cdf, density


def spliced_quantiles(tails: list[Tail], latent: Latent, levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``q~(tau)`` (n_rows, n_levels) from the flow's quantiles ``values`` at ``levels``: those beyond a splice
    point (exactly the levels beyond its ``F``, the map being increasing) from the exponential tail."""
    levels = np.broadcast_to(levels, values.shape)
    return _spliced_values(tails, latent, values, np.log(levels), np.log1p(-levels))


def spliced_inverse(tails: list[Tail], latent: Latent, values: np.ndarray, standard_latent: np.ndarray) -> np.ndarray:
    """``p~``'s inverse (n_rows, n_points) at the standard normal points ``standard_latent`` (draws, or a
    quadrature's nodes), from the flow's ``values`` there, ``f^-1(s u)``: each keeps its level ``Phi(u)``."""
    standard_latent = np.broadcast_to(standard_latent, values.shape)
    return _spliced_values(tails, latent, values, log_ndtr(standard_latent), log_ndtr(-standard_latent))


def _spliced_values(
    tails: list[Tail], latent: Latent, values: np.ndarray, log_levels: np.ndarray, log_upper_levels: np.ndarray
) -> np.ndarray:
    """Values (n_rows, n_points) at levels ``tau`` given as ``log tau`` and ``log(1 - tau)``: the flow's beyond a
    splice point replaced by ``p~``'s."""
    values = values.copy()
    for tail in tails:
        beyond = tail.distance(values) > 0
        rows = np.flatnonzero(beyond.any(axis=1))
        log_mass = tail.log_mass(latent, rows)[:, None]
        log_tail_levels = (log_upper_levels if tail.sign > 0 else log_levels)[rows]
        replaced = tail.point + tail.sign * tail.distance_of(log_mass, log_tail_levels)
        values[rows] = np.where(beyond[rows], replaced, values[rows])
    return values
