"""FlowOutlierDetector: scikit-learn's outlier-detector contract and detection quality."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from skflow import FlowDensity, FlowOutlierDetector

# Checks that a stochastic-gradient density estimator cannot pass, with the reason (as in test_sklearn_compat.py).
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "mini-batch training: a row with weight 2 and the same row repeated twice land in different "
        "batches, so the two fits follow different optimization paths (as for MLPRegressor/SGD)"
    ),
}


def fast_density(**params):
    defaults = dict(n_transforms=2, hidden_units=(8,), max_epochs=5, n_bins=4, random_state=0)
    defaults.update(params)
    return FlowDensity(**defaults)


@parametrize_with_checks(
    [FlowOutlierDetector(density=fast_density()), FlowOutlierDetector(density=fast_density(), contamination=0.1)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
