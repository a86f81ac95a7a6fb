"""The probe's settings and the solver they name, behind one fit/predict interface.

``torch`` is this project's L2-SVM (``svm.L2SVM``), stopped on a certified relative
duality gap; ``liblinear`` is scikit-learn's LinearSVC with the same objective, kept as the
reference, whose solutions are certified by the same gap after the fact. ``LIBLINEAR``
holds the reference's settings in one place, for the fits and for the rows that record them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .svm import L2SVM, Operand, Spectrum, certify, default_precision

DEFAULT_GRID = tuple(float(c) for c in np.logspace(-6, 0, 13))
DEFAULT_GAP = 1e-3  # the relative duality gap every leaderboard number is certified to
SOLVERS = ("torch", "liblinear")
LIBLINEAR = {"tol": 1e-4, "max_iter": 2000, "precision": "float64"}


def certified_gaps(gap: float, search_gap: float) -> bool:
    """Whether a result's final fit and every fit of its C search met the project's gap (NaN: never certified)."""
    return bool(gap <= DEFAULT_GAP and search_gap <= DEFAULT_GAP)


@dataclass(frozen=True)
class ProbeConfig:
    solver: str = "torch"
    grid: tuple[float, ...] = DEFAULT_GRID
    gap: float = DEFAULT_GAP  # torch solver: stop each class at this relative duality gap
    patience: int = 2
    device: str = "cpu"
    precision: str = "auto"  # torch solver: "float32", "mixed" (bfloat16 CG products) or "auto"
    rank: int = 512  # torch solver: rank of the CG preconditioner (0: none)
    scale: str = "standard"  # "standard": per-feature mean and deviation; "none": raw features, as the DCGAN code
    fit_time_limit: float | None = None  # torch solver: seconds per fit before it stops uncertified

    def resolved_precision(self) -> str:
        if self.solver == "liblinear":
            return LIBLINEAR["precision"]
        return default_precision(self.device) if self.precision == "auto" else self.precision

    def recorded(self) -> dict:
        """The solver settings a result row records (the reference's own for liblinear)."""
        tol = LIBLINEAR["tol"] if self.solver == "liblinear" else self.gap
        return {"solver": self.solver, "tol": tol, "precision": self.resolved_precision()}


class Liblinear:
    """scikit-learn's LinearSVC behind the solver interface, its solution certified by the duality gap."""

    def __init__(self, C):
        from sklearn.svm import LinearSVC

        self.C = C
        self.model = LinearSVC(C=C, loss="squared_hinge", penalty="l2", dual="auto", tol=LIBLINEAR["tol"],
                               max_iter=LIBLINEAR["max_iter"])

    def fit(self, X, y, n_classes=None, warm_start=None, operand=None, spectrum=None):
        self.model.fit(X.cpu().numpy(), y.cpu().numpy())
        self.coef_ = torch.from_numpy(self.model.coef_).float().to(X.device)
        self.intercept_ = torch.from_numpy(self.model.intercept_).float().to(X.device)
        self.gap_ = certify(X, y, self.coef_, self.intercept_, self.C)
        self.passes_ = float("nan")  # liblinear does not report its passes
        return self

    @property
    def gap(self) -> float:
        return float(self.gap_.max())

    def predict(self, X):
        return torch.nn.functional.linear(X, self.coef_.to(X.device), self.intercept_.to(X.device)).argmax(1)


def make_solver(config: ProbeConfig, C: float):
    if config.solver == "liblinear":
        return Liblinear(C)
    return L2SVM(C=C, tol=config.gap, precision=config.resolved_precision(), time_limit=config.fit_time_limit)


@dataclass
class Prepared:
    """What every fit on one matrix shares: the operand CG reads and the preconditioner's spectrum."""

    operand: Operand | None = None
    spectrum: Spectrum | None = None

    def fit(self, config: ProbeConfig, C: float, X, y, n_classes: int, warm=None):
        start = (warm.coef_, warm.intercept_) if warm is not None else None
        return make_solver(config, C).fit(X, y, n_classes, warm_start=start, operand=self.operand,
                                          spectrum=self.spectrum)


def prepare(config: ProbeConfig, X: torch.Tensor, spectrum: Spectrum | None = None) -> Prepared:
    """The operand and spectrum of X (torch solver only); pass ``spectrum`` to reuse a close one."""
    if config.solver != "torch":
        return Prepared()
    operand = Operand.of(X, config.resolved_precision())
    if spectrum is None and config.rank > 0:
        spectrum = Spectrum.of(operand, config.rank)
    return Prepared(operand, spectrum)


def accuracy(model, X: torch.Tensor, y: torch.Tensor) -> float:
    return float((model.predict(X).cpu() == y.cpu()).float().mean()) * 100.0
