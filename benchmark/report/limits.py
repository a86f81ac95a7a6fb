"""The machine's measured peaks (`bench limits`, ``limits.json`` beside the results), and how far a stage is from them."""

from __future__ import annotations

import json
from pathlib import Path

LIMITS = "limits.json"


def read(folder: Path) -> dict | None:
    """The stored limits beside a results file, or None when `bench limits` has not run there."""
    try:
        return json.loads((Path(folder) / LIMITS).read_text())
    except (OSError, ValueError):
        return None
