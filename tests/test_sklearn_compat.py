"""scikit-learn's own estimator checks, on small and fast configurations."""

import pytest
from sklearn.utils.estimator_checks import (
    check_get_feature_names_out_error,
    check_global_output_transform_pandas,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skflow import FlowDensity

# Checks that a stochastic-gradient density estimator cannot pass, with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "mini-batch training: a row with weight 2 and the same row repeated twice land in different "
        "batches, so the two fits follow different optimization paths (as for MLPRegressor/SGD)"
    ),
}


def fast_flow(**params):
    defaults = dict(n_transforms=2, hidden_units=(8,), max_epochs=3, n_bins=4, random_state=0)
    defaults.update(params)
    return FlowDensity(**defaults)


@parametrize_with_checks(
    [fast_flow(), fast_flow(flow="affine")],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# Not run by parametrize_with_checks (DESIGN.md point 9): feature names out and set_output.
@pytest.mark.parametrize(
    "check",
    [
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_get_feature_names_out_error,
    ],
    ids=lambda check: check.__name__,
)
def test_feature_names_and_set_output(check):
    check(FlowDensity.__name__, fast_flow())
