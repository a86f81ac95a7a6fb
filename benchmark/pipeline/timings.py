"""`bench timings`: speed targets, old path against new, timed side by side in one invocation.

Checks out ``--old`` in a temporary git worktree and runs each case's ``bench run`` there and here,
one after the other, so both paths see the same machine load; each path gets its own empty cache
folder (decoded images included), so every case is cold unless it says otherwise. A case's seconds
are read from the row its run writes (``extract_s``, ``fit_s``) or are its wall time. Rows go to the
timings CSV with both commits and the load at the start. Run it on a quiet machine.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..core.errors import BenchError
from ..core.files import append_csv

COLUMNS = ("time", "case", "path", "commit", "seconds", "target_s", "test_acc", "gap", "load_1min", "device")
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    """One timed target: the ``bench run`` arguments, which figure of its row (or its wall time) is timed."""

    name: str
    args: tuple[str, ...]
    measure: str  # "wall", or a row column: "fit_s", "extract_s"
    target_s: float


HEADLINE = "dcgan-imagenet:layers=1-4"
CASES = {
    "headline": (Case("headline, cold cache (extraction + probe)", ("--features", HEADLINE), "wall", 480),
                 Case("headline, features cached (probe only)", ("--features", HEADLINE), "fit_s", 150),
                 Case("extraction of 60,000 images incl. batchnorm estimate", ("--features", HEADLINE), "extract_s",
                      180)),
    "logreg": (Case("headline logreg probe (search + refit)", ("--features", HEADLINE, "--probe", "logreg"), "fit_s",
                    0),),
    "knn": (Case("headline kNN probe (search + test)", ("--features", HEADLINE, "--probe", "knn"), "fit_s", 120),),
    # the probe at the C each K's search chose: the encoder is what is timed, and equal C makes accuracies comparable;
    # the initialisation named, so an older commit (whose default was init=patches) computes the same features
    "kmeans": (Case("k-means K=1,600 fit + extraction", ("--features", "kmeans:init=randn,empty=zero", "--probe",
                                                         "svm:c=0.00316228"), "extract_s", 300),
               Case("k-means K=4,000 fit + extraction", ("--features", "kmeans:k=4000,init=randn,empty=zero", "--probe",
                                                         "svm:c=0.001"), "extract_s", 600)),
}


def _run(args: list[str], cwd: Path, env: dict, results: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run(args + ["--results", str(results)], cwd=cwd, env=env)
    if proc.returncode:
        raise BenchError(f"`{' '.join(args)}` failed in {cwd} (exit {proc.returncode})")
    wall = time.perf_counter() - start
    with open(results, newline="") as f:
        return wall, list(csv.DictReader(f))[-1]


def _measure(label: str, commit: str, python_cwd: Path, cases: list[Case], scratch: Path) -> list[dict]:
    rows, load = [], os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=scratch) as cache:
        env = dict(os.environ, BENCH_CACHE_DIR=cache, PYTHONPATH=str(python_cwd))
        for case in cases:
            wall, row = _run([sys.executable, "-m", "benchmark.cli", "run", "cifar10", *case.args], python_cwd, env,
                             scratch / f"{label}-runs.csv")
            seconds = wall if case.measure == "wall" else float(row[case.measure])
            rows.append({"time": datetime.now().isoformat(timespec="seconds"), "case": case.name, "path": label,
                         "commit": commit, "seconds": f"{seconds:.1f}", "target_s": case.target_s,
                         "test_acc": row["test_acc"], "gap": row.get("gap", ""), "load_1min": f"{load:.2f}",
                         "device": row.get("device", "")})
    return rows


def timings(old: str, groups: list[str], out: Path, log=print) -> list[dict]:
    """Time each group's cases on ``old`` and on this checkout, in one invocation; append the rows to ``out``."""
    git = ["git", "-C", str(ROOT)]
    new = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    if not new:
        raise BenchError(f"{ROOT}: bench timings needs a git checkout (it checks out --old beside it)")
    dirty = subprocess.run(git + ["status", "--porcelain", "benchmark"], capture_output=True, text=True).stdout.strip()
    cases = [case for group in groups for case in CASES[group]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-timings-") as scratch:
        old_tree = Path(scratch) / "old"
        subprocess.run(git + ["worktree", "add", "--detach", str(old_tree), old], check=True, capture_output=True)
        try:
            rows += _measure("old", old, old_tree, cases, Path(scratch))
            rows += _measure("new", new + ("+" if dirty else ""), ROOT, cases, Path(scratch))
        finally:
            subprocess.run(git + ["worktree", "remove", "--force", str(old_tree)], check=False, capture_output=True)
    append_csv(out, rows, COLUMNS, "timing")
    for row in rows:
        log(f"{row['path']:<4} {row['case']:<55} {row['seconds']:>8} s  (target {row['target_s']} s)")
    return rows
