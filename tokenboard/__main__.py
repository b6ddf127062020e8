"""``python -m tokenboard``: see tokenboard/cli.py."""

import sys

from tokenboard.cli import main

if __name__ == "__main__":
    sys.exit(main())
