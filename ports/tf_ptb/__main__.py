"""``python -m ports.tf_ptb --model small --data-path DIR``."""
import sys

from .cli import main

sys.exit(main())
