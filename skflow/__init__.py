"""skflow: normalizing-flow density estimation with scikit-learn's API."""

from ._version import __version__
from .density import FlowDensity
from .outlier import FlowOutlierDetector

__all__ = ["FlowDensity", "FlowOutlierDetector", "__version__"]
