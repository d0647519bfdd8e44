"""skflow: normalizing-flow density estimation with scikit-learn's API."""

from ._fitting import EpochInfo
from .density import FlowDensity
from .outlier import FlowOutlierDetector
from .regressor import FlowRegressor

__version__ = "0.1.0"
__all__ = ["EpochInfo", "FlowDensity", "FlowOutlierDetector", "FlowRegressor", "__version__"]
