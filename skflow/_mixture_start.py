"""Where a mixture-based flow starts: the mixture, and whether long tails go through asinh before it.

A column reaching beyond ``tail_bound`` gets a fixed asinh on that side
(:class:`~skflow._core.AsinhTails`), so that the splines can shape its tail.
Under a Gaussian-mixture base that is a choice, not a given: on small sets of
skewed parts of a whole (``compositional_8d`` in the benchmark) a mixture on the
standardized columns scores 0.2 nats a row better held-out than one on the
asinh'd columns, and the flow keeps that start. So the mixture is chosen both
ways, by the same cross-validation on the same rows, and the asinh is kept
only where it scores better, its log-determinant counted on each held-out row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._core import AsinhTails
from ._mixture_init import Candidate, choose_mixture, mixture_rows, selection_splits
from ._preprocessing import Preprocessing, make_augment


@dataclass
class MixtureStart:
    preprocessing: Preprocessing  # the fitted one, or the same without asinh tails
    candidate: Candidate
    every_row: np.ndarray  # the rows ``candidate`` was chosen on: every training row, preprocessed


def choose_start(
    preprocessing: Preprocessing, train_x: torch.Tensor, weights: np.ndarray, seed: int, device: torch.device
) -> MixtureStart:
    """The mixture chosen on every training row ``train_x`` (preprocessed by ``preprocessing``), with or
    without its asinh tails, whichever scores better held-out in the standardized units."""
    every_row = mixture_rows(train_x, weights, 0.0, seed, make_augment(preprocessing, device))
    candidate, score = choose_mixture(every_row, seed)
    if not (preprocessing.lower_tails | preprocessing.upper_tails).any() or not np.isfinite(score):
        return MixtureStart(preprocessing, candidate, every_row)
    tails = AsinhTails(torch.from_numpy(preprocessing.lower_tails), torch.from_numpy(preprocessing.upper_tails))
    tails = tails.double().to(device)
    plain = preprocessing.without_tails()
    with torch.no_grad():
        plain_rows = tails.inverse(train_x.double())[0].float()
    plain_every_row = mixture_rows(plain_rows, weights, 0.0, seed, make_augment(plain, device))
    plain_candidate, plain_score = choose_mixture(plain_every_row, seed)
    # The same rows in both: row i of every_row is asinh(plain_every_row[i]), so its log-det converts
    # the asinh'd score to standardized units, averaged over the held-out rows as the score was.
    with torch.no_grad():
        log_det = tails(torch.from_numpy(plain_every_row).to(device))[1].cpu().numpy()
    splits = selection_splits(len(log_det), seed)
    score += float(np.mean([log_det[test].mean() for _, test in splits]))
    if plain_score > score:
        return MixtureStart(plain, plain_candidate, plain_every_row)
    return MixtureStart(preprocessing, candidate, every_row)
