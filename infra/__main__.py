"""`python -m infra ...`: the tools' command line (infra.tools.cli)."""

import sys

from infra.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
