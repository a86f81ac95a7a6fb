"""Time the probe's solvers against each other on real cached features.

Each (solver, rows) case runs in a fresh child process, so its peak resident memory is its
own; every case gets the same rows, validation split, C grid and protocol (search plus
refit, what ``fit_s`` records in result rows), then one test score.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..core.devices import device_name
from ..core.files import append_csv, check_csv
from ..core.memory import peak_rss_gb
from ..core.processes import isolated
from ..data.cache import CachedFeatures
from .protocols import run_probe, validation_size, validation_split
from .solver import ProbeConfig

COLUMNS = ("time", "dataset", "encoder", "n_train", "dims", "solver", "precision", "device", "c_grid",
           "status", "C", "val_acc", "test_acc", "fit_s", "search_points", "peak_rss_gb", "scale", "gap",
           "search_gap", "passes", "probe")


def training_rows(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A stratified, seeded subset of n training rows (all rows when n >= their count)."""
    if n >= len(labels):
        return np.arange(len(labels))
    return validation_split(labels, n, seed)[1]


def _case(train_path: str, test_path: str, n_rows: int, config_dict: dict, val_size: int, seed: int) -> dict:
    train, test = (CachedFeatures.open(Path(p)) for p in (train_path, test_path))
    rows = training_rows(train.labels(), n_rows, seed)
    result = run_probe(train, test, validation_size(val_size, len(rows)), seed, ProbeConfig(**config_dict),
                       rows=rows)
    return {"C": result.C, "val_acc": round(result.val_acc, 3), "test_acc": round(result.test_acc, 3),
            "fit_s": round(result.fit_s, 1), "search_points": len(result.tried), "n_train": len(rows),
            "peak_rss_gb": round(peak_rss_gb(), 2), "gap": float(f"{result.gap:.3g}"),
            "search_gap": float(f"{result.search_gap:.3g}"),
            "passes": round(result.passes) if np.isfinite(result.passes) else ""}


def run_case(train: CachedFeatures, test: CachedFeatures, n_rows: int, config: ProbeConfig,
             val_size: int = 10_000, seed: int = 0, timeout_s: float | None = None) -> dict:
    """One case in a child process; a case past ``timeout_s`` is stopped and reported as such."""
    start = time.perf_counter()
    status, found = isolated(_case, (str(train.path), str(test.path), n_rows, asdict(config), val_size, seed),
                             timeout_s=timeout_s)
    if status != "ok":
        return {"status": status, "fit_s": round(time.perf_counter() - start, 1), "n_train": n_rows}
    return {"status": "ok", **found[0]}


def cases(solvers, precisions) -> list[dict]:
    """The (solver, precision) pairs to time: the torch solver in each precision, liblinear once."""
    out = []
    for solver in solvers:
        out += [{"solver": solver, "precision": p} for p in precisions] if solver == "torch" else \
            [{"solver": solver, "device": "cpu"}]
    return out


def time_solvers(train: CachedFeatures, test: CachedFeatures, row_counts, solvers, precisions, base: ProbeConfig,
                 out: Path, meta: dict, seed: int = 0, timeout_s: float | None = None, log=print):
    """Each (rows, solver, precision) case on the same features; a row per case appended to ``out``, a line each yielded."""
    check_csv(out, COLUMNS, "solver-timing")
    for n in row_counts:
        for case in cases(solvers, precisions):
            config = replace(base, **case)
            precision = config.resolved_precision()
            name = f"{config.kind} {config.solver}" + (f" ({precision})" if config.solver == "torch" else "")
            log(f"{name} on {n} rows ...")
            r = run_case(train, test, n, config, seed=seed, timeout_s=timeout_s)
            row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **meta, "probe": config.spec, "solver": config.solver,
                   "precision": precision, "device": device_name(config.device),
                   "scale": config.scale, **{k: v for k, v in r.items() if k in COLUMNS}}
            append_csv(out, [row], COLUMNS, "solver-timing", warn=log)
            if r["status"] != "ok":
                yield f"{name:<18} {n:>6} rows  {r['status']}"
                continue
            yield (f"{name:<18} {r['n_train']:>6} rows  fit {r['fit_s']:>7.1f} s  C={r['C']:.3g}  "
                   f"val {r['val_acc']:.2f}%  test {r['test_acc']:.2f}%  gap {r['gap']:.1e}  "
                   f"peak {r['peak_rss_gb']:.1f} GB")
