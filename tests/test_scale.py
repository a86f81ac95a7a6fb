"""Probing past one process's memory: rows streamed from the cache under a budget, and sharded over torchrun
processes, give the in-memory, one-process result."""

import contextlib
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from benchmark.core.processes import isolated
from benchmark.data.cache import CachedFeatures, CacheKey, FeatureCache
from benchmark.probe import protocols
from benchmark.probe.operand import DiskRows, MemoryRows
from benchmark.probe.solver import ProbeConfig
from benchmark.probe.svm import SVMSolver

PROBES = {"svm": ProbeConfig(kind="svm", scale="standard"), "logreg": ProbeConfig(kind="logreg", scale="standard"),
          "knn": ProbeConfig(kind="knn", scale="none", k_grid=(5, 10), t_grid=(0.07,))}


def write(cache: FeatureCache, split: str, X: np.ndarray, y: np.ndarray) -> CachedFeatures:
    key = CacheKey("synthetic", "fp", "", "synthetic", split, f"data-{split}")
    with cache.writer(key, len(X), X.shape[1], y, {}, {}) as out:
        out.append(X)
    return cache.lookup(key)


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """Class-structured synthetic features: 4 classes, 320 training and 80 test rows of 48 dims."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 48)) * 1.5
    y, yt = np.arange(320) % 4, np.arange(80) % 4
    X = (centres[y] + rng.normal(size=(320, 48)) + 3.0).astype(np.float32)
    Xt = (centres[yt] + rng.normal(size=(80, 48)) + 3.0).astype(np.float32)
    cache = FeatureCache(tmp_path_factory.mktemp("cache"))
    return write(cache, "train", X, y.astype(np.int64)), write(cache, "test", Xt, yt.astype(np.int64))


def outcome(result) -> dict:
    return {"C": result.C, "k": result.k, "t": result.t, "val": result.val_acc, "test": result.test_acc,
            "gap": result.gap}


def assert_same(got: dict, expected: dict):
    for key in ("C", "k", "t", "val", "test"):
        assert got[key] == expected[key] or (got[key] != got[key] and expected[key] != expected[key]), (key, got,
                                                                                                          expected)
    if got["k"] is None:
        assert got["gap"] <= 1e-3
    else:  # kNN is exact: no gap to certify
        assert got["gap"] != got["gap"] and expected["gap"] != expected["gap"]


@pytest.mark.parametrize("probe", list(PROBES))
def test_a_budget_of_a_quarter_of_the_matrix_gives_the_in_memory_fit(probe, cached):
    train, test = cached
    quarter = train.n_rows * train.dim * 4 // 4
    memory = outcome(protocols.run_probe(train, test, 64, 0, PROBES[probe]))
    streamed = outcome(protocols.run_probe(train, test, 64, 0, PROBES[probe].__class__(
        **{**PROBES[probe].__dict__, "memory": quarter})))
    assert_same(streamed, memory)


def test_streamed_rows_give_the_same_weights(cached):
    """Products over blocks round differently from one product over the matrix, so two certified fits agree to
    what their gaps allow: at a tight gap, weights within 1e-5 (float32 products); at the default gap, the same
    predictions (bfloat16 products, whose CG paths part sooner)."""
    train, _ = cached
    X, y = torch.from_numpy(train.read()), torch.from_numpy(train.labels())
    disk = DiskRows(train, np.arange(train.n_rows), None, "cpu", block=50)
    a = SVMSolver(C=1e-2, tol=1e-12, precision="float32").fit(MemoryRows(X), y)
    b = SVMSolver(C=1e-2, tol=1e-12, precision="float32").fit(disk, y)
    relative = float(torch.linalg.norm(b.coef_.double() - a.coef_.double()) / torch.linalg.norm(a.coef_.double()))
    assert relative < 1e-5
    a = SVMSolver(C=1e-2, precision="mixed").fit(MemoryRows(X), y)
    b = SVMSolver(C=1e-2, precision="mixed").fit(disk, y)
    assert a.certified_ and b.certified_ and torch.equal(a.predict(X), b.predict(X))


def _sharded(paths) -> dict:
    """Every probe and the few protocol in this process of a gloo group (started by ``isolated``)."""
    train, test = (CachedFeatures.open(p) for p in paths)
    found = {name: outcome(protocols.run_probe(train, test, 64, 0, config)) for name, config in PROBES.items()}
    few = protocols.run_few_shot(train, test, protocols.FewShot(20, 3, 3), 64, 0, PROBES["svm"])
    found["few"] = {"C": few.C, "k": None, "t": None, "val": few.val_acc, "test": float(np.mean(few.test_accs)),
                    "gap": few.gap}
    return found


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 3])
def test_torchrun_processes_give_the_one_process_row(world, cached, tmp_path):
    """Each process holds its share of the rows (3 processes: uneven shares); sums are all-reduced, kNN's
    neighbours merged."""
    train, test = cached
    one = {name: outcome(protocols.run_probe(train, test, 64, 0, config)) for name, config in PROBES.items()}
    few = protocols.run_few_shot(train, test, protocols.FewShot(20, 3, 3), 64, 0, PROBES["svm"])
    one["few"] = {"C": few.C, "k": None, "t": None, "val": few.val_acc, "test": float(np.mean(few.test_accs)),
                  "gap": few.gap}
    status, found = isolated(_sharded, ((str(train.path), str(test.path)),), processes=world)
    assert status == "ok", status
    sharded = found[0]
    for name in one:
        assert_same(sharded[name], one[name])


@pytest.mark.slow
def test_bench_run_under_torchrun_writes_the_one_process_row(cifar_folder, tmp_path):
    base = ["run", "cifar10", "--features", "pixels", "--data-dir", str(cifar_folder), "--val-size", "20",
            "--cache-dir", str(tmp_path / "cache")]
    one = subprocess.run([sys.executable, "-m", "benchmark.cli", *base, "--results", str(tmp_path / "one.csv")],
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "benchmark.cli", *base, "--results", str(tmp_path / "two.csv")],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    import csv

    a, b = (list(csv.DictReader(open(tmp_path / f"{n}.csv"))) for n in ("one", "two"))
    assert len(a) == len(b) == 1
    for key in ("C", "val_acc", "test_acc", "dims"):
        assert a[0][key] == b[0][key], key


def test_streamed_knn_shows_one_bar_over_every_block(cached, monkeypatch):
    """Rows streamed in blocks are searched under one bar that fills once, not a fresh bar per block."""
    from benchmark.probe import knn
    train, _ = cached
    bars = []

    def recording_bar(**kwargs):
        bars.append({"total": kwargs["total"], "done": 0})
        progress = types.SimpleNamespace(update=lambda n=1: bars[-1].update(done=bars[-1]["done"] + n))
        return contextlib.nullcontext(progress)

    monkeypatch.setattr(knn, "bar", recording_bar)
    disk = DiskRows(train, np.arange(train.n_rows), None, "cpu", block=50).then(knn.normalise_)
    queries = knn.normalised(torch.from_numpy(np.concatenate([train.read()] * 2)))
    found = knn.neighbours(disk, queries, 5, desc="kNN")
    assert bars == [{"total": 7 * 2, "done": 7 * 2}]  # 320 rows in blocks of 50, 640 queries in blocks of 512
    expected = knn.neighbours(knn.normalised(torch.from_numpy(train.read())), queries, 5, desc=None)
    assert torch.equal(found.index, expected.index)
