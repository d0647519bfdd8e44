"""The command line's error type and exit statuses: every failure is reported as one line, never a traceback."""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `cat`, `yes` or `seq` whose reader left early


class CLIError(Exception):
    """An error to report as one line on stderr, without a traceback."""


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (file content, such as a quoted header, can hold newlines)."""
    return " ".join(str(exc).split()) or type(exc).__name__
