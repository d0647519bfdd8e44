"""Does shrinking the ensemble's flows by their disagreement at the query row calibrate its intervals?

Each flow of a ``FlowRegressor`` ensemble fits its latent scale on its own
held-out rows, so its spread covers its own estimation error; the mixture's
centre is better than any one flow's, and the flows' spread around it adds
their disagreement on top. With ``W(x)`` the flows' mean conditional variance
and ``B(x)`` the variance of their conditional means at the query row (no
flow has seen it, so ``B`` is an honest estimate of their disagreement there),
each flow's latent scale is multiplied by ``c(x) = sqrt(max(1 - k B / W,
floor))`` for a few ``k``: ``k = 2`` is what independent, honestly calibrated
flows would need, ``k = 0`` is the default. The mixture stays an exact,
normalized density for every row. Test log-likelihood and 90% coverage (the
mixture's distribution function at the test target within [0.05, 0.95]) are
scored for every ``k`` from one fit per split::

    PYTHONPATH=. python -m benchmarks.experiments.ensemble_disagreement \\
        --sets bostonHousing yacht --splits 0 1 2 --out results.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.special import ndtr

from benchmarks.regression import Settings, splits_of
from skflow import FlowRegressor
from skflow._bounds import clip_to_support
from skflow._conditional import mean_rule
from skflow._conditional_flow import inverse_at, map_rows
from skflow._core import standard_normal_log_prob
from skflow._ensemble import mixture_log_density

FACTORS = (0.0, 0.5, 1.0, 1.5, 2.0)
FLOOR = 0.25  # smallest c^2 allowed


def latents(member, context: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``z = f(y; x)`` (unscaled) and ``log|det J|`` of one flow at the test rows."""
    rows = np.hstack([y[:, None], context])

    def forward(batch: torch.Tensor) -> torch.Tensor:
        z, log_abs_det = member.flow_(batch[:, :1], batch[:, 1:])
        return torch.cat([z, log_abs_det[:, None]], dim=1)

    values = map_rows(member, forward, rows, 1)
    return values[:, 0], values[:, 1]


def moments(member, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conditional mean and variance of one flow (with its latent scale) at each context row."""
    latent, weights = mean_rule(1)
    points = inverse_at(member, latent, context)[:, :, 0]
    points = clip_to_support(points.reshape(-1, 1), member.low_, member.high_).reshape(points.shape)
    mean = points @ weights
    return mean, np.maximum((points - mean[:, None]) ** 2 @ weights, 1e-300)


def score(z: np.ndarray, log_det: np.ndarray, scales: np.ndarray, shrink: np.ndarray) -> tuple[float, float]:
    """Mean test log-likelihood and 90% coverage of the mixture with every flow's scale times ``shrink``."""
    total = scales[:, None] * shrink[None, :]
    u = z / total
    log_p = standard_normal_log_prob(torch.as_tensor(u[..., None])).numpy() - np.log(total) + log_det
    mixture = mixture_log_density(list(log_p))
    cdf = ndtr(u).mean(axis=0)
    return float(mixture.mean()), float(np.mean((cdf >= 0.05) & (cdf <= 0.95)))


def measure(dataset: str, split, seed: int) -> dict:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowRegressor(random_state=seed).fit(split.X_train, split.y_train)
    fit_seconds = time.perf_counter() - started
    members = model._members()
    features = model._validated(split.X_test)  # each flow takes its own context of them (boosted_feature)
    contexts = [member._context(features) for member in members]
    with torch.no_grad():
        forward = [latents(member, c, split.y_test) for member, c in zip(members, contexts, strict=True)]
        means, variances = zip(*(moments(member, c) for member, c in zip(members, contexts, strict=True)), strict=True)
    z, log_det = (np.stack(part) for part in zip(*forward, strict=True))
    scales = np.array([member.latent_scale_[0] for member in members])
    within, between = np.mean(variances, axis=0), np.var(means, axis=0)
    ratio = between / within
    record = {
        "dataset": dataset,
        "split": split.index,
        "fit_seconds": fit_seconds,
        "latent_scales": scales.tolist(),
        "ratio_median": float(np.median(ratio)),
        "ratio_mean": float(ratio.mean()),
        "single_flow": score(z[:1], log_det[:1], scales[:1], np.ones(len(ratio))),
    }
    for k in FACTORS:
        record[f"per_row_{k}"] = score(z, log_det, scales, np.sqrt(np.maximum(1 - k * ratio, FLOOR)))
        overall = max(1 - k * between.mean() / within.mean(), FLOOR)
        record[f"global_{k}"] = score(z, log_det, scales, np.full(len(ratio), np.sqrt(overall)))
    return record


def main(argv: list[str] | None = None, measure=measure, description: str = __doc__, splits_of_number=None) -> None:
    """Run ``measure(dataset, split, seed)`` on each chosen split and append its record to ``--out``.

    ``splits_of_number(dataset, number, args)``, when given, yields the splits of a set's split number
    (default: the benchmark's standard splits); ``--rows`` is for it to read.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", required=True)
    parser.add_argument("--splits", nargs="+", type=int, default=[0])
    parser.add_argument("--rows", type=int, default=0, help="training rows, for sets drawn here (0: a UCI set)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for dataset in args.sets:
        for number in args.splits:
            if splits_of_number is None:
                splits = splits_of(dataset, Settings(first_split=number, max_splits=number + 1))
            else:
                splits = splits_of_number(dataset, number, args)
            for split in splits:
                record = measure(dataset, split, args.seed)
                print(json.dumps(record), flush=True)
                with args.out.open("a") as file:
                    file.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
