"""The latent scale with a prior: ``s^2`` shrunk toward 1 by the number of validation rows, measured and compared.

Each flow's latent scale is fitted by maximum likelihood on its validation
rows (``skflow._calibration``): ``s^2`` is their mean ``z^2``. On 100 training
rows those are 10 rows, which also chose the epoch and the training kept, and
``s`` can come out far below 1: on the dequantized wine's first 100 rows one
flow kept ``s = 0.53`` and covered 0.40 of the test rows. Treating the
training's own claim (``s = 1``) as ``PRIOR_ROWS`` rows of evidence gives

    s^2 = (PRIOR_ROWS + n s_ml^2) / (PRIOR_ROWS + n)

for ``n`` validation rows. The fits do not depend on ``s`` (it is fitted after
training, and the choice among trainings reads the validation scores before
it), so each fit here is the default's, rescored with each prior. One JSON
line per set, size and split: test log-likelihood and 90% coverage per prior
(``0``: the maximum-likelihood scale, the default before the thirty-ninth
session; ``skflow._calibration.PRIOR_ROWS`` is the default since).

::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.latent_prior --sets yacht --splits 4 \
        --out results.jsonl
    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.latent_prior --sets yacht --splits 6 \
        --priors 0 40 160 1e9 --out results.jsonl   # 1e9 rows of prior: every flow at s = 1
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

import skflow._calibration as calibration
from skflow import FlowRegressor

from ..regression import Settings, _standardizer
from .small_uci import SETS, cut_splits
from .split_runs import append_record

PRIORS = (0, 5, 10, 20, 40)


def fit_recording_validation_rows(X: np.ndarray, y: np.ndarray, **params) -> tuple[FlowRegressor, dict[bytes, int]]:
    """The default fit (``params`` changed), and for each latent scale any of its trainings fitted, its number of
    validation rows."""
    rows: dict[bytes, int] = {}
    original = calibration.fit_latent_scale

    def recording(flow, Y, weights, context, validation_index, *args, **kwargs):
        scale = original(flow, Y, weights, context, validation_index, *args, **kwargs)
        rows[scale.tobytes()] = 0 if validation_index is None else len(validation_index)
        return scale

    calibration.fit_latent_scale = recording
    prior_rows, calibration.PRIOR_ROWS = calibration.PRIOR_ROWS, 0.0  # the maximum-likelihood scales, shrunk below
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = FlowRegressor(**{"random_state": 0, **params}).fit(X, y)
    finally:
        calibration.fit_latent_scale = original
        calibration.PRIOR_ROWS = prior_rows
    return model, rows


def rescored(model: FlowRegressor, rows: dict[bytes, int], prior: int, X, y) -> tuple[float, float]:
    """Test log-likelihood and 90% coverage with every calibrated flow's ``s^2`` shrunk by ``prior`` rows."""
    members = [model, *model.ensemble_]
    fitted = [member.latent_scale_ for member in members]
    try:
        for member, scale in zip(members, fitted, strict=True):
            n = rows.get(scale.tobytes(), 0)  # a kept ridge regression is not calibrated: scale 1, no entry
            if n:
                member.latent_scale_ = np.sqrt((prior + n * scale**2) / (prior + n))
        low, high = model.predict_interval(X).T
        return float(model.score_samples(X, y).mean()), float(np.mean((y >= low) & (y <= high)))
    finally:
        for member, scale in zip(members, fitted, strict=True):
            member.latent_scale_ = scale


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[0], help="training rows (0: all of them)")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--data-dir", default=Settings.data_dir)
    parser.add_argument("--priors", type=float, nargs="+", default=PRIORS, help="0: the default; 1e9: s = 1")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    sizes = [n or None for n in args.sizes]
    for name, _, split in cut_splits(args.sets, sizes, args.splits, args.data_dir):
        location, scale = _standardizer(split.X_train)  # as the benchmark's harness does
        X_train, X_test = (split.X_train - location) / scale, (split.X_test - location) / scale
        model, rows = fit_recording_validation_rows(X_train, split.y_train)
        record = {"set": name, "n": len(split.y_train), "split": split.index}
        record["scales"] = [member.latent_scale_.tolist() for member in (model, *model.ensemble_)]
        for prior in args.priors:
            prior = int(prior) if float(prior).is_integer() else prior
            record[f"ll_{prior}"], record[f"cov_{prior}"] = rescored(model, rows, prior, X_test, split.y_test)
        append_record(args.out, record)


if __name__ == "__main__":
    main()
