"""``python -m tokenboard.gateway ...``: the same as ``python -m tokenboard gateway ...``."""

import sys

from tokenboard.gateway.cli import main

sys.exit(main(sys.argv[1:]))
