"""Result rows: one line of a results file per run, in a stable column order.

A user's runs go to their own results file (``--results``, or ``BENCH_RESULTS``; by default
``~/.local/share/bench/results/runs.csv``, under ``XDG_DATA_HOME`` when set), never into the
checkout: the project's record in ``results/`` is written only by ``bench record``, which runs
the project's run list with ``BENCH_RESULTS`` pointed there.

Rows are appended under the file's lock (``core.files.append_csv``): concurrent runs each
add their row, one header is written, and a file with an older column set is migrated.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..core.errors import BenchError, reason
from ..core.files import append_csv, atomic_write, check_csv

COLUMNS = (
    "time", "dataset", "data_variant", "protocol", "encoder", "fingerprint", "dims", "layer",
    "C", "c_grid", "scale", "solver", "tol", "precision", "val_acc", "test_acc", "test_acc_std", "test_acc_ci95",
    "draws", "per_class", "val_size", "n_train", "n_test", "extract_s", "fit_s", "peak_rss_gb",
    "device", "version", "seed", "gap", "search_gap", "passes", "limit",
    "probe", "k", "t", "predictions", "command", "commit", "n_classes",
    "encoder_fit_s", "encoder_fit_gflop", "extract_gflop", "search_s", "refit_s", "search_passes", "refit_passes",
)
KNOWN_CLASSES = {"cifar10": 10, "svhn": 10}  # rows written before n_classes was recorded
PREDICTIONS = "predictions"  # folder beside the results file: per-image outcomes of full-protocol rows
RESULTS_ENV = "BENCH_RESULTS"
PROJECT_RECORD = Path(__file__).resolve().parents[2] / "results" / "runs.csv"  # a checkout's record (bench record)


def default_path() -> Path:
    """Where a run's rows go unless ``--results`` says: ``BENCH_RESULTS``, else the user's data folder."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV]).expanduser()
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share").expanduser()
    return data / "bench" / "results" / "runs.csv"


DEFAULT_SHOWN = "$BENCH_RESULTS, else ~/.local/share/bench/results/runs.csv"


def check(path: str | os.PathLike) -> None:
    """Refuse a results file we could not append to, before any work starts."""
    check_csv(path, COLUMNS)


def append(row: dict, path: str | os.PathLike, warn=print) -> None:
    """Append one row; unknown keys are an error, missing ones are left empty."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns: {sorted(unknown)}")
    bad = [k for k, v in row.items() if isinstance(v, (float, np.floating)) and not np.isfinite(v)]
    if bad:  # a backstop: every boundary before this one checks its numbers
        raise BenchError(f"the {row.get('encoder')} row holds non-finite {', '.join(bad)}; it was not written to "
                         f"{path}")
    append_csv(path, [{k: _fmt(v) for k, v in row.items()}], COLUMNS, warn=warn)


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def save_predictions(results_path: str | os.PathLike, row: dict, arrays: dict[str, np.ndarray]) -> str:
    """Store a row's per-image outcomes (boolean arrays) beside the results file; returns the name the row
    records. Bits are packed: 11,000 images take 1.4 kB."""
    stem = re.sub(r"[^A-Za-z0-9.=-]+", "_", f"{row['time']}-{row['dataset']}-{row['encoder']}-{row['protocol']}"
                                            f"-{row.get('probe') or 'svm'}-{row.get('layer') or 'all'}")
    name = f"{PREDICTIONS}/{stem}.npz"
    path = Path(results_path).parent / name
    path.parent.mkdir(parents=True, exist_ok=True)
    packed = {k: np.packbits(np.asarray(v, dtype=bool)) for k, v in arrays.items()}
    lengths = {f"{k}_n": np.int64(len(v)) for k, v in arrays.items()}
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **packed, **lengths)
    return name


def load_predictions(results_path: str | os.PathLike, name: str) -> dict[str, np.ndarray]:
    """The arrays ``save_predictions`` stored under ``name``, unpacked."""
    if not re.fullmatch(rf"{PREDICTIONS}/[A-Za-z0-9.=_-]+\.npz", str(name)) or ".." in str(name):
        raise BenchError(f"{results_path}: a row names predictions {name!r}, not a file of its {PREDICTIONS}/ folder; "
                         "the row is damaged: rerun its command")
    path = Path(results_path).parent / name
    try:
        arrays = {}
        with np.load(path, allow_pickle=False) as z:
            for key in (k for k in z.files if not k.endswith("_n")):
                n, bits = int(z[f"{key}_n"]), np.unpackbits(z[key])
                if len(bits) < n:
                    raise ValueError(f"{key} holds {len(bits)} images, fewer than the {n} recorded")
                arrays[key] = bits[:n].astype(bool)
        if not arrays:
            raise ValueError("no arrays in it")
    except Exception as exc:  # truncated, bit-flipped (zip CRC), empty, foreign: all damage to this file
        raise BenchError(f"{path}: damaged predictions file ({reason(exc)}); rerun the row's command to write them "
                         "again") from None
    return arrays

