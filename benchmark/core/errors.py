"""The one exception users see: the CLI prints its message as a single line, no traceback."""


class BenchError(Exception):
    """A problem with the user's input or environment; the message names the file and the fix."""


class NativeWriteFailed(BenchError):
    """A write inside a native library (HDF5) failed: the library's state cannot be trusted to shut down
    cleanly (HDF5 crashes flushing a half-closed file at exit), so the command line ends the process at once
    after the message, every temporary file already removed."""
