"""The package's version (one place; `ascent.__version__` and every run directory read it)."""

__version__ = "0.1.0"
