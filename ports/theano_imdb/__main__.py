"""``python -m ports.theano_imdb``: see :mod:`ports.theano_imdb.cli`."""
import sys

from ports.theano_imdb.cli import main

sys.exit(main(owns_process=True))
