"""The one exception users see: the CLI prints its message as a single line, no traceback."""


class BenchError(Exception):
    """A problem with the user's input or environment; the message names the file and the fix."""
