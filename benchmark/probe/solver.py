"""The probe's settings and the solver they name, behind one fit/predict interface.

``torch`` is this project's L2-SVM (``svm.L2SVM``); ``liblinear`` is scikit-learn's
LinearSVC with the same objective, kept as the reference. ``LIBLINEAR`` holds the
reference's settings in one place, for the fits and for the rows that record them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .svm import L2SVM, Spectrum

DEFAULT_GRID = tuple(float(c) for c in np.logspace(-6, 0, 13))
SOLVERS = ("torch", "liblinear")
LIBLINEAR = {"tol": 1e-4, "max_iter": 2000, "precision": "float64"}


@dataclass(frozen=True)
class ProbeConfig:
    solver: str = "torch"
    grid: tuple[float, ...] = DEFAULT_GRID
    tol: float = 1e-3
    patience: int = 2
    device: str = "cpu"
    precision: str = "float32"
    rank: int = 512  # torch solver: rank of the CG preconditioner (0: none)
    scale: str = "standard"  # "standard": per-feature mean and deviation; "none": raw features, as the DCGAN code

    def recorded(self) -> dict:
        """The solver settings a result row records (the reference's own for liblinear)."""
        if self.solver == "liblinear":
            return {"solver": self.solver, "tol": LIBLINEAR["tol"], "precision": LIBLINEAR["precision"]}
        return {"solver": self.solver, "tol": self.tol, "precision": self.precision}


class Liblinear:
    """scikit-learn's LinearSVC behind the solver interface, kept as the reference."""

    def __init__(self, C):
        from sklearn.svm import LinearSVC

        self.model = LinearSVC(C=C, loss="squared_hinge", penalty="l2", dual="auto", tol=LIBLINEAR["tol"],
                               max_iter=LIBLINEAR["max_iter"])

    def fit(self, X, y, n_classes=None, warm_start=None, X_low=None, spectrum=None):
        self.model.fit(X.numpy(), y.numpy())
        self.coef_ = torch.from_numpy(self.model.coef_).float()
        self.intercept_ = torch.from_numpy(self.model.intercept_).float()
        return self

    def predict(self, X):
        return torch.from_numpy(self.model.predict(X.numpy()))


def make_solver(config: ProbeConfig, C: float):
    if config.solver == "liblinear":
        return Liblinear(C)
    return L2SVM(C=C, tol=config.tol, precision=config.precision)


def accuracy(model, X: torch.Tensor, y: torch.Tensor) -> float:
    return float((model.predict(X).cpu() == y.cpu()).float().mean()) * 100.0


def spectrum_for(config: ProbeConfig, X) -> Spectrum | None:
    """The CG preconditioner's eigenpairs, computed once per matrix (torch solver only)."""
    if config.solver != "torch" or config.rank <= 0:
        return None
    return Spectrum.of(X, config.rank, power_iters=1)
