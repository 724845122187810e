"""legacy-lstm's shared core: the recurrent kernels, legacy layouts, file formats and the converter.

The project's version lives here, once: the package metadata reads it (pyproject.toml, ``dynamic``).
"""

__version__ = "0.1.0"
