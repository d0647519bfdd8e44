"""Noise regularization of FlowRegressor's training (Rothfuss et al. 2019), measured and not adopted.

Each training batch gets fresh Gaussian noise of standard deviation ``h_y``
on its (preprocessed, about standardized) targets and ``h_x`` on its
(standardized) context; validation rows, calibration and the test rows stay
clean. The noise is patched into :class:`skflow._core.rows.Rows` for the
duration of each :meth:`skflow._core.train.Trainer.one_pass`, drawn from
torch's global generator (seeded 0 before each fit). Default
``FlowRegressor(random_state=0)`` otherwise. Synthetic sets: 2,000 training
and 2,000 test rows of a draw, gap per target dimension to the true
conditional log-likelihood; UCI sets: the standard splits, test
log-likelihood and 90% coverage::

    PYTHONPATH=. python -m benchmarks.experiments.noise_regularization \\
        --sets bimodal_moving hetero_skewed bostonHousing yacht --splits 0 1 2 --out results.jsonl
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from skflow import FlowRegressor
from skflow._core import rows as rows_module
from skflow._core import train as train_module

from .split_runs import append_record, numbered_splits, split_parser

# label: (h_y, h_x)
VARIANTS = {"none": (0.0, 0.0), "x0.1": (0.0, 0.1), "x0.2": (0.0, 0.2), "y0.02": (0.02, 0.0), "y0.05": (0.05, 0.0)}


@contextlib.contextmanager
def training_noise(h_y: float, h_x: float):
    """Gaussian noise on the targets and context of every training batch, none on validation rows."""
    batch, one_pass = rows_module.Rows.batch, train_module.Trainer.one_pass
    training = [False]

    def noisy_batch(self, positions):
        x, w, context = batch(self, positions)
        if training[0]:
            x = x + h_y * torch.randn_like(x)
            context = None if context is None else context + h_x * torch.randn_like(context)
        return x, w, context

    def noisy_pass(self, train, lr):
        training[0] = True
        try:
            return one_pass(self, train, lr)
        finally:
            training[0] = False

    rows_module.Rows.batch, train_module.Trainer.one_pass = noisy_batch, noisy_pass
    try:
        yield
    finally:
        rows_module.Rows.batch, train_module.Trainer.one_pass = batch, one_pass


def measure(split, h_y: float, h_x: float) -> dict:
    torch.manual_seed(0)
    with training_noise(h_y, h_x), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(random_state=0).fit(split.X_train, split.y_train)
    log_likelihood = float(reg.score_samples(split.X_test, split.y_test).mean())
    interval = reg.predict_interval(split.X_test)
    covered = (split.y_test >= interval[:, 0]) & (split.y_test <= interval[:, 1])
    record = {"log_likelihood": log_likelihood, "coverage90": float(covered.mean())}
    if split.true_log_likelihood is not None:
        record["gap_per_dim"] = split.true_log_likelihood - log_likelihood
    return record


def main(argv: list[str] | None = None) -> None:
    parser = split_parser(__doc__)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = parser.parse_args(argv)
    for name, split in numbered_splits(args):
        for label in args.variants:
            record = {"set": name, "split": split.index, "variant": label, **measure(split, *VARIANTS[label])}
            append_record(args.out, record)


if __name__ == "__main__":
    main()
