"""The project's error type for problems with the user's input.

Library code raises :class:`AdvpathError` (or the standard ``ValueError`` /
``FileNotFoundError`` it already used for validation) when a file, an argument, a config
field or a work directory is wrong; the message names the problem and the file or
argument. The ``advpath`` command line turns these into one line ``error: <message>`` on
stderr and exit status 2; any other exception is a bug and is reported as such (with
``--debug`` for its traceback). See docs/reliability.md.
"""

from __future__ import annotations


class AdvpathError(ValueError):
    """A user-facing problem (bad file, argument, config or work directory).

    A ``ValueError`` subclass, so existing ``except ValueError`` callers keep working.
    """


# Exceptions the command line reports as expected problems (one line, exit 2).
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    AdvpathError, ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
)


def one_line(err: BaseException) -> str:
    """The exception's message on one line (numpy and friends sometimes span several)."""
    text = " ".join(str(err).split())
    if isinstance(err, OSError) and err.filename and str(err.filename) not in text:
        text = f"{text} ({err.filename})"
    return text or type(err).__name__
