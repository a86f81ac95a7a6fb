"""Peak memory of this process, as recorded beside timings."""

import resource


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, in GB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
