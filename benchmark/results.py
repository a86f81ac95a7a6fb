"""Result rows: one line of ``results/runs.csv`` per run, in a stable column order."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .errors import BenchError

COLUMNS = (
    "time", "dataset", "data_variant", "protocol", "encoder", "fingerprint", "dims", "layer",
    "C", "c_grid", "scale", "solver", "tol", "precision", "val_acc", "test_acc", "test_acc_std", "test_acc_ci95",
    "draws", "per_class", "val_size", "n_train", "n_test", "extract_s", "fit_s", "peak_rss_gb",
    "device", "version", "seed",
)
DEFAULT_PATH = Path("results") / "runs.csv"


def append(row: dict, path: str | os.PathLike = DEFAULT_PATH) -> None:
    """Append one row; unknown keys are an error, missing ones are left empty."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns: {sorted(unknown)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        _migrate(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: _fmt(v) for k, v in row.items()})


def _migrate(path: Path) -> None:
    """Rewrite a file written with an older column set into today's columns (new ones left empty)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) == COLUMNS:
            return
        rows = list(reader)
    unknown = set(reader.fieldnames) - set(COLUMNS)
    if unknown:
        raise BenchError(f"{path}: columns {sorted(unknown)} are not result columns; move the file aside "
                         "or pass --results with another path")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
