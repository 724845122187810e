"""``python -m ports.caffe_sequence``: see :mod:`ports.caffe_sequence.cli`."""
import sys

from compat.threads import bound_openmp_spinning

bound_openmp_spinning()  # this process is the program's own; before torch loads

from ports.caffe_sequence.cli import main  # noqa: E402

sys.exit(main(owns_process=True))
