"""`bench record`: the project's run list, whose commands alone write the project's record.

``results/runs.txt`` in a checkout lists, by section, exactly the commands whose rows and outputs
are in ``results/`` and ``BENCHMARKS.md``. Running a section runs its lines in order from the
checkout's root, with ``BENCH_RESULTS`` pointed at ``results/runs.csv``, so each row records its
command as listed; a user's own runs go to their own results file and never touch the record.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import BenchError
from ..report.results import PROJECT_RECORD, RESULTS_ENV

RUN_LIST = PROJECT_RECORD.parent / "runs.txt"
SECTION = re.compile(r"^# == (?P<name>[a-z0-9-]+):")


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    commands: tuple[str, ...]


def sections(path: Path = RUN_LIST) -> dict[str, Section]:
    """The run list's sections, in file order; one line if there is no run list (an install from a wheel)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        raise BenchError(f"{path}: no run list here; `bench record` runs the project's run list in a checkout "
                         "of the repository") from None
    found, name, title, commands = {}, None, "", []
    for line in lines + ["# == end:"]:
        match = SECTION.match(line)
        if match:
            if name:
                found[name] = Section(name, title, tuple(commands))
            name, title, commands = match["name"], line.split(":", 1)[1].strip(), []
        elif name and line.startswith("bench "):
            commands.append(line.strip())
    return found


def record(names: list[str], log=print, path: Path = RUN_LIST) -> int:
    """Run the named sections' commands in order (a shell runs each line: some tee their output into results/);
    returns how many ran. Stops at the first that fails."""
    known = sections(path)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise BenchError(f"{'no section ' + unknown[0] + ' in ' + str(path) if unknown else 'name a section'}; "
                         f"sections: {', '.join(known)}")
    root = path.parent.parent
    env = {**os.environ, RESULTS_ENV: str(root / "results" / "runs.csv")}
    ran = 0
    for name in names:
        for command in known[name].commands:
            log(f"== {time.strftime('%H:%M:%S')} {command}")
            if subprocess.run(["bash", "-c", command], cwd=root, env=env, stdin=subprocess.DEVNULL).returncode:
                raise BenchError(f"`{command}` failed (section {name} of {path}); fix it and run the section again "
                                 "(cached features make the rerun cheap)")
            ran += 1
    return ran
