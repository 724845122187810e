"""``python -m ports.tf_ptb --model small --data-path DIR``: see :mod:`ports.tf_ptb.cli`."""
import sys

from compat.threads import bound_openmp_spinning

bound_openmp_spinning()  # this process is the program's own; before torch loads

from ports.tf_ptb.cli import main  # noqa: E402

sys.exit(main(owns_process=True))
