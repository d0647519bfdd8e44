"""A spread driven by a feature that is not in the mean: the flow against a correctly specified model.

Audit finding B of the thirty-fourth session: on 500 rows of such a target
the default's 90% intervals covered 0.84-0.86 of new rows, too narrow where
the spread is large. Two context changes did not help (design notes,
"Heavy-tailed features"). This asks how much of the gap any model trained
on that many rows keeps: ``y = sin(x_0) + x_1 / 2 + (0.1 + |x_2| / 2) e``,
``e ~ N(0, 1)``, ``x ~ U(-2, 2)^4`` (``x_3`` is noise), scored by

- ``flow``: default ``FlowRegressor(random_state=draw)``;
- ``gaussian_mlp``: the true family, a Gaussian whose mean and spread are
  one network's two outputs (two hidden layers of 64, ReLU), five of them
  as an equal-weight mixture (Lakshminarayanan et al. 2017), each
  early-stopped on its own tenth of the rows (patience 20).

Reported: the gap to the true conditional log-likelihood, 90% coverage, and
coverage in the thirds of the test rows by true spread::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.spread_feature --rows 500 1500 \\
        --draws 0 1 2 --out benchmarks/results/experiment_spread_feature_2026-12-07.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch
from scipy import optimize, stats

from skflow import FlowRegressor

TEST_ROWS = 4000
METHODS = ("flow", "gaussian_mlp")


def _mean_and_spread(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.sin(X[:, 0]) + 0.5 * X[:, 1], 0.1 + 0.5 * np.abs(X[:, 2])


def make(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-2, 2, size=(n, 4))
    mean, spread = _mean_and_spread(X)
    return X, mean + spread * rng.normal(size=n)


def _gaussian_mlp(X: np.ndarray, y: np.ndarray, seed: int) -> torch.nn.Module:
    """One network of the mean and the softplus spread, trained by Adam on the Gaussian likelihood."""
    rng = np.random.RandomState(seed)
    torch.manual_seed(seed)
    order = rng.permutation(len(y))
    n_validation = max(10, len(y) // 10)
    validation, train = order[:n_validation], order[n_validation:]
    inputs, targets = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    layers = [torch.nn.Linear(X.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(64, 2))
    optimizer = torch.optim.Adam(net.parameters(), 3e-3)

    def loss(rows: np.ndarray) -> torch.Tensor:
        out = net(inputs[rows])
        spread = torch.nn.functional.softplus(out[:, 1]) + 1e-3
        return -torch.distributions.Normal(out[:, 0], spread).log_prob(targets[rows]).mean()

    best, best_state, waited = np.inf, None, 0
    for _ in range(500):
        shuffled = train[rng.permutation(len(train))]
        for start in range(0, len(shuffled), 64):
            optimizer.zero_grad()
            loss(shuffled[start : start + 64]).backward()
            optimizer.step()
        with torch.no_grad():
            score = loss(validation).item()
        if score < best:
            best, best_state, waited = score, {k: v.clone() for k, v in net.state_dict().items()}, 0
        elif (waited := waited + 1) > 20:
            break
    net.load_state_dict(best_state)
    return net


def _mixture_cdf(t: float, means: np.ndarray, spreads: np.ndarray, level: float) -> float:
    return stats.norm.cdf(t, means, spreads).mean() - level


class GaussianMLPEnsemble:
    """Five :func:`_gaussian_mlp` networks on standardized features and target, mixed with equal weights."""

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> GaussianMLPEnsemble:
        self.x_mean, self.x_std, self.y_mean, self.y_std = X.mean(0), X.std(0), y.mean(), y.std()
        Z, t = (X - self.x_mean) / self.x_std, (y - self.y_mean) / self.y_std
        self.nets = [_gaussian_mlp(Z, t, 100 * seed + k) for k in range(5)]
        return self

    def _components(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = torch.tensor((X - self.x_mean) / self.x_std, dtype=torch.float32)
        with torch.no_grad():
            outs = np.array([net(Z).numpy().astype(float) for net in self.nets])
        return outs[..., 0] * self.y_std + self.y_mean, (np.logaddexp(0, outs[..., 1]) + 1e-3) * self.y_std

    def score_samples(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        means, spreads = self._components(X)
        log_densities = stats.norm.logpdf(y, means, spreads)
        return np.logaddexp.reduce(log_densities, axis=0) - np.log(len(self.nets))

    def predict_interval(self, X: np.ndarray, coverage: float) -> np.ndarray:
        means, spreads = self._components(X)
        tail = (1 - coverage) / 2
        bounds = []
        for mean, spread in zip(means.T, spreads.T):
            lo, hi = (mean - 10 * spread).min(), (mean + 10 * spread).max()
            levels = (tail, 1 - tail)
            bounds.append([optimize.brentq(_mixture_cdf, lo, hi, args=(mean, spread, q)) for q in levels])
        return np.array(bounds)


def run(rows: int, draw: int, method: str) -> dict:
    rng = np.random.default_rng(1000 + draw)
    X, y = make(rows, rng)
    X_test, y_test = make(TEST_ROWS, rng)
    start = time.perf_counter()
    if method == "flow":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = FlowRegressor(random_state=draw).fit(X, y)
    else:
        model = GaussianMLPEnsemble().fit(X, y, draw)
    fit_seconds = time.perf_counter() - start
    mean, spread = _mean_and_spread(X_test)
    truth = float(np.mean(stats.norm.logpdf(y_test, mean, spread)))
    scores = model.score_samples(X_test, y_test)
    low, high = model.predict_interval(X_test, 0.9).T
    inside = (y_test >= low) & (y_test <= high)
    thirds = np.digitize(spread, np.quantile(spread, [1 / 3, 2 / 3]))
    return dict(
        rows=rows,
        draw=draw,
        method=method,
        truth=truth,
        test_ll=float(np.mean(scores)),
        gap=truth - float(np.mean(scores)),
        coverage=float(inside.mean()),
        coverage_by_spread_third=[float(inside[thirds == k].mean()) for k in range(3)],
        fit_seconds=fit_seconds,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", type=int, default=[500])
    parser.add_argument("--draws", nargs="+", type=int, default=[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", required=True, help="JSON lines, appended")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for rows in args.rows:
        for draw in args.draws:
            for method in args.methods:
                record = run(rows, draw, method)
                print(json.dumps(record), flush=True)
                with open(args.out, "a") as out:
                    out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
