"""The probes' parameters, checked by one set of rules wherever they come from.

The command line (``--probe logreg:c=1e-4``), the estimators (``LogReg(C=1e-4)``) and the
solvers all call these, so a value means the same, and is refused the same, everywhere.
Each raises ``ValueError`` with a one-line message (scikit-learn's convention); the command
line turns it into its own one-line error.
"""

from __future__ import annotations

import math
import numbers


def positive_finite(name: str, value) -> float:
    """A real number in (0, inf): C, the kNN temperature, a gap."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def positive_int(name: str, value) -> int:
    """An integer >= 1: kNN's neighbour count, an iteration limit."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def neighbours_available(k: int, n_rows: int, where: str) -> int:
    """k, refused when the training rows cannot supply k neighbours (never clamped without a word)."""
    if k > n_rows:
        raise ValueError(f"k={k} neighbours asked for, but {where} has only {n_rows} training "
                         f"{'row' if n_rows == 1 else 'rows'}; choose k <= {n_rows}")
    return k
