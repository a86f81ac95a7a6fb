"""Result rows: one line of ``results/runs.csv`` per run, in a stable column order.

Rows are appended under the file's lock (``core.files.append_csv``): concurrent runs each
add their row, one header is written, and a file with an older column set is migrated.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.files import append_csv, check_csv

COLUMNS = (
    "time", "dataset", "data_variant", "protocol", "encoder", "fingerprint", "dims", "layer",
    "C", "c_grid", "scale", "solver", "tol", "precision", "val_acc", "test_acc", "test_acc_std", "test_acc_ci95",
    "draws", "per_class", "val_size", "n_train", "n_test", "extract_s", "fit_s", "peak_rss_gb",
    "device", "version", "seed", "gap", "search_gap", "passes", "limit",
)
DEFAULT_PATH = Path("results") / "runs.csv"


def check(path: str | os.PathLike = DEFAULT_PATH) -> None:
    """Refuse a results file we could not append to, before any work starts."""
    check_csv(path, COLUMNS)


def append(row: dict, path: str | os.PathLike = DEFAULT_PATH, warn=print) -> None:
    """Append one row; unknown keys are an error, missing ones are left empty."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns: {sorted(unknown)}")
    append_csv(path, [{k: _fmt(v) for k, v in row.items()}], COLUMNS, warn=warn)


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
