"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be; when that is a
weakref callback or a ``__del__`` (common while torch frees tensors), the exception is
printed as "Exception ignored" and swallowed, and the run goes on. The handler here also
remembers the signal, and ``check()`` (called on every step of every progress bar) raises
it again, so the run stops at the next step instead; the swallowed one is not printed.
"""

from __future__ import annotations

import signal
import sys
import threading

_pending = threading.Event()


def handler(signum, frame):
    _pending.set()
    raise KeyboardInterrupt


def _unraisable(info) -> None:
    if not (isinstance(info.exc_value, KeyboardInterrupt) and _pending.is_set()):
        sys.__unraisablehook__(info)


def install() -> None:
    """Use ``handler`` for SIGINT (also when the process was started ignoring it)."""
    _pending.clear()
    signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = _unraisable


def received() -> bool:
    """Whether a Ctrl-C arrived since ``install``."""
    return _pending.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C arrived and was swallowed on its way."""
    if _pending.is_set():
        raise KeyboardInterrupt
