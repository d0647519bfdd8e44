"""Pandas output for a regressor's predictions: ``set_output(transform="pandas")``.

scikit-learn's ``set_output`` chooses what a transformer's ``transform``
returns. A regressor has no ``transform``; on :class:`~skflow.FlowRegressor`
the same call chooses what its predictions return. With "pandas" they are
indexed like ``X`` (a DataFrame's index, else 0 to n - 1) and named after
the targets (``target_names_in_``, else ``y``, or ``y0``, ``y1``, ...):

- ``predict``: a Series, or a DataFrame with a column per target;
- ``score_samples``: a Series named ``log_density``;
- ``predict_quantiles``: a DataFrame with a column per level;
- ``predict_interval``: a DataFrame with columns ``lower`` and ``upper``;
- ``sample``: a DataFrame with a column per draw, or per (draw, target).

It is off by default, and scikit-learn's global ``transform_output`` does
not turn it on: a Series aligns on its index, so ``y_test -
reg.predict(X_test)`` with a ``y_test`` indexed otherwise would silently be
NaN, and scikit-learn's own regressors always return arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OUTPUTS = ("default", "pandas")


class PredictionOutputMixin:
    """``set_output`` for a regressor's predictions, and the conversion its prediction methods apply."""

    def set_output(self, *, transform: str | None = None):
        """Return the predictions as NumPy arrays ("default") or pandas objects ("pandas").

        Parameters
        ----------
        transform : {"default", "pandas"} or None, default=None
            Named as in scikit-learn's transformers; here it applies to
            ``predict``, ``score_samples``, ``predict_quantiles``,
            ``predict_interval`` and ``sample``. None leaves it unchanged.

        Returns
        -------
        self : estimator
        """
        if transform is None:
            return self
        if transform not in OUTPUTS:
            raise ValueError(f"set_output(transform={transform!r}): choose one of {', '.join(map(repr, OUTPUTS))}")
        if transform == "pandas":
            _pandas()  # a missing pandas is an error now, not at the first prediction
        self._sklearn_output_config = {"transform": transform}
        return self

    def _output(self, X: Any, values: np.ndarray, columns: list | None = None, name: str | None = None) -> Any:
        """``values`` (one row per row of ``X``) as the configured output."""
        if getattr(self, "_sklearn_output_config", {}).get("transform", "default") != "pandas":
            return values
        pd = _pandas()
        index = X.index if isinstance(X, pd.DataFrame) else None
        if values.ndim == 1:
            return pd.Series(values, index=index, name=name)
        return pd.DataFrame(values.reshape(len(values), -1), index=index, columns=columns)

    def _target_labels(self) -> list:
        """The targets' names: as fitted, else ``y`` for one target and ``y0``, ``y1``, ... for several."""
        names = getattr(self, "target_names_in_", None)
        if names is not None:
            return list(names)
        return ["y"] if self.n_targets_ == 1 else [f"y{k}" for k in range(self.n_targets_)]


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError('set_output(transform="pandas") needs pandas: pip install pandas') from None
    return pandas


def draw_columns(n_samples: int, targets: list) -> Any:
    """The columns of ``sample``'s DataFrame: the draw number, or (draw, target) for several targets."""
    if len(targets) == 1:
        return list(range(n_samples))
    return _pandas().MultiIndex.from_product([range(n_samples), targets], names=["draw", "target"])
