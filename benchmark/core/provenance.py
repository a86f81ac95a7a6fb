"""Where a number came from: the command that made it and the code that ran it."""

from __future__ import annotations

import shlex
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
_ARGS: list[str] = []  # what the command line was given (``remember``), sys.argv's tail otherwise


def remember(args: list[str]) -> None:
    _ARGS[:] = args


def command(argv: list[str] | None = None) -> str:
    """This process's `bench` invocation, in a form one can paste into a shell."""
    args = argv if argv is not None else (_ARGS or sys.argv[1:])
    return shlex.join(["bench", *args])


@lru_cache(maxsize=1)
def code_version() -> str:
    """The git commit of the running code (``+modified`` when the package differs from it), or, for an
    install from a wheel, ``bench <version>``."""
    from .. import __version__

    def git(*args):
        return subprocess.run(["git", *args], cwd=PACKAGE, capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode != 0 or not (PACKAGE.parent / ".git").exists():
            return f"bench {__version__}"
        dirty = git("status", "--porcelain", "--", str(PACKAGE)).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"bench {__version__}"
    return head.stdout.strip() + ("+modified" if dirty else "")
