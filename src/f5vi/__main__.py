"""``python -m f5vi``: the command line (:mod:`f5vi.cli`)."""

import sys

from f5vi.cli import main

if __name__ == "__main__":
    sys.exit(main())
