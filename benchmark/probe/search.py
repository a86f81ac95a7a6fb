"""The one C search, shared by every protocol: validation accuracy along a log grid of C.

The search walks the grid upward from the smallest C, warm-starting each fit from the
last, and stops once validation accuracy has failed to beat its best for ``patience`` grid
points in a row (a flat start, such as chance accuracy at tiny C, does not count). A best
C at the top edge extends the grid by half-decades (unless it is already perfect); a best C at the bottom walks down
(cold fits) until accuracy falls, so the chosen C is never at an edge of what was tried.
A grid of one C (a probe spec that fixes it) is taken as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.progress import bar
from .solver import Prepared, ProbeConfig, accuracy

STEP = 10 ** 0.5  # half a decade
# where a fit up the grid starts: the last fit moved this share of the secant step through the last two, in log C
# (a predictor along the path of solutions). On 10,000 headline rows the walk to C = 1e-3 took 410 passes against
# 521 from the last fit alone (0.5 of the step; the whole step overshot: 195 passes at C = 1e-3 against 159).
PREDICT = 0.5
TOP, BOTTOM = 1e4, 1e-10  # the grid never extends past these


@dataclass
class Walk:
    C: float  # the chosen C
    accuracy: float  # its validation accuracy
    tried: list[tuple[float, float]] = field(default_factory=list)  # (C, validation accuracy), ascending C
    fitted: Any = None  # what ``evaluate`` returned for the chosen C
    gap: float = 0.0  # the worst relative duality gap of any fit along the walk
    passes: float = 0.0  # passes over the features, all fits along the walk


def walk_grid(grid, patience: int, evaluate: Callable[[float, Any], tuple[float, Any, float, float]],
              desc="search C") -> Walk:
    """Choose C by validation accuracy; ``evaluate(C, warm)`` returns (accuracy, fitted, gap, passes),
    and the fitted state of one C warm-starts the next (``warm`` is None for a cold fit)."""
    grid = sorted(grid)
    fixed = len(grid) == 1  # a C the user fixed (svm:c=...) is used as given, never extended
    tried, warm, gaps, passes = [], None, [], 0.0
    best = Walk(None, -1.0)
    i, since_best = 0, 0
    progress = bar(total=len(grid), desc=desc, unit="C")
    while i < len(grid):
        C = grid[i]
        acc, warm, gap, spent = evaluate(C, warm)
        tried.append((C, acc))
        gaps.append(gap)
        passes += spent
        progress.update()
        progress.set_postfix(C=f"{C:.2g}", val=f"{acc:.2f}", gap=f"{gap:.0e}")
        if acc > best.accuracy:
            best, since_best = Walk(C, acc, fitted=warm), 0
        elif acc < best.accuracy or best.accuracy > tried[0][1]:  # a flat start (chance at tiny C) is no decline
            since_best += 1
            if since_best >= patience:
                break
        if i == len(grid) - 1 and acc >= best.accuracy and acc < 100.0 and C < TOP and not fixed:  # 100%: no higher
            grid.append(C * STEP)  # still rising at the top: extend
            progress.total += 1
        i += 1
    progress.total = progress.n  # stopped early by patience: the bar ends full, at the points walked
    progress.refresh()
    progress.close()
    if best.C == grid[0] and not fixed:  # best at the bottom: walk down until accuracy falls
        C = grid[0]
        while C > BOTTOM:
            C /= STEP
            acc, fitted, gap, spent = evaluate(C, None)
            tried.insert(0, (C, acc))
            gaps.append(gap)
            passes += spent
            if acc <= best.accuracy:
                break
            best = Walk(C, acc, fitted=fitted)
    best.tried, best.gap, best.passes = tried, max(gaps), passes
    return best


def start_of(model) -> tuple:
    return model.coef_, model.intercept_


def next_start(path: list, C: float, warm) -> tuple | None:
    """Where the fit at C starts: None for a cold fit (``warm`` None: ``path`` begins again), else from the fits
    walked up to C (``path``: (C, model), ascending), the last moved ``PREDICT`` of the secant step through the
    last two."""
    if warm is None:
        path.clear()
        return None
    (C1, m1) = path[-1]
    if len(path) == 1:
        return start_of(m1)
    (C0, m0) = path[-2]
    a = PREDICT * math.log(C / C1) / math.log(C1 / C0)
    return m1.coef_ + a * (m1.coef_ - m0.coef_), m1.intercept_ + a * (m1.intercept_ - m0.intercept_)


def search_C(config: ProbeConfig, X_fit, y_fit, X_val, y_val, n_classes: int, prepared: Prepared | None = None):
    """C for fitting on (X_fit, y_fit), chosen on (X_val, y_val): the Walk, its ``fitted`` the chosen model."""
    prepared = prepared or Prepared()
    path = []

    def evaluate(C, warm):
        model = prepared.fit(config, C, X_fit, y_fit, n_classes, next_start(path, C, warm))
        path.append((C, model))
        return accuracy(model, X_val, y_val), model, model.gap, model.passes_

    return walk_grid(config.grid, config.patience, evaluate)
