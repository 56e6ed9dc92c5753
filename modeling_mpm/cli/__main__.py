"""``python -m modeling_mpm.cli <command> ...``: the same as ``mpm <command> ...``."""

import sys

from modeling_mpm.cli import main

if __name__ == "__main__":
    sys.exit(main())
