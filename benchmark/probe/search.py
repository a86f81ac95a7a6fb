"""The one C search, shared by every protocol: validation accuracy along a log grid of C.

The search walks the grid upward from the smallest C, warm-starting each fit from the
last, and stops once validation accuracy has failed to beat its best for ``patience`` grid
points in a row (a flat start, such as chance accuracy at tiny C, does not count). A best
C at the top edge extends the grid by half-decades; a best C at the bottom walks down
(cold fits) until accuracy falls, so the chosen C is never at an edge of what was tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..core.progress import bar
from .solver import ProbeConfig, accuracy, make_solver

STEP = 10 ** 0.5  # half a decade
TOP, BOTTOM = 1e4, 1e-10  # the grid never extends past these


@dataclass
class Walk:
    C: float  # the chosen C
    accuracy: float  # its validation accuracy
    tried: list[tuple[float, float]] = field(default_factory=list)  # (C, validation accuracy), ascending C
    fitted: Any = None  # what ``evaluate`` returned for the chosen C


def walk_grid(grid, patience: int, evaluate: Callable[[float, Any], tuple[float, Any]], desc="search C") -> Walk:
    """Choose C by validation accuracy; ``evaluate(C, warm)`` returns (accuracy, fitted), and the
    fitted state of one C warm-starts the next (``warm`` is None for a cold fit)."""
    grid = sorted(grid)
    tried, warm = [], None
    best = Walk(None, -1.0)
    i, since_best = 0, 0
    progress = bar(total=len(grid), desc=desc, unit="C")
    while i < len(grid):
        C = grid[i]
        acc, warm = evaluate(C, warm)
        tried.append((C, acc))
        progress.update()
        progress.set_postfix(C=f"{C:.2g}", val=f"{acc:.2f}")
        if acc > best.accuracy:
            best, since_best = Walk(C, acc, fitted=warm), 0
        elif acc < best.accuracy or best.accuracy > tried[0][1]:  # a flat start (chance at tiny C) is no decline
            since_best += 1
            if since_best >= patience:
                break
        if i == len(grid) - 1 and acc >= best.accuracy and C < TOP:
            grid.append(C * STEP)  # still rising at the top: extend
            progress.total += 1
        i += 1
    progress.close()
    if best.C == grid[0]:  # best at the bottom: walk down until accuracy falls
        C = grid[0]
        while C > BOTTOM:
            C /= STEP
            acc, fitted = evaluate(C, None)
            tried.insert(0, (C, acc))
            if acc <= best.accuracy:
                break
            best = Walk(C, acc, fitted=fitted)
    best.tried = tried
    return best


def search_C(config: ProbeConfig, X_fit, y_fit, X_val, y_val, n_classes: int, spectrum=None):
    """C for fitting on (X_fit, y_fit), chosen on (X_val, y_val); returns (C, accuracy, tried, model)."""
    low = X_fit.to(torch.bfloat16) if config.precision == "mixed" else None

    def evaluate(C, warm):
        start = (warm.coef_, warm.intercept_) if warm is not None else None
        model = make_solver(config, C).fit(X_fit, y_fit, n_classes, warm_start=start, X_low=low, spectrum=spectrum)
        return accuracy(model, X_val, y_val), model

    walk = walk_grid(config.grid, config.patience, evaluate)
    return walk.C, walk.accuracy, walk.tried, walk.fitted
