"""BENCHMARKS.md's generated sections, as a registry.

A section is one function registered with ``@section(name, reads=...)``: it takes a ``Report`` (the
whole-dataset rows and the folder beside the results file) and returns its markdown, or "" when
there is nothing to show. ``update`` writes each one between its markers
(``<!-- bench:NAME:start -->`` ... ``end``) and leaves the text around them alone; a section whose
markers are missing is appended. Adding a section is adding one registered function (the modules of
``report.sections``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import pandas as pd

from ..core.files import write_text
from .rows import load_rows, whole_dataset


@dataclass
class Report:
    """What every section reads: the results file, its whole-dataset rows, the folder beside it, the document."""

    results_path: Path
    out: Path
    warn: Callable = print

    @cached_property
    def rows(self) -> pd.DataFrame:
        return whole_dataset(load_rows(self.results_path, self.warn))

    @property
    def folder(self) -> Path:
        return Path(self.results_path).parent


@dataclass(frozen=True)
class Section:
    name: str  # the markers' name
    render: Callable[[Report], str]
    reads: tuple[str, ...] = field(default=())  # files beside the results it reads, besides the rows

    @property
    def markers(self) -> tuple[str, str]:
        return f"<!-- bench:{self.name}:start -->", f"<!-- bench:{self.name}:end -->"


SECTIONS: dict[str, Section] = {}


def section(name: str, reads: tuple[str, ...] = ()):
    """Register ``render`` as the generated section ``name``."""
    def register(render: Callable[[Report], str]):
        SECTIONS[name] = Section(name, render, reads)
        return render

    return register


def replace_section(document: str, body: str, start: str, end: str) -> str:
    """Put ``body`` between the markers, appending the marked section if it is absent."""
    block = f"{start}\n{body}\n{end}"
    if start in document and end in document:
        return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, document, flags=re.S)
    return document.rstrip() + "\n\n" + block + "\n"


def update(results_path: Path, out: Path, warn=print) -> str:
    """Rewrite every registered section of ``out`` from the results beside ``results_path``; returns the
    leaderboard section's text."""
    from . import sections  # noqa: F401  (registers every section)

    report = Report(Path(results_path), Path(out), warn)
    document = out.read_text() if out.exists() else "# Benchmarks\n"
    bodies = {name: s.render(report) for name, s in SECTIONS.items()}
    for name, body in bodies.items():
        if body:
            document = replace_section(document, body, *SECTIONS[name].markers)
    write_text(out, document)
    return bodies.get("leaderboard", "")
