"""Where a mixture-based flow starts: the mixture, and whether long tails go through asinh before it.

A column reaching beyond ``tail_bound`` gets a fixed asinh on that side
(:class:`~skflow._core.AsinhTails`), so that the splines can shape its tail.
Under a Gaussian-mixture base that is a choice, not a given: on small sets of
skewed parts of a whole (``compositional_8d`` in the benchmark) a mixture on the
standardized columns scores 0.2 nats a row better held-out than one on the
asinh'd columns, and the flow keeps that start. So the mixture is chosen both
ways, by the same cross-validation on the same rows, and the asinh is kept
only where it scores better, its log-determinant counted on each held-out row.

A third start replaces the asinh by a Yeo-Johnson power map of every
continuous column (:class:`~skflow._core.YeoJohnson`; lambdas fitted per column
by maximum likelihood of a normal, as scikit-learn's ``PowerTransformer`` fits
them, kept in [0, 2] where the map is onto the real line), so that skewed
columns reach the mixture nearly symmetric: on breast_cancer's 30 skewed
measurements a mixture after the map scores 4.8 nats a row better held-out
than the best start without it. Two such maps are tried, each column's map
about its mean, and each column's most likely map including those from a
threshold beyond the data (:mod:`skflow._power_map`: a log-normal column
becomes exactly normal); a map is kept only where it clearly beats the best
start without one on the same held-out rows (:func:`power_gain`), and of
two that do, the one that beats it by more. On large data a map that loses
badly with the best start's own mixture is not given a selection of its own
(``HOPELESS_MAP_LOSS``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ._core import AsinhTails
from ._mixture_init import (
    CROSS_VALIDATION_MAX_ROWS,
    Candidate,
    choose_degrees_of_freedom,
    choose_mixture,
    held_out_rows,
    mixture_rows,
    quiet_single_threaded,
    selection_splits,
)
from ._power_map import MEAN, PowerMap, fit_most_likely_map, fit_power_map
from ._preprocessing import Preprocessing, make_augment

# On large data a map is first judged with the best start's own mixture (number of components, covariance
# type, floor) on the mapped rows, and not given a selection of its own when it loses by more than this many
# nats a row: on the benchmark's large sets the two judgements differed by at most 0.016 nats where a map
# came near winning, and by 0.1 on deterministic_7d, where both maps lose by about 3 nats a row (and their
# selections took 9 of the start's 20 s).
HOPELESS_MAP_LOSS = 0.5


@dataclass
class MixtureStart:
    preprocessing: Preprocessing  # the fitted one, or the same without asinh tails
    candidate: Candidate
    every_row: np.ndarray  # the rows ``candidate`` was chosen on: every training row, preprocessed
    degrees_of_freedom: float | None = None  # of Student t components in place of the Gaussians; None: Gaussians


def choose_start(
    preprocessing: Preprocessing, train_x: torch.Tensor, weights: np.ndarray, seed: int, device: torch.device
) -> MixtureStart:
    """The mixture chosen on every training row ``train_x`` (preprocessed by ``preprocessing``): with its
    asinh tails, without them, or with a Yeo-Johnson map instead, whichever scores best held-out in the
    standardized units; then its components Gaussian or Student t (:func:`choose_degrees_of_freedom`)."""
    start = _chosen_map(preprocessing, train_x, weights, seed, device)
    return replace(start, degrees_of_freedom=choose_degrees_of_freedom(start.candidate, start.every_row, seed))


def _chosen_map(
    preprocessing: Preprocessing, train_x: torch.Tensor, weights: np.ndarray, seed: int, device: torch.device
) -> MixtureStart:
    every_row = mixture_rows(train_x, weights, 0.0, seed, make_augment(preprocessing, device))
    candidate, score = choose_mixture(every_row, seed)
    if not np.isfinite(score):
        return MixtureStart(preprocessing, candidate, every_row)
    starts = [(score, MixtureStart(preprocessing, candidate, every_row))]
    plain, plain_every_row = preprocessing, every_row
    if (preprocessing.lower_tails | preprocessing.upper_tails).any():
        tails = AsinhTails(torch.from_numpy(preprocessing.lower_tails), torch.from_numpy(preprocessing.upper_tails))
        tails = tails.double().to(device)
        plain = preprocessing.without_tails()

        @torch.no_grad()
        def without_tails(rows: torch.Tensor) -> torch.Tensor:
            return tails.inverse(rows.double())[0].float()

        plain_every_row = mixture_rows(train_x, weights, 0.0, seed, make_augment(plain, device), without_tails)
        # The same rows in both: row i of every_row is asinh(plain_every_row[i]), so its log-det converts
        # the asinh'd score to standardized units.
        starts[0] = (score + _held_out_log_det(tails, plain_every_row, seed, device), starts[0][1])
        plain_candidate, plain_score = choose_mixture(plain_every_row, seed)
        starts.append((plain_score, MixtureStart(plain, plain_candidate, plain_every_row)))
    best_score, best = max(starts, key=lambda scored: scored[0] if np.isfinite(scored[0]) else -np.inf)
    continuous = ~(preprocessing.constant | preprocessing.dequantized)
    if not np.isfinite(best_score):
        return best
    # Each map is judged against the best start without one; the better of those that clearly win is kept.
    about_the_mean = [MEAN if column else None for column in continuous]
    maps = [(about_the_mean, fit_power_map(plain_every_row, about_the_mean))]
    likely_families, likely_map = fit_most_likely_map(plain_every_row, continuous)
    if likely_families != about_the_mean:
        maps.append((likely_families, likely_map))
    kept, kept_gain = best, -np.inf
    for families, power in maps:
        if not power.changes_anything():
            continue
        first_look = None
        if len(plain_every_row) > CROSS_VALIDATION_MAX_ROWS:
            first_look = power_gain(plain_every_row, families, best.candidate, best, seed)
            if first_look.mean() < -HOPELESS_MAP_LOSS:
                continue
        start = _power_start(plain, plain_every_row, power, seed)
        if first_look is not None and start.candidate == best.candidate:
            gain = first_look
        else:
            gain = power_gain(plain_every_row, families, start.candidate, best, seed)
        if gain.mean() > max(2 * gain.std() / np.sqrt(len(gain)), kept_gain):
            kept, kept_gain = start, gain.mean()
    return kept


def _power_start(plain: Preprocessing, plain_every_row: np.ndarray, power: PowerMap, seed: int) -> MixtureStart:
    # The training noise only touches columns the map leaves alone, so the same rows map across.
    power_every_row = power(plain_every_row)[0]
    candidate, _ = choose_mixture(power_every_row, seed)
    return MixtureStart(plain.with_power(power), candidate, power_every_row)


def _held_out_log_det(transform, plain_rows: np.ndarray, seed: int, device: torch.device) -> float:
    """``transform``'s log-det at ``plain_rows`` averaged over the held-out rows of the mixture's selection."""
    with torch.no_grad():
        log_det = transform(torch.from_numpy(plain_rows).to(device))[1].cpu().numpy()
    return float(np.mean([log_det[test].mean() for _, test in selection_splits(len(log_det), seed)]))


def power_gain(
    plain_rows: np.ndarray, families: list[str | None], candidate: Candidate, other: MixtureStart, seed: int
) -> np.ndarray:
    """Per held-out row of the mixture's selection, in standardized units: the log-likelihood of
    ``candidate`` after the Yeo-Johnson map of the columns' ``families`` minus that of the ``other`` start.

    The maps are refitted on each split's training rows, so the held-out
    rows judge them too: fitted on every row, on 16 rows of 6 columns the map
    looked 0.4 nats a row better than none, and the flow that kept it scored
    2.3 nats worse on new rows. And the map must win by two standard errors of
    the paired difference, the rule a trained epoch meets to replace the start:
    on 217 rows of 2 columns it won the cross-validation by 0.006 and lost 0.04
    on new rows.
    """
    other_log_det = np.zeros(len(plain_rows))
    if (other.preprocessing.lower_tails | other.preprocessing.upper_tails).any():
        tails = AsinhTails(
            torch.from_numpy(other.preprocessing.lower_tails), torch.from_numpy(other.preprocessing.upper_tails)
        )
        with torch.no_grad():
            other_log_det = tails.double()(torch.from_numpy(plain_rows))[1].numpy()
    gains = []
    for train, test in selection_splits(len(plain_rows), seed):
        power = fit_power_map(plain_rows[train], families)
        mapped_train = power(plain_rows[train])[0]
        mapped_test, log_det = power(plain_rows[test])
        with quiet_single_threaded():
            mapped = held_out_rows(candidate, mapped_train, mapped_test, seed) + log_det
            kept = held_out_rows(other.candidate, other.every_row[train], other.every_row[test], seed)
        gains.append(mapped - kept - other_log_det[test])
    return np.concatenate(gains)
