"""``python -m ports.tf_sine``."""
import sys

from .cli import main

sys.exit(main(owns_process=True))
