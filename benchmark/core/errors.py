"""The one exception users see: the CLI prints its message as a single line, no traceback."""

import re


class BenchError(Exception):
    """A problem with the user's input or environment; the message names the file and the fix."""


class InputError(BenchError, ValueError):
    """Python input an object cannot use (images of the wrong type, shape or size, a call out of order): a
    ValueError to Python code, one line on the command line."""


class NativeWriteFailed(BenchError):
    """A write inside a native library (HDF5) failed: the library's state cannot be trusted to shut down
    cleanly (HDF5 crashes flushing a half-closed file at exit), so the command line ends the process at once
    after the message, every temporary file already removed."""


def reason(exc: BaseException, limit: int = 140) -> str:
    """An exception as a short clause for a one-line message: its type and the first sentence of its text."""
    text = " ".join(str(exc).split())
    first = re.split(r"(?<=[.;])\s", text, maxsplit=1)[0] if len(text) > limit else text
    first = first if len(first) <= limit else first[:limit - 3] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
