"""The one place that states skflow's version."""

__version__ = "0.1.0"
