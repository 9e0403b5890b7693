"""``python -m gennas``: the same entry point as the ``gennas`` console script."""

import sys

from gennas.cli import main

if __name__ == "__main__":
    sys.exit(main())
