"""The headline's speed targets, old path against new, timed side by side in one invocation.

Checks out ``--old`` (default a8b55ef, the last commit before this wave's speed work) in a
temporary git worktree and runs the same two commands there and here, one after the other,
so both paths see the same machine load:

    bench run cifar10 --features pixels                     (decodes the images, then probes)
    bench run cifar10 --features dcgan-imagenet:layers=1-4  (decoded images cached, features cold)

Each path gets its own empty cache folder. The cases read from the rows each run writes:
extraction = ``extract_s`` (batchnorm estimate included), probe = ``fit_s`` (C search and
refit on features in memory, i.e. the probe of a run whose features are cached), headline
cold = the second command's wall time. Rows go to ``results/timings.csv``; the new path's
result rows also go to ``results/runs.csv``. Run on a quiet machine:

    BENCH_DATA_DIR=~/data BENCH_WEIGHTS_DIR=../shared/pretrained/dcgan_code python scripts/timings.py
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmark.core.files import append_csv

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("time", "case", "path", "commit", "seconds", "target_s", "test_acc", "gap", "load_1min")
HEADLINE = "dcgan-imagenet:layers=1-4"
TARGETS = {"headline, cold cache (extraction + probe)": 480, "headline, features cached (probe only)": 150,
           "pixels, features cached (probe only)": 30, "extraction of 60,000 images incl. batchnorm estimate": 180}


def run(command: list[str], cwd: Path, env: dict, results: Path) -> tuple[float, dict]:
    """Run one ``bench run`` and return its wall time and the row it appended."""
    start = time.perf_counter()
    subprocess.run(command + ["--results", str(results)], cwd=cwd, env=env, check=True)
    wall = time.perf_counter() - start
    with open(results, newline="") as f:
        return wall, list(csv.DictReader(f))[-1]


def measure(label: str, commit: str, command: list[str], cwd: Path, results: Path) -> list[dict]:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, BENCH_CACHE_DIR=cache)
        load = os.getloadavg()[0]
        _, pixels = run(command + ["--features", "pixels"], cwd, env, results)
        wall, headline = run(command + ["--features", HEADLINE], cwd, env, results)
    seconds = {"headline, cold cache (extraction + probe)": wall,
               "headline, features cached (probe only)": float(headline["fit_s"]),
               "pixels, features cached (probe only)": float(pixels["fit_s"]),
               "extraction of 60,000 images incl. batchnorm estimate": float(headline["extract_s"])}
    now = datetime.now().isoformat(timespec="seconds")
    return [{"time": now, "case": case, "path": label, "commit": commit, "seconds": f"{s:.1f}",
             "target_s": TARGETS[case], "test_acc": (headline if "pixels" not in case else pixels)["test_acc"],
             "gap": (headline if "pixels" not in case else pixels).get("gap", ""), "load_1min": f"{load:.2f}"}
            for case, s in seconds.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="a8b55ef", help="commit of the old path")
    parser.add_argument("--out", default=str(ROOT / "results" / "timings.csv"))
    args = parser.parse_args()
    new = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "benchmark"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        old_tree = Path(scratch) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old_tree), args.old], cwd=ROOT, check=True)
        try:
            old = [sys.executable, "-m", "benchmark.cli", "run", "cifar10"]  # run from the worktree: its package
            rows += measure("old", args.old, old, old_tree, Path(scratch) / "old-runs.csv")
            rows += measure("new", new + ("+" if dirty else ""), ["bench", "run", "cifar10"], ROOT,
                            ROOT / "results" / "runs.csv")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, check=False)
    append_csv(args.out, rows, COLUMNS, "timing")
    for row in rows:
        print(f"{row['path']:<4} {row['case']:<55} {row['seconds']:>8} s  (target {row['target_s']} s)")


if __name__ == "__main__":
    main()
