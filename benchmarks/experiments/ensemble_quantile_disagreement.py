"""The ensemble's disagreement measured by quantiles: does shrinking its flows by it calibrate the intervals?

A sequel to :mod:`benchmarks.experiments.ensemble_disagreement`, whose
variances of the flows' conditional means are dominated by the tails on a
skewed target (yacht). Here each flow's median and 90% interval at the query
row give, per row, the spread of the flows' medians in units of their
conditional standard deviation (the interval's width over 2 x 1.645),
``b = var_m(median_m) / mean_m(sd_m)^2``, and the variance of the logs of
their widths, ``v = var_m(log sd_m)``. Each flow's latent scale is multiplied
by ``c(x) = sqrt(max(1 - k b, floor))`` ("b" rules), or that times
``exp(-(1 - 1 / M) v)`` ("bv" rules: what independent width errors of ``M``
flows, each calibrated on its own, would call for). A scan of one common
factor ``c`` scored on the test rows (not a method: it looks at the test
rows) shows what the best factor would have been. One fit per split::

    PYTHONPATH=. python -m benchmarks.experiments.ensemble_quantile_disagreement \\
        --sets yacht --splits 0 1 2 --out results.jsonl
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from benchmarks.experiments import ensemble_disagreement
from benchmarks.experiments.ensemble_disagreement import latents, score
from skflow import FlowRegressor
from skflow._conditional_flow import exact_quantiles

LEVELS = np.array([0.05, 0.5, 0.95])
FACTORS = (0.5, 1.0, 1.5, 2.0)
FLOORS = (0.25, 0.5)  # smallest c^2 allowed
SCAN = np.arange(0.6, 1.251, 0.05)


def measure(dataset: str, split, seed: int) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowRegressor(random_state=seed).fit(split.X_train, split.y_train)
    members = model._members()
    scales = np.array([member.latent_scale_[0] for member in members])
    features = model._validated(split.X_test)  # each flow takes its own context of them (boosted_feature)
    contexts = [member._context(features) for member in members]
    with torch.no_grad():
        forward = [latents(member, c, split.y_test) for member, c in zip(members, contexts, strict=True)]
        z, log_det = (np.stack(part) for part in zip(*forward, strict=True))
        quantiles = np.stack([exact_quantiles(member, c, LEVELS) for member, c in zip(members, contexts, strict=True)])
    sd = np.maximum(quantiles[:, :, 2] - quantiles[:, :, 0], 1e-300) / (2 * 1.6449)
    spread = quantiles[:, :, 1].var(axis=0) / np.mean(sd, axis=0) ** 2
    width_variance = np.log(sd).var(axis=0, ddof=1)
    n = z.shape[1]
    record = {
        "set": dataset,
        "split": split.index,
        "b_mean": float(spread.mean()),
        "b_median": float(np.median(spread)),
        "v_mean": float(width_variance.mean()),
        "c=1": score(z, log_det, scales, np.ones(n)),
    }
    widths = np.exp(-(1 - 1 / len(members)) * width_variance)
    for k in FACTORS:
        for floor in FLOORS:
            shrink = np.sqrt(np.maximum(1 - k * spread, floor))
            record[f"b{k}_f{floor}"] = score(z, log_det, scales, shrink)
            record[f"bv{k}_f{floor}"] = score(z, log_det, scales, shrink * widths)
    record["scan"] = {f"{c:.2f}": score(z, log_det, scales, np.full(n, c)) for c in SCAN}
    return record


if __name__ == "__main__":
    ensemble_disagreement.main(measure=measure, description=__doc__)
