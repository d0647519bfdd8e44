"""skflow: normalizing-flow density estimation with scikit-learn's API."""

from .density import FlowDensity

__version__ = "0.1.0"
__all__ = ["FlowDensity", "__version__"]
