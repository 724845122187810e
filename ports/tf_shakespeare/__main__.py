"""``python -m ports.tf_shakespeare train|sample|report``: see :mod:`ports.tf_shakespeare.cli`."""
import sys

from compat.threads import bound_openmp_spinning

bound_openmp_spinning()  # this process is the program's own; before torch loads

from ports.tf_shakespeare.cli import main  # noqa: E402

sys.exit(main(owns_process=True))
