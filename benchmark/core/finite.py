"""One finiteness rule for numbers that cross a boundary (weights, fitted state, features, probe input):
finite, or one line naming where they came from and what to do, before they go any further."""

from __future__ import annotations

import numpy as np
import torch

from .errors import BenchError


def nonfinite_count(values) -> int:
    """How many NaN or infinite values a numpy array or tensor holds (0 for integer and boolean ones)."""
    if torch.is_tensor(values):
        return int((~torch.isfinite(values)).sum()) if values.is_floating_point() else 0
    values = np.asarray(values)
    return int((~np.isfinite(values)).sum()) if np.issubdtype(values.dtype, np.floating) else 0


def check_finite(values, what: str, fix: str) -> None:
    """Refuse ``values`` holding NaN or infinity: ``what`` names them (a file, a tensor), ``fix`` says what to do."""
    bad = nonfinite_count(values)
    if bad:
        raise BenchError(f"{what}: {bad} of {np.prod(tuple(values.shape), dtype=np.int64):,} values are NaN or "
                         f"infinite; {fix}")
