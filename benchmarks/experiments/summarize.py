"""Table of the mixture_base experiment's JSON lines: held-out log-likelihood, fit seconds,
and the paired difference to the ``normal`` variant (mean +- standard error over test rows)."""

from __future__ import annotations

import json
import sys

import numpy as np


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path)]
    latest = {}
    for row in rows:
        latest[(row["dataset"], row["variant"])] = row  # the latest run of each pair wins
    for dataset in dict.fromkeys(d for d, _ in latest):
        normal = latest.get((dataset, "normal"))
        print(f"\n{dataset}")
        for (d, variant), row in latest.items():
            if d != dataset:
                continue
            paired = ""
            if normal is not None and "scores" in row and "scores" in normal and variant != "normal":
                diff = np.asarray(row["scores"]) - np.asarray(normal["scores"])
                paired = f"{diff.mean():+8.3f} +- {diff.std() / np.sqrt(len(diff)):.3f}"
            extra = {
                k: v
                for k, v in row.items()
                if k
                in (
                    "K",
                    "best_epoch",
                    "n_covariance_type",
                    "n_components",
                    "covariance_type",
                    "reg_covar",
                    "lowcard_columns",
                )
            }
            e0 = row.get("epoch0_test_ll")
            e0 = f"{e0:8.3f}" if e0 is not None else " " * 8
            print(
                f"  {variant:<18} {row['test_ll']:9.3f}  e0 {e0}  fit {row['fit_s']:6.1f}s  "
                f"vs normal {paired:<18} {extra}"
            )


if __name__ == "__main__":
    main(sys.argv[1])
