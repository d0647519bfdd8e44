"""A kept ridge regression's noise: Student's t with the fit's residual degrees of freedom, or the normal.

The default ``FlowRegressor(random_state=draw)`` fitted on a few rows of ``load_diabetes`` and Friedman #1 (10
features, noise 1), and of Friedman #1 with 45 more noise features, scored on the other rows (test
log-likelihood and 90% coverage). ``student`` is the library's model; ``normal`` the same fit with the t turned
off (``MAX_DEGREES_OF_FREEDOM`` patched to 0). Only flows that keep their ridge regression differ (on fewer
than 40 rows every one), and the choice between a trained flow and the ridge can change::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.student_ridge --out results.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

import skflow._linear_start as linear_start

from .ridge_leverage import fit_and_score
from .split_runs import append_record

DEFAULT_ROWS = {"diabetes": (10, 15, 20, 30, 40, 60, 100), "friedman1": (10, 15, 20, 30, 40, 60, 100)}


@contextlib.contextmanager
def normal_noise() -> Iterator[None]:
    """Every kept ridge with normal noise, as before Student's t."""
    saved = linear_start.MAX_DEGREES_OF_FREEDOM
    linear_start.MAX_DEGREES_OF_FREEDOM = 0.0
    try:
        yield
    finally:
        linear_start.MAX_DEGREES_OF_FREEDOM = saved


def measure(name: str, n_rows: int, draw: int, student: bool) -> dict:
    patch = contextlib.nullcontext() if student else normal_noise()
    return {**fit_and_score(name, n_rows, draw, patch, {}), "student": student}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_ROWS))
    parser.add_argument("--rows", type=int, nargs="+", default=None, help="only these numbers of training rows")
    parser.add_argument("--draws", type=int, default=6)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for name in args.sets:
        for n_rows in args.rows or DEFAULT_ROWS[name]:
            for draw in range(args.draws):
                for student in (False, True):
                    append_record(args.out, measure(name, n_rows, draw, student))


if __name__ == "__main__":
    main()
