"""``python -m inference``: the command line (the logic lives in :mod:`inference._cli`)."""

from __future__ import annotations

import sys

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
