"""skflow: normalizing-flow density estimation with scikit-learn's API."""

from .density import FlowDensity
from .outlier import FlowOutlierDetector

__version__ = "0.1.0"
__all__ = ["FlowDensity", "FlowOutlierDetector", "__version__"]
