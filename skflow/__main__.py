"""``python -m skflow``: the command line of :mod:`skflow.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
