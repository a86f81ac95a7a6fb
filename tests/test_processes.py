"""Measured work in fresh processes: each rank's dict back, one status line for a failure or a timeout."""

import time

import numpy as np

from benchmark.core.distributed import Shard
from benchmark.core.memory import peak_rss_gb
from benchmark.core.processes import isolated


def whoami(tag: str) -> dict:
    shard = Shard.current()
    return {"tag": tag, "rank": shard.rank, "world": shard.world}


def broken() -> dict:
    raise ValueError("features.h5: the file says what is wrong")


def slow() -> dict:
    time.sleep(60)
    return {}


def test_every_rank_of_a_group_returns_its_dict():
    assert isolated(whoami, ("a",)) == ("ok", [{"tag": "a", "rank": 0, "world": 1}])
    status, found = isolated(whoami, ("b",), processes=2)
    assert status == "ok" and found == [{"tag": "b", "rank": r, "world": 2} for r in (0, 1)]


def test_a_failure_is_its_error_line_and_a_timeout_stops_the_process():
    assert isolated(broken) == ("failed (ValueError: features.h5: the file says what is wrong)", [])
    start = time.monotonic()
    assert isolated(slow, timeout_s=2) == ("stopped after 2 s", [])
    assert time.monotonic() - start < 30


def peak() -> dict:
    return {"peak": peak_rss_gb()}


def test_a_process_reports_its_own_peak_not_its_parents():
    # a spawned process's ru_maxrss starts at its parent's peak: after the parent held 1.5 GB, the child would
    # report at least that much
    held = np.ones(int(1.5 * 2 ** 30) // 8)
    del held
    parent = peak_rss_gb()
    status, found = isolated(peak)
    assert status == "ok" and parent >= 1.5 and found[0]["peak"] < parent - 0.7
