"""Memory: the peak of this process (recorded beside timings), what is available, sizes as people write them."""

import ctypes
import ctypes.util
import os
import re
import resource
import sys

from .errors import BenchError

UNITS = {"": 1, "b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12, "kib": 2 ** 10, "mib": 2 ** 20,
         "gib": 2 ** 30, "tib": 2 ** 40}
AUTO_SHARE = 0.6  # of the available memory, for a probe's matrices when no budget is given


def parse_size(text: str) -> int:
    """``4GB``, ``500MB``, ``1.5GiB`` -> bytes; one line for anything else."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match and match.group(2).lower()
    if not match or unit not in UNITS or float(match.group(1)) <= 0:
        raise BenchError(f"memory size {text!r}: give a positive number with a unit, e.g. 4GB, 500MB or 1.5GiB")
    return int(float(match.group(1)) * UNITS[unit])


def available_bytes() -> int:
    """Memory available to new work now (Linux's MemAvailable; else the physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_budget() -> int:
    """The probe's memory budget unless --memory says: a share of what is available."""
    return int(available_bytes() * AUTO_SHARE)


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, in GiB: Linux's VmHWM, its own memory's high-water mark.

    Not ``ru_maxrss`` where VmHWM exists: a spawned process's ru_maxrss starts at its parent's peak (exec keeps
    the larger of the two), so a child measured after a large parent would report the parent.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024 ** 2
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 ** (3 if sys.platform == "darwin" else 2)  # bytes on macOS, KiB elsewhere


def release_freed() -> None:
    """Hand the heap's freed pages back to the system (glibc's ``malloc_trim``; elsewhere nothing to do): what an
    extraction freed would otherwise stay in this process's RSS under the probe that follows."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # no C library found, or not glibc
        pass
