"""`bench scale`: how the probe's time and memory grow with the rows, in memory, under a budget, over processes.

The features are class-structured synthetic rows (10 classes, a Gaussian around each class centre), stored in
the cache's own format as float16, as an ImageNet-size cache would be kept (1.28 M rows of 2,048: 5.2 GB). Each
case is the SVM at one fixed C on the full protocol's own path (``run_probe``: a fit on the fit rows, the
validation score, the refit on all rows, the test score) in fresh spawned processes, so its peak RSS is its own;
several processes shard the rows as under torchrun (gloo). Its row: seconds, passes over the rows, seconds per
pass, the largest process's peak RSS, accuracy and gap. The report fits the growth exponent of time in rows.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core.devices import device_name
from ..core.files import append_csv
from ..core.memory import available_bytes, peak_rss_gb
from ..core.processes import isolated
from ..data.cache import CachedFeatures, CacheKey, FeatureCache
from .protocols import Placement, run_probe, validation_size
from .solver import ProbeConfig

COLUMNS = ("time", "rows", "width", "placement", "budget_gb", "processes", "seconds", "passes", "s_per_pass",
           "peak_rss_gb", "C", "val_acc", "test_acc", "gap", "device", "load_1min", "status")
CLASSES = 10
SEPARATION = 0.03  # class centres' spread against unit noise per feature: classes overlap, the fit has work to do
TEST_ROWS = 10_000
WRITE_BLOCK = 16_384


def synthetic(cache: FeatureCache, rows: int, width: int, split: str, log=print) -> CachedFeatures:
    """The synthetic split of ``rows`` x ``width`` float16 features in ``cache``, written once and reused."""
    key = CacheKey("synthetic", f"synthetic-{CLASSES}-{SEPARATION}-{width}", "", "synthetic", split,
                   f"{split}-{rows}")
    found = cache.lookup(key, warn=log)
    if found is not None:
        return found
    centres = np.random.default_rng(0).standard_normal((CLASSES, width), dtype=np.float32) * SEPARATION
    noise = np.random.default_rng({"train": 1, "test": 2}[split] * 1_000_003 + rows)
    labels = np.arange(rows, dtype=np.int64) % CLASSES
    log(f"writing {rows:,} synthetic {split} rows of {width} float16 features ({rows * width * 2 / 1e9:.2g} GB)")
    with cache.writer(key, rows, width, labels, {"synthetic": True}, {}, dtype=np.float16) as out:
        for start in range(0, rows, WRITE_BLOCK):
            y = labels[start:start + WRITE_BLOCK]
            out.append((centres[y] + noise.standard_normal((len(y), width), dtype=np.float32)).astype(np.float16))
    return cache.lookup(key, warn=log)


@dataclass(frozen=True)
class Case:
    rows: int
    budget: int  # bytes per process for the training rows; 0: in memory
    processes: int

    @property
    def placement(self) -> str:
        """Under a budget the probe streams the rows when its share does not fit, as ``--memory`` does."""
        return "budget" if self.budget else "no budget"


def fits_in_memory(rows: int, width: int) -> bool:
    """Whether the rows, as float32 with the probe's copies (over all processes), fit in the memory available now."""
    return Placement().need(rows, width) < 0.8 * available_bytes()


def _case(paths: tuple[str, str], config: dict) -> dict:
    train, test = (CachedFeatures.open(Path(p)) for p in paths)
    start = time.perf_counter()
    result = run_probe(train, test, validation_size(10_000, train.n_rows), 0, ProbeConfig(**config))
    return {"seconds": time.perf_counter() - start, "passes": result.passes, "peak_rss_gb": peak_rss_gb(),
            "C": result.C, "val_acc": result.val_acc, "test_acc": result.test_acc, "gap": result.gap}


def run_case(train: CachedFeatures, test: CachedFeatures, case: Case, C: float) -> dict:
    """One case in ``case.processes`` fresh processes: rank 0's figures, the largest peak RSS of any."""
    config = asdict(ProbeConfig(kind="svm", grid=(C,), scale="none", memory=case.budget))
    status, found = isolated(_case, ((str(train.path), str(test.path)), config), case.processes)
    if status != "ok":
        return {"status": status}
    first = found[0]
    return {"status": "ok", **{k: first[k] for k in ("seconds", "passes", "C", "val_acc", "test_acc", "gap")},
            "peak_rss_gb": max(f["peak_rss_gb"] for f in found), "s_per_pass": first["seconds"] / first["passes"]}


def scale_curve(cache: FeatureCache, row_counts, width: int, budget: int, process_counts, C: float, out: Path,
                placement: str = "both", log=print):
    """Every case of rows x (no budget where the rows fit in memory; ``budget``: as ``placement`` says, "memory",
    "budget" or "both") x processes; a row each appended to ``out`` as it completes, and a line each yielded."""
    test = synthetic(cache, TEST_ROWS, width, "test", log)
    for rows in row_counts:
        train = synthetic(cache, rows, width, "train", log)
        for processes in process_counts:
            budgets = ([0] if placement != "budget" and fits_in_memory(rows, width) else []) + \
                ([budget] if placement != "memory" else [])
            for case in (Case(rows, b, processes) for b in budgets):
                log(f"{rows:,} rows, {case.placement}, {processes} process{'es' if processes > 1 else ''} ...")
                load = os.getloadavg()[0]
                r = run_case(train, test, case, C)
                row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows, "width": width,
                       "placement": case.placement, "budget_gb": float(f"{case.budget / 1e9:.3g}") if case.budget else "",
                       "processes": processes, "device": device_name("cpu"), "load_1min": round(load, 2), **r}
                append_csv(out, [row], COLUMNS, "scale", warn=log)
                if r["status"] != "ok":
                    yield f"{rows:>9,} rows  {case.placement:<9}  x{processes}  {r['status']}"
                    continue
                yield (f"{rows:>9,} rows  {case.placement:<9}  x{processes}  {r['seconds']:>8.1f} s  "
                       f"{r['passes']:>5.0f} passes  {r['s_per_pass']:.2f} s/pass  peak {r['peak_rss_gb']:.2f} GB  "
                       f"test {r['test_acc']:.2f}%  gap {r['gap']:.1e}")
