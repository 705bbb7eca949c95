"""The package version, read by the build backend and exposed as ``inference.__version__``."""

__version__ = "0.1.0"
