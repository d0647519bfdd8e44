"""Scratch experiment: a learnable Gaussian-mixture base distribution under FlowDensity.

Not part of the library. The library is left untouched: ``FlowDensity.fit`` runs as
it is, with ``skflow.density.train_flow`` wrapped so that, just before training, the
flow's body gets a mixture base fitted by sklearn's ``GaussianMixture`` on the body's
initial output (the standardized rows, after the fixed asinh tails and any
dequantization noise) of the rows the flow trains on. The untrained flow *is* that
mixture (the coupling and linear layers start as the identity), and epoch 0 is a
candidate in ``train_flow``, so training can only keep or improve its validation score.

Protocol of ``benchmarks/density.py``: 80/20 split (random_state=0), features
standardized with the training part's statistics, held-out mean log-likelihood in
standardized units.

Run from the repository root, one dataset at a time (2 shared cores)::

    python -m benchmarks.experiments.mixture_base --datasets wine diabetes --variants normal full_bic
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from torch import nn

import skflow.density
from skflow import FlowDensity
from skflow._core import Flow
from skflow._core.rows import validation_split as _split

from .. import datasets
from ..density import Settings, fit_gmm, fit_kde

LOG_2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------- the base


class MixtureBase(nn.Module):
    """Gaussian mixture on the latent: weights, means and Cholesky factors of the covariances.

    ``learnable=False`` stores them as buffers (frozen at sklearn's fit).
    """

    def __init__(self, gmm: GaussianMixture, learnable: bool = True):
        super().__init__()
        k, d = gmm.means_.shape
        if gmm.covariance_type == "full":
            chol = np.linalg.cholesky(gmm.covariances_)
        elif gmm.covariance_type == "diag":
            chol = np.stack([np.diag(np.sqrt(c)) for c in gmm.covariances_])
        else:
            raise ValueError(gmm.covariance_type)
        self.full = gmm.covariance_type == "full"
        tensors = {
            "logits": torch.tensor(np.log(gmm.weights_), dtype=torch.float32),
            "means": torch.tensor(gmm.means_, dtype=torch.float32),
            "log_diag": torch.tensor(np.log(np.diagonal(chol, axis1=1, axis2=2)), dtype=torch.float32),
        }
        if self.full:
            tensors["offdiag"] = torch.tensor(np.tril(chol, -1), dtype=torch.float32)
        for name, value in tensors.items():
            if learnable:
                setattr(self, name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)
        self.n_components, self.n_features = k, d

    def scale_tril(self) -> torch.Tensor:
        diag = torch.diag_embed(self.log_diag.exp())
        return diag + torch.tril(self.offdiag, -1) if self.full else diag

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """(n, K): log w_k + log N(z; mu_k, Sigma_k)."""
        diff = z[None, :, :] - self.means[:, None, :]  # K, n, d
        if self.full:
            y = torch.linalg.solve_triangular(self.scale_tril(), diff.transpose(1, 2), upper=False)  # K, d, n
            maha = y.square().sum(1)  # K, n
        else:
            maha = (diff / self.log_diag.exp()[:, None, :]).square().sum(-1)
        log_norm = -0.5 * (maha + z.shape[-1] * LOG_2PI) - self.log_diag.sum(-1)[:, None]
        return (log_norm + torch.log_softmax(self.logits, 0)[:, None]).T

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.component_log_prob(z), dim=1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        probs = torch.softmax(self.logits, 0)
        k = torch.multinomial(probs.cpu().float(), n, replacement=True, generator=generator).to(self.means.device)
        eps = torch.randn(n, self.n_features, generator=generator, dtype=self.means.dtype).to(self.means.device)
        return self.means[k] + (self.scale_tril()[k] @ eps[:, :, None])[:, :, 0]


class MixtureFlow(Flow):
    """Flow with ``self.base`` (a MixtureBase) in place of N(0, I)."""

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, log_abs_det = self(x)
        return self.base.log_prob(z) + log_abs_det

    @torch.no_grad()
    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.inverse(self.base.sample(n_samples, generator))[0]


# ------------------------------------------------------------- choosing K


def _gmm(x: np.ndarray, k: int, covariance_type: str, reg_covar: float, seed: int) -> GaussianMixture:
    return GaussianMixture(
        k, covariance_type=covariance_type, reg_covar=reg_covar, random_state=seed, max_iter=200, n_init=1
    ).fit(x)


def _candidate_ks(n: int, d: int, covariance_type: str, k_max: int) -> list[int]:
    per_component = d * (d + 3) / 2 if covariance_type == "full" else 2 * d
    # Each component gets at least 10 rows and one row per free parameter of its own, on average.
    limit = max(1, int(n / max(10, per_component)))
    return [k for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32) if k <= min(k_max, limit)] or [1]


def choose_mixture(
    x_fit: np.ndarray, x_val: np.ndarray | None, rule: str, covariance_type: str, reg_covar: float, seed: int
) -> tuple[GaussianMixture, dict]:
    n, d = x_fit.shape
    if rule.startswith("k"):
        k = min(int(rule[1:]), n // 2)
        return _gmm(x_fit, k, covariance_type, reg_covar, seed), {"K": k}
    ks = _candidate_ks(n, d, covariance_type, 32)
    if rule == "valreg":  # K and reg_covar on the validation rows
        fits = {(k, reg): _gmm(x_fit, k, covariance_type, reg, seed) for k in ks for reg in (1e-6, 1e-4, 1e-2)}
        crit = {key: -fit.score(x_val) for key, fit in fits.items()}
        key = min(crit, key=crit.get)
        return fits[key], {"K": key[0], "reg_covar": key[1]}
    fits = {k: _gmm(x_fit, k, covariance_type, reg_covar, seed) for k in ks}
    if rule == "bic":
        crit = {k: fits[k].bic(x_fit) for k in ks}
        k = min(crit, key=crit.get)
    elif rule == "val":
        crit = {k: -fits[k].score(x_val) for k in ks}
        k = min(crit, key=crit.get)
    else:
        raise ValueError(rule)
    return fits[k], {"K": k}


# ------------------------------------------------------------- the variant


@dataclass
class Variant:
    name: str
    base: str = "normal"  # "normal" or "mixture"
    covariance: str = "full"
    rule: str = "bic"  # "bic", "val" or "kN" (fixed N)
    learnable: bool = True
    learning_rate: float = 1e-3
    max_epochs: int = 100
    reg_covar: float = 1e-3
    tol: float = 1e-4  # FlowDensity's tol: minimum validation gain that counts (also against epoch 0)
    lowcard: int = 0  # dequantize columns with at most this many distinct values (0: today's rule only)


VARIANTS = {
    v.name: v
    for v in [
        Variant("normal"),
        Variant("full_bic", "mixture"),
        Variant("full_val", "mixture", rule="val"),
        Variant("full_k3", "mixture", rule="k3"),
        Variant("diag_bic", "mixture", covariance="diag"),
        Variant("diag_val", "mixture", covariance="diag", rule="val"),
        Variant("full_bic_frozen", "mixture", learnable=False),
        Variant("full_val_frozen", "mixture", rule="val", learnable=False),
        Variant("full_bic_lr3e-4", "mixture", learning_rate=3e-4),
        Variant("full_val_lr3e-4", "mixture", rule="val", learning_rate=3e-4),
        Variant("full_bic_ep200", "mixture", max_epochs=200),
        Variant("full_val_tol0.02", "mixture", rule="val", tol=0.02),
        Variant("diag_val_tol0.02", "mixture", covariance="diag", rule="val", tol=0.02),
        Variant("full_valreg", "mixture", rule="valreg"),
        Variant("diag_valreg", "mixture", covariance="diag", rule="valreg"),
        Variant("full_valreg_tol0.02", "mixture", rule="valreg", tol=0.02),
        Variant("full_valreg_frozen", "mixture", rule="valreg", learnable=False),
        Variant("full_valreg_lowcard", "mixture", rule="valreg", lowcard=20),
        Variant("diag_valreg_tol0.02", "mixture", covariance="diag", rule="valreg", tol=0.02),
        Variant("diag_valreg_lowcard", "mixture", covariance="diag", rule="valreg", lowcard=20),
        Variant("normal_lowcard", lowcard=20),
        Variant("full_val_lowcard", "mixture", rule="val", lowcard=20),
        Variant("full_bic_lowcard", "mixture", lowcard=20),
    ]
}


def lowcard_augment(x: torch.Tensor, max_values: int):
    """U[-gap/2, gap/2) noise on columns with <= max_values distinct values, gap = smallest spacing."""
    widths = []
    for column in x.T:
        values = torch.unique(column)
        widths.append(float(values.diff().min()) if 1 < len(values) <= max_values else 0.0)
    width = torch.tensor(widths, dtype=x.dtype)
    if not width.any():
        return None, width

    def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return batch + (torch.rand(batch.shape, generator=generator) - 0.5) * width

    return augment, width


@contextlib.contextmanager
def patched(variant: Variant, info: dict, seed: int):
    real_train_flow = skflow.density.train_flow

    def train_flow(flow, x, weights, config, generator, augment=None, callback=None):
        if variant.lowcard:
            assert augment is None, "harness data is standardized: today's rule dequantizes nothing"
            augment, width = lowcard_augment(x, variant.lowcard)
            info["lowcard_columns"] = np.flatnonzero(width.numpy()).tolist()
        if variant.base == "mixture":
            # The same split train_flow is about to make (a copy of the generator).
            copy = torch.Generator().set_state(generator.get_state())
            train_idx, val_idx = _split(x.shape[0], config.validation_fraction, copy, x.device)
            noise = torch.Generator().manual_seed(seed)
            x_aug = augment(x, noise) if augment is not None else x
            with torch.no_grad():
                z0 = flow(x_aug)[0].double().numpy()  # the body starts as the identity (up to asinh tails)
            x_val = z0[val_idx.numpy()] if val_idx is not None else None
            gmm, chosen = choose_mixture(
                z0[train_idx.numpy()], x_val, variant.rule, variant.covariance, variant.reg_covar, seed
            )
            info.update(chosen)
            info["gmm"] = gmm
            flow.__class__ = MixtureFlow
            flow.base = MixtureBase(gmm, variant.learnable)
            info["base"] = flow.base
        result = real_train_flow(flow, x, weights, config, generator, augment, callback)
        return result

    skflow.density.train_flow = train_flow
    try:
        yield
    finally:
        skflow.density.train_flow = real_train_flow


def fit_variant(X: np.ndarray, variant: Variant, seed: int = 0) -> tuple[FlowDensity, dict]:
    info: dict = {}
    estimator = FlowDensity(
        random_state=seed,
        device="cpu",
        learning_rate=variant.learning_rate,
        max_epochs=variant.max_epochs,
        tol=variant.tol,
    )
    with patched(variant, info, seed):
        estimator.fit(X)
    if "base" in info:
        estimator.flow_.__class__ = MixtureFlow
        estimator.flow_.base = info.pop("base").double()
    info["best_epoch"] = estimator.best_epoch_
    info["n_iter"] = estimator.n_iter_
    return estimator, info


def epoch0_test_score(estimator: FlowDensity, gmm: GaussianMixture, X_test: np.ndarray) -> float:
    """Held-out score of the initial mixture alone (the untrained flow): the fixed layers, then the GMM."""
    x = torch.as_tensor(X_test, dtype=torch.float64)
    log_abs_det = torch.zeros(x.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for transform in estimator.flow_.transforms:
            if type(transform).__name__ not in ("Standardize", "AsinhTails", "ToUnbounded"):
                break
            x, ladj = transform(x)
            log_abs_det += ladj
    return float(np.mean(gmm.score_samples(x.numpy()) + log_abs_det.numpy()))


def run(names: list[str], variant_names: list[str], max_rows: int | None, refs: list[str], log=print) -> list[dict]:
    torch.set_num_threads(1)
    rows = []
    for name in names:
        data = datasets.load(name, max_rows=max_rows)
        scaler = StandardScaler().fit(data.X_train)
        X_train, X_test = scaler.transform(data.X_train), scaler.transform(data.X_test)
        for variant_name in variant_names:
            variant = VARIANTS[variant_name]
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", UserWarning)
                estimator, info = fit_variant(X_train, variant)
            seconds = time.perf_counter() - start
            scores = estimator.score_samples(X_test)
            score = float(np.mean(scores))
            info["test_se"] = float(np.std(scores) / np.sqrt(len(scores)))
            info["scores"] = np.round(scores, 5).tolist()  # per test row, for paired comparisons
            if "gmm" in info:
                info["epoch0_test_ll"] = epoch0_test_score(estimator, info.pop("gmm"), X_test)
            row = {"dataset": name, "variant": variant_name, "test_ll": score, "fit_s": seconds, **info}
            rows.append(row)
            log(json.dumps(row))
        for ref in refs:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, params = {"gmm": fit_gmm, "kde": fit_kde}[ref](X_train, Settings())
            seconds = time.perf_counter() - start
            row = {
                "dataset": name,
                "variant": ref,
                "test_ll": float(np.mean(model.score_samples(X_test))),
                "fit_s": seconds,
                "scores": np.round(model.score_samples(X_test), 5).tolist(),
                **params,
            }
            rows.append(row)
            log(json.dumps(row))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", required=True, choices=datasets.NAMES)
    parser.add_argument("--variants", nargs="+", default=["normal", "full_bic"], choices=list(VARIANTS))
    parser.add_argument("--refs", nargs="*", default=[], choices=["gmm", "kde"])
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--out", default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    out = open(args.out, "a") if args.out else None

    def log(line):
        print(line, flush=True)
        if out is not None:
            out.write(line + "\n")
            out.flush()

    run(args.datasets, args.variants, args.max_rows, args.refs, log)


if __name__ == "__main__":
    main()
