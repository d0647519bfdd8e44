"""The default's layer choice on 60 to 250 rows: each flow choosing splines or mixture-CDF layers, or splines.

``flow="auto"`` lets each flow train both kinds on 40 to 5,000 rows
(``skflow._flow_choice.AUTO_LAYER_ROWS``) and keep the one that validates
better. With few rows the choice is made on few validation rows (10 at 40
to 104 rows), where a worse model can win by chance, and every extra
candidate makes that likelier. The seven small sets of
:mod:`benchmarks.experiments.small_regression` (the rest of 400 rows for
testing), two columns per set, size and draw: ``splines``
(``flow="spline"``, the default before) and ``auto``, each the test
log-likelihood, 90% coverage, the flows that kept a ridge regression and
those that kept mixture layers::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.layer_choice_small --sizes 60 120 250 \\
        --draws 2 --out results.jsonl
"""

from __future__ import annotations

import functools

from .small_regression import Column, fit_and_score, run

COLUMNS = (("splines", "spline"), ("auto", "auto"))


def measure(X_train, y_train, X_test, y_test, flow: str) -> list:
    """``small_regression``'s scores, and the flows that kept trained mixture layers."""
    reg, scores = fit_and_score(X_train, y_train, X_test, y_test, flow=flow)
    mixtures = sum(member.flow_kind_ == "mixture_cdf" and member.best_epoch_ > 0 for member in reg._members())
    return [*scores, mixtures]


def main(argv: list[str] | None = None) -> None:
    def columns(n: int) -> list[Column]:
        return [(label, functools.partial(measure, flow=flow)) for label, flow in COLUMNS]

    run(argv, __doc__, [60, 120, 250], columns)


if __name__ == "__main__":
    main()
