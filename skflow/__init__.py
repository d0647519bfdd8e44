"""skflow: normalizing-flow density estimation with scikit-learn's API."""

from ._training_report import EpochInfo
from ._version import __version__
from .density import FlowDensity
from .outlier import FlowOutlierDetector
from .regressor import FlowRegressor

__all__ = ["EpochInfo", "FlowDensity", "FlowOutlierDetector", "FlowRegressor", "__version__"]
