"""``python -m ports.tf_shakespeare train|sample|report``: see :mod:`ports.tf_shakespeare.cli`."""
import sys

from ports.tf_shakespeare.cli import main

sys.exit(main(owns_process=True))
