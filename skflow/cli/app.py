"""``main``: run one ``skflow`` command and turn every failure into one line on stderr and an exit status."""

from __future__ import annotations

import os
import re
import sys
import warnings

from .errors import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, CLIError, one_line
from .parser import build_parser


def _option_message(exc: Exception) -> str:
    """sklearn's "The 'max_epochs' parameter of FlowDensity must be ..." as "--max-epochs must be ..."."""
    message = one_line(exc)
    match = re.match(r"The '(\w+)' parameter of Flow(?:Density|Regressor) (.*)", message)
    if match:
        return f"--{match.group(1).replace('_', '-')} {match.group(2)}"
    return message


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"skflow: warning: {one_line(Warning(message))}", file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has left.

    Otherwise the interpreter's final flush of what is still buffered raises BrokenPipeError again, and Python
    prints "Exception ignored ... BrokenPipeError" on stderr.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout without a file descriptor (captured, replaced)
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the ``skflow`` command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments after the program name; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 1 on an error, 2 on a usage error, 130 when interrupted, 141 (quietly) when the reader of
        stdout left early, as in ``skflow sample ... | head``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    prog = f"skflow {args.command}"
    debug = os.environ.get("SKFLOW_DEBUG", "") not in ("", "0")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            # torch's note on read-only arrays (pandas' copy-on-write views, read by FlowDensity.fit with bounds)
            # is harmless here (nothing writes to them) and not something a command-line user can act on.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return args.handler(args)
    except CLIError as exc:
        message = one_line(exc)  # file content (a quoted header) could hold a newline
    except BrokenPipeError:
        # Before OSError, its base class. The reader (head, less) chose to stop: nothing to report, and the
        # status a shell gives a Unix tool killed by SIGPIPE, so `set -o pipefail` scripts see what they expect.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (ValueError, TypeError) as exc:
        if debug:
            raise
        message = _option_message(exc)
    except OSError as exc:
        if debug:
            raise
        message = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else one_line(exc)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        message = f"unexpected {type(exc).__name__}: {one_line(exc)} (set SKFLOW_DEBUG=1 for the traceback)"
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return EXIT_ERROR
