"""Wrote tests/data/flowdensity_v1.skflow and its expected scores with skflow at commit d0ccebc (format version 1).

Run once from the repository root, before format version 2 existed:
    PYTHONPATH=. python tests/data/make_v1_model.py
Kept as the record of how the files were made; the tests only read them.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import make_moons

from skflow import FlowDensity

HERE = Path(__file__).parent


def main() -> None:
    X, _ = make_moons(200, noise=0.1, random_state=0)
    X = X + [0.0, 1.0]  # second column strictly above -0.6: bounded below
    est = FlowDensity(
        n_transforms=2, hidden_units=(8,), max_epochs=3, bounds=[None, (-1.0, None)], device="cpu", random_state=0
    ).fit(X)
    est.save(HERE / "flowdensity_v1.skflow")
    points = np.array([[0.0, 1.0], [1.0, 0.5], [-1.0, 1.5], [2.0, 0.0], [0.5, -0.99], [0.3, -2.0]])
    np.savez(HERE / "flowdensity_v1_expected.npz", points=points, score_samples=est.score_samples(points))


# Guarded: pytest's --doctest-modules imports every module it collects, which must not rewrite the files.
if __name__ == "__main__":
    main()
