"""`bench limits`: what this machine can do, measured once, so every timing can say how far it is from it.

Three peaks: matrix products (float32 and bfloat16, square matrices, the best of a few sizes and
repeats), memory bandwidth (reading a 1 GB tensor), and reading a feature file of the cache's own
format (Fletcher-32 chunks of 256 rows) from the cache folder (the page cache's speed once the file is
there, which is where a probe's passes read from). They are stored with the machine's description in
``limits.json`` beside the results file, one entry per device (measuring a machine again replaces its entry),
where the timings table finds them for the rows measured on that device (``report.limits``).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ..core.devices import cpu_model, device_name
from ..core.files import write_text
from ..data.cache import CacheKey, CachedFeatures, FeatureCache
from ..report.limits import stored


HDF5_ROWS = 65_536  # 512 MB of float32 rows of width 2,048
LONG_S = 0.5  # a product this long already measures the rate; a bigger one only costs time


def _best(seconds_of, repeats: int = 3) -> float:
    seconds_of()  # warm-up: first-call costs are not the machine's limit
    return min(seconds_of() for _ in range(repeats))


def matmul_gflops(device: torch.device, dtype: torch.dtype) -> float:
    """The best rate over growing square products; stops growing once one product takes ``LONG_S`` (where a dtype
    is emulated, bfloat16 on a CPU without AVX512-BF16 or AMX, a 4096 product would take minutes)."""
    best = 0.0
    for n in (512, 1024, 2048, 4096):
        a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))

        def once():
            start = time.perf_counter()
            torch.mm(a, b)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - start

        seconds = _best(once)
        best = max(best, 2 * n ** 3 / seconds / 1e9)
        if seconds > LONG_S:
            break
    return best


def memory_gbs(device: torch.device) -> float:
    x = torch.ones(256 * 2 ** 20, device=device)  # 1 GiB of float32

    def once():
        start = time.perf_counter()
        x.sum()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return x.numel() * 4 / _best(once) / 1e9


def hdf5_read_gbs(root: Path) -> float:
    """Read a 512 MB feature file in the cache's format, after writing it (so from the page cache)."""
    cache = FeatureCache(root / "limits-probe")
    rows, width = HDF5_ROWS, 2048
    key = CacheKey("limits-probe", "limits", "", "limits", "train", "limits")
    X = np.random.default_rng(0).standard_normal((4096, width), dtype=np.float32)
    try:
        with cache.writer(key, rows, width, np.zeros(rows, np.int64), {}, {}) as out:
            for _ in range(rows // len(X)):
                out.append(X)
        features = CachedFeatures.open(cache.path(key))

        def once():
            start = time.perf_counter()
            features.read()
            return time.perf_counter() - start

        return rows * width * 4 / _best(once, 2) / 1e9
    finally:
        cache.clear()


def machine(device: torch.device) -> dict:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return {"device": device_name(device), "cpu": cpu_model() or platform.processor(), "cores": os.cpu_count(),
            "memory_gb": round(memory, 1), "torch": torch.__version__, "host": platform.node()}


def measure(device, cache_root: Path, out: Path, log=print) -> dict:
    device = torch.device(device)
    log(f"measuring this machine's peaks on {device_name(device)}...")
    peaks = {"matmul_float32_gflops": round(matmul_gflops(device, torch.float32), 1),
             "matmul_bfloat16_gflops": round(matmul_gflops(device, torch.bfloat16), 1),
             "memory_read_gbs": round(memory_gbs(device), 2),
             "hdf5_read_gbs": round(hdf5_read_gbs(Path(cache_root)), 2)}
    found = {"measured": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(device), "peaks": peaks,
             "load_1min": round(os.getloadavg()[0], 2)}
    machines = {**stored(Path(out)), found["machine"]["device"]: found}
    write_text(out, json.dumps({"machines": machines}, indent=2) + "\n")
    return found
