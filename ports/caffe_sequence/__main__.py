"""``python -m ports.caffe_sequence``: see :mod:`ports.caffe_sequence.cli`."""
import sys

from ports.caffe_sequence.cli import main

sys.exit(main(owns_process=True))
