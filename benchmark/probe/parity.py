"""`bench parity`: the probes against their references on cached rows.

- logreg: our solver's objective at a C against scikit-learn's lbfgs run to tol 1e-10 on the same
  problem (X with a column of ones, fit_intercept=False), both certified by the gap.
- knn: our predictions on validation rows against a float64 brute force, at every (k, T) of the grid.

Each check is appended to the output CSV as it completes (`bench leaderboard` tabulates it).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from ..core.files import append_csv
from ..data.cache import CachedFeatures
from . import knn
from .logreg import LogRegSolver, certify, objective
from .operand import Spectrum
from .protocols import validation_split
from .solver_timing import training_rows

COLUMNS = ("time", "encoder", "rows", "dims", "check", "setting", "ours", "reference", "difference", "detail")


def parity(train: CachedFeatures, spec: str, n_rows: int, C: float, out: Path, log=print) -> None:
    rows = training_rows(train.labels(), n_rows, 0)
    fit, val = validation_split(train.labels()[rows], n_rows // 5, 0)
    X = torch.from_numpy(train.read(rows))
    y = torch.from_numpy(train.labels()[rows])
    now = datetime.now().isoformat(timespec="seconds")

    def record(row):  # each check as it completes
        row.update(time=now, encoder=spec, rows=n_rows, dims=train.dim)
        log(f"{row['check']}: {row['difference']} ({row['detail']})")
        append_csv(out, [row], COLUMNS, "probe-parity")

    # knn: validation predictions against a float64 brute force, every (k, T) of the grid
    Xn = knn.normalised(X)
    found = knn.neighbours(Xn[fit], Xn[val], max(knn.K_GRID), desc=None)
    exact = torch.topk(Xn[val].double() @ Xn[fit].double().T, max(knn.K_GRID), dim=1)
    reference = knn.Neighbours(exact.values.float(), exact.indices)
    y_fit = y[fit]
    worst = 0
    for k in knn.K_GRID:
        for t in knn.T_GRID:
            a = knn.predict(knn.vote(found, y_fit, 10, k, t))
            r = knn.predict(knn.vote(reference, y_fit, 10, k, t))
            worst = max(worst, int((a != r).sum()))
    same = float((found.index == reference.index).float().mean())
    record({"check": "knn predictions vs float64 brute force", "setting": "k in 10..200, T in 0.03..0.2",
            "ours": "", "reference": "", "difference": f"{worst} of {len(val)}",
            "detail": f"most predictions differing at any (k, T); neighbour lists identical for {same:.2%} of "
                      "positions (the rest: near-ties in float32)"})

    # logreg: objective against lbfgs to tol 1e-10 (features as the probe uses them: raw for DCGAN)
    start = time.perf_counter()
    ours = LogRegSolver(C=C, tol=1e-5).fit(X, y, 10, spectrum=Spectrum.of(X))  # its gap bounds the error
    ours_s = time.perf_counter() - start
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    ref = LogisticRegression(C=C, fit_intercept=False, tol=1e-10, max_iter=100_000).fit(
        np.hstack([X.double().numpy(), np.ones((len(X), 1))]), y.numpy())
    ref_s = time.perf_counter() - start
    W, b = torch.from_numpy(ref.coef_[:, :-1]).float(), torch.from_numpy(ref.coef_[:, -1]).float()
    p_ours, p_ref = ours.objective(X, y), objective(X, y, W, b, C)
    record({"check": "logreg objective vs lbfgs tol 1e-10", "setting": f"C={C:g}",
            "ours": f"{p_ours:.10g}", "reference": f"{p_ref:.10g}", "difference": f"{(p_ours - p_ref) / p_ref:.2e}",
            "detail": f"relative; ours gap {ours.gap:.1e} in {ours_s:.1f} s, lbfgs gap "
                      f"{certify(X, y, W, b, C):.1e} in {ref_s:.1f} s ({ref.n_iter_[0]} iterations)"})
