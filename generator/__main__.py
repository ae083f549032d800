import sys

from generator.cli import entry

sys.exit(entry())
