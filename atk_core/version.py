"""atk-core's version: one place, read by the package metadata and by the code."""

__version__ = "0.1.0"
