"""``python -m ports.theano_imdb``: see :mod:`ports.theano_imdb.cli`."""
import sys

from compat.threads import bound_openmp_spinning

bound_openmp_spinning()  # this process is the program's own; before torch loads

from ports.theano_imdb.cli import main  # noqa: E402

sys.exit(main(owns_process=True))
