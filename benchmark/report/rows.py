"""Result rows as the report reads them: loaded and checked, whole-dataset rows, the best row per encoder, and
the few formats every table shares."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from ..core.errors import BenchError
from ..probe.solver import certified_gaps
from . import results

UNCERTIFIED = "†"

NUMERIC = ("dims", "C", "tol", "val_acc", "test_acc", "test_acc_std", "test_acc_ci95", "draws", "per_class",
           "val_size", "n_train", "n_test", "extract_s", "fit_s", "peak_rss_gb", "seed", "gap", "search_gap",
           "passes", "limit", "k", "t", "n_classes", "encoder_fit_s", "encoder_fit_gflop", "extract_gflop", "search_s",
           "refit_s", "search_passes", "refit_passes")
ACCURACIES = ("val_acc", "test_acc")  # percentages: finite, within [0, 100]


def load_rows(path, warn=print) -> pd.DataFrame:
    """Every well-formed row of a results file; a malformed line is named in one warning and skipped."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no results yet; run `bench run DATASET --features ENCODER` first")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not a text CSV file; give a results file written by bench run") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    unknown = sorted(set(header) - set(results.COLUMNS))
    if not header or unknown:
        raise BenchError(f"{path}: columns {unknown[:5] or '(none)'} are not result columns; "
                         "give a results file written by bench run")
    good = []
    for fields in reader:
        if fields == header:
            warn(f"warning: {path} line {reader.line_num}: a repeated header; skipped")
        elif len(fields) != len(header):
            warn(f"warning: {path} line {reader.line_num}: {len(fields)} fields where the header has "
                 f"{len(header)}; skipped")
        else:
            good.append(fields)
    rows = pd.DataFrame(good, columns=header).replace("", None)
    for column in results.COLUMNS:
        if column not in rows:
            rows[column] = None
    for column in NUMERIC:
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    accuracies = rows[list(ACCURACIES)]
    broken = accuracies.isna().any(axis=1) | (accuracies < 0).any(axis=1) | (accuracies > 100).any(axis=1)
    for index in rows.index[broken]:
        warn(f"warning: {path}: the row of {rows.at[index, 'time']} ({rows.at[index, 'encoder']}) has accuracies "
             f"{rows.at[index, 'val_acc']} / {rows.at[index, 'test_acc']} (validation / test), not percentages "
             "within 0..100; skipped")
    rows = rows[~broken].copy()
    family = rows["dataset"].fillna("").astype(str).str.split("-").str[0]
    rows["n_classes"] = rows["n_classes"].fillna(family.map(results.KNOWN_CLASSES))
    rows["layer"] = rows["layer"].fillna("")
    rows["probe"] = rows["probe"].fillna("svm")  # rows written before there were other probes
    rows["probe_kind"] = rows["probe"].str.split(":").str[0]
    exact = rows["probe_kind"] == "knn"
    rows["certified"] = [bool(x) or certified_gaps(g, s) for x, g, s in zip(exact, rows["gap"], rows["search_gap"])]
    return rows


def whole_dataset(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows the leaderboard, timings and figures use: whole datasets only (no --limit runs)."""
    return rows[rows["limit"].isna()]


TABLE_KEY = ["dataset", "data_variant", "protocol", "probe_kind"]


def best_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, protocol, probe, encoder): a certified row before any other, then the best validation
    accuracy."""
    rows = rows[rows["layer"].fillna("").isin(["", "all"])]
    rows = rows.sort_values(["certified", "val_acc", "time"]).groupby(TABLE_KEY + ["encoder"], as_index=False).tail(1)
    return rows.sort_values(TABLE_KEY + ["test_acc"], ascending=[True, True, True, True, False])


def setting(row) -> str:
    """The hyper-parameters the probe's search chose: C, or k and T."""
    if row["probe_kind"] == "knn":
        return f"k={row['k']:.0f}, T={row['t']:g}"
    return f"C={row['C']:.3g}"


def pm(acc, std) -> str:
    if pd.isna(acc):
        return ""
    return f"{acc:.2f} ± {std:.2f}" if std is not None and not pd.isna(std) else f"{acc:.2f}"


def gap(value) -> str:
    return "" if pd.isna(value) else f"{value:.1e}"  # two digits: 9.6e-04 must not read as 1e-03


def delta(acc, ref) -> str:
    return "" if ref is None or pd.isna(acc) else f"{acc - ref:+.2f}"
