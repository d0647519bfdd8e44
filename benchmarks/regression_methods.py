"""Contenders and metrics of the probabilistic-regression benchmark (``benchmarks/regression.py``).

Every contender is fitted on standardized features. Those with ``standardize_y``
also see the target standardized with the training rows' mean and standard
deviation; the harness maps their log-likelihood, RMSE and CRPS back to the
target's original units (an affine map: exact). The flow is given the target in
its own units, as a user would, and reports in them.

Metrics, per test row, in the target's original units:

- log-likelihood ``log p(y | x)`` (undefined for the quantile forest: ``None``);
- squared error of the predictive mean (RMSE is taken over the test rows);
- whether ``y`` lies in the central 90% interval (the 5% and 95% quantiles);
- CRPS: closed form for a Gaussian predictive,
  ``sigma * (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`` with ``z = (y - mu) / sigma``;
  for the other contenders through the quantile decomposition
  ``CRPS = 2 * int_0^1 pinball_tau(y, q_tau) dtau``, approximated with the
  midpoint rule on ``CRPS_LEVELS`` (K = 199 levels ``(k - 0.5) / K``), i.e.
  ``(2 / K) * sum_k pinball_{tau_k}(y, q_{tau_k})``. On a Gaussian the rule is
  within 0.2% of the closed form (checked in the tests).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold, cross_val_predict

try:
    from skflow import FlowRegressor
except ImportError:  # built on another branch
    FlowRegressor = None

N_CRPS_LEVELS = 199
CRPS_LEVELS = (np.arange(N_CRPS_LEVELS) + 0.5) / N_CRPS_LEVELS
COVERAGE = 0.9
METHODS = ("flow", "ngboost", "hgb_gaussian", "qrf")


def available(name: str) -> bool:
    """Whether contender ``name`` can run here (its package is installed)."""
    if name == "flow":
        return FlowRegressor is not None
    module = {"ngboost": "ngboost", "qrf": "quantile_forest"}.get(name)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def gaussian_crps(y: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """CRPS of ``N(loc, scale^2)`` at ``y``, per row (Gneiting & Raftery 2007, closed form)."""
    z = (y - loc) / scale
    return scale * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi))


def quantile_crps(y: np.ndarray, quantiles: np.ndarray, levels: np.ndarray = CRPS_LEVELS) -> np.ndarray:
    """CRPS per row from predicted quantiles, ``2 * mean_k pinball_{tau_k}(y, q_k)``.

    Parameters
    ----------
    y : array of shape (n,)
    quantiles : array of shape (n, K), the predictive quantiles at ``levels``.
    levels : array of shape (K,), the midpoints ``(k - 0.5) / K`` of a uniform grid on (0, 1).
    """
    diff = y[:, None] - quantiles
    pinball = np.maximum(levels * diff, (levels - 1) * diff)
    return 2 * pinball.mean(axis=1)


class Contender:
    """One probabilistic regressor behind the harness's interface.

    ``fit(X, y)``; ``log_pdf``, ``mean``, ``interval`` and ``crps`` per test row.
    ``y`` is 2-D (n, d) only for multi-output targets, which only ``log_pdf`` and
    ``mean`` need to support (``multi_output``).
    """

    name = ""
    standardize_y = True
    multi_output = False
    has_log_likelihood = True

    def __init__(self, seed: int = 0, quick: bool = False):
        self.seed, self.quick = seed, quick

    def params(self) -> dict[str, Any]:
        """The settings worth reporting."""
        return {}

    def fit(self, X: np.ndarray, y: np.ndarray) -> Contender:
        raise NotImplementedError

    def log_pdf(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mean(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def interval(self, X: np.ndarray, coverage: float = COVERAGE) -> np.ndarray:
        raise NotImplementedError

    def crps(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class GaussianContender(Contender):
    """A Gaussian predictive ``N(loc(x), scale(x)^2)`` per target column; subclasses give ``loc_scale``."""

    def loc_scale(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def log_pdf(self, X, y):
        loc, scale = self.loc_scale(X)
        logp = stats.norm.logpdf(y, loc, scale)
        return logp.sum(axis=1) if logp.ndim == 2 else logp

    def mean(self, X):
        return self.loc_scale(X)[0]

    def interval(self, X, coverage=COVERAGE):
        loc, scale = self.loc_scale(X)
        half = stats.norm.ppf(0.5 + coverage / 2) * scale
        return np.column_stack([loc - half, loc + half])

    def crps(self, X, y):
        return gaussian_crps(y, *self.loc_scale(X))


class NGBoost(GaussianContender):
    """``NGBRegressor`` with its defaults: Normal, log score, 500 stages at learning rate 0.01, depth-3 trees.

    Duan et al. (2020) instead early-stopped up to 2000 stages on a validation
    part of the training rows; our figures are the package defaults.
    """

    name = "ngboost"

    def params(self):
        return {"n_estimators": self.model_.n_estimators, "learning_rate": self.model_.learning_rate}

    def fit(self, X, y):
        from ngboost import NGBRegressor

        kwargs = {"n_estimators": 20} if self.quick else {}
        self.model_ = NGBRegressor(verbose=False, random_state=self.seed, **kwargs).fit(X, y)
        return self

    def loc_scale(self, X):
        params = self.model_.pred_dist(X).params
        return params["loc"], params["scale"]


class HGBGaussian(GaussianContender):
    """Homoscedastic Gaussian around ``HistGradientBoostingRegressor`` (its defaults).

    The mean is the regressor fitted on all training rows; the single standard
    deviation is the root mean square of 5-fold out-of-fold residuals on the
    training rows (so it reflects test-time error, not the training fit).
    One regressor and one sigma per target column.
    """

    name = "hgb_gaussian"
    multi_output = True

    def _regressor(self) -> HistGradientBoostingRegressor:
        kwargs = {"max_iter": 20} if self.quick else {}
        return HistGradientBoostingRegressor(random_state=self.seed, **kwargs)

    def params(self):
        return {"sigma_from": "5-fold out-of-fold residuals", "sigma_std_units": [round(s, 4) for s in self.sigma_]}

    def fit(self, X, y):
        Y = y.reshape(len(y), -1)
        folds = KFold(5, shuffle=True, random_state=self.seed)
        self.models_, self.sigma_ = [], []
        for column in Y.T:
            oof = cross_val_predict(self._regressor(), X, column, cv=folds)
            self.sigma_.append(float(np.sqrt(np.mean((column - oof) ** 2))))
            self.models_.append(self._regressor().fit(X, column))
        self.one_d_ = y.ndim == 1
        return self

    def loc_scale(self, X):
        loc = np.column_stack([m.predict(X) for m in self.models_])
        scale = np.broadcast_to(np.asarray(self.sigma_), loc.shape)
        return (loc[:, 0], scale[:, 0]) if self.one_d_ else (loc, scale)


class QRF(Contender):
    """``RandomForestQuantileRegressor`` (quantile-forest, 100 trees, its defaults); no density, so no LL."""

    name = "qrf"
    has_log_likelihood = False

    def params(self):
        return {"n_estimators": self.model_.n_estimators}

    def fit(self, X, y):
        from quantile_forest import RandomForestQuantileRegressor

        trees = 20 if self.quick else 100
        self.model_ = RandomForestQuantileRegressor(n_estimators=trees, random_state=self.seed, n_jobs=1)
        self.model_.fit(X, y)
        return self

    def log_pdf(self, X, y):
        return None

    def mean(self, X):
        return self.model_.predict(X, quantiles="mean")

    def interval(self, X, coverage=COVERAGE):
        return self.model_.predict(X, quantiles=[0.5 - coverage / 2, 0.5 + coverage / 2])

    def crps(self, X, y):
        return quantile_crps(y, self.model_.predict(X, quantiles=CRPS_LEVELS.tolist()))


class Flow(Contender):
    """``skflow.FlowRegressor()`` with its defaults (``max_epochs`` only in quick mode); target in its own units."""

    name = "flow"
    standardize_y = False
    multi_output = True

    def __init__(self, seed: int = 0, quick: bool = False, estimator_class: type | None = None):
        super().__init__(seed, quick)
        self.estimator_class = estimator_class or FlowRegressor

    def params(self):
        flows = [self.model_, *getattr(self.model_, "ensemble_", [])]
        return {
            "n_flows": len(flows),
            "n_epochs": [getattr(flow, "n_iter_", None) for flow in flows],
            "latent_scale": [flow.latent_scale_.tolist() for flow in flows if hasattr(flow, "latent_scale_")],
        }

    def fit(self, X, y):
        kwargs = {"max_epochs": 3} if self.quick else {}
        self.model_ = self.estimator_class(random_state=self.seed, **kwargs).fit(X, y)
        return self

    def log_pdf(self, X, y):
        return np.asarray(self.model_.score_samples(X, y), dtype=float)

    def mean(self, X):
        return np.asarray(self.model_.predict(X), dtype=float)

    def interval(self, X, coverage=COVERAGE):
        return np.asarray(self.model_.predict_interval(X, coverage=coverage), dtype=float)

    def crps(self, X, y):
        return quantile_crps(y, np.asarray(self.model_.predict_quantiles(X, CRPS_LEVELS), dtype=float))


CONTENDERS: dict[str, type[Contender]] = {"flow": Flow, "ngboost": NGBoost, "hgb_gaussian": HGBGaussian, "qrf": QRF}
