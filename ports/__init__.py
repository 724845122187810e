"""The legacy programs, each runnable as ``python -m ports.<name>``."""

from compat import __version__

__all__ = ["__version__"]
