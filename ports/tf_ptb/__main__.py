"""``python -m ports.tf_ptb --model small --data-path DIR``: see :mod:`ports.tf_ptb.cli`."""
import sys

from ports.tf_ptb.cli import main

sys.exit(main(owns_process=True))
