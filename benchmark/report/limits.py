"""The machines' measured peaks (`bench limits`, ``limits.json`` beside the results): how far a stage is from them."""

from __future__ import annotations

import json
from pathlib import Path

LIMITS = "limits.json"


def stored(path: Path) -> dict[str, dict]:
    """The limits in a ``limits.json``, by device ({} for no file, or one this version does not read)."""
    try:
        machines = json.loads(Path(path).read_text()).get("machines")
    except (OSError, ValueError, AttributeError):
        return {}
    return machines if isinstance(machines, dict) else {}


def read(folder: Path) -> dict[str, dict]:
    """The stored limits beside a results file, by device ({} when `bench limits` has not run there)."""
    return stored(Path(folder) / LIMITS)
