"""Evaluation protocols: how labelled training rows are used and what a result row reports.

``full``: C chosen on a held-out validation split of the training set, refit on all
training rows, scored once on test.
"""

from __future__ import annotations

from .cache import CachedFeatures
from .errors import BenchError
from .probe import ProbeConfig, run_probe

PROTOCOLS = ("full",)


def run(name: str, train: CachedFeatures, test: CachedFeatures, val_size: int, seed: int,
        probe: ProbeConfig, columns, opts, log=print) -> dict:
    if name == "full":
        r = run_probe(train, test, val_size, seed, probe, columns, log)
        return {"C": r.C, "val_acc": round(r.val_acc, 3), "test_acc": round(r.test_acc, 3),
                "draws": 1, "fit_s": round(r.fit_s, 1)}
    raise BenchError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
