"""Saved command outputs: `bench compare` (compare-*.txt) and `bench reproduce` (reproduce-*.txt)."""

from __future__ import annotations

from pathlib import Path

from ..document import Report, section


def saved_outputs(folder: Path, pattern: str = "compare-*.txt") -> str:
    """Saved command outputs (`bench compare`: compare-*.txt; `bench reproduce`: reproduce-*.txt), one block each."""
    blocks = [f"`{p.name}`\n\n```\n{p.read_text().strip()}\n```\n" for p in sorted(Path(folder).glob(pattern))
              if p.read_text().strip()]
    return "\n".join(blocks)


@section("compare", reads=("compare-*.txt",))
def compare(report: Report) -> str:
    return saved_outputs(report.folder, "compare-*.txt")


@section("reproduce", reads=("reproduce-*.txt",))
def reproduce(report: Report) -> str:
    return saved_outputs(report.folder, "reproduce-*.txt")
