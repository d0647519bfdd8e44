"""scikit-learn's estimator checks over every skflow estimator, on the fast configurations of conftest.py."""

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

from skflow import FlowRegressor

from .conftest import EXPECTED_FAILED_CHECKS, REGRESSOR_FAILED_CHECKS, fast_detector, fast_flow, fast_regressor

# The default base's mixture start and the regressor's choices (layer kinds, noise features' scaling) run in the
# first estimator of each class; the others check one path each without them: a FlowDensity fit with the mixture
# start takes about 17 times as long on these checks' small sets.
ESTIMATORS = [
    fast_flow(),
    fast_flow(flow="affine", base="normal"),
    fast_flow(flow="autoregressive", base="normal"),
    fast_detector(density=fast_flow(random_state=None, max_epochs=2, base="normal")),
    fast_regressor(),
    fast_regressor(boosted_feature=True, flow="spline", relevance_scaling=False),
    fast_regressor(flow="mixture_cdf", n_transforms=1),
]


def expected_failed_checks(estimator):
    return REGRESSOR_FAILED_CHECKS if isinstance(estimator, FlowRegressor) else EXPECTED_FAILED_CHECKS


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# Not run by parametrize_with_checks (DESIGN.md point 9): feature names out and set_output of the transformers.
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
    check("FlowDensity", fast_flow())
