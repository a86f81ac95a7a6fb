"""The probe's settings and the solver they name, behind one fit/predict interface.

Three probes (``PROBES``): ``svm``, the paper's L2-SVM (``svm.SVMSolver``), and ``logreg``,
multinomial logistic regression (``logreg.LogRegSolver``), both stopped on a certified
relative duality gap, with C chosen on validation; ``knn``, weighted k-nearest neighbours
(``knn``), exact, with k and T chosen on validation. A probe spec names one and may fix its
settings (``logreg:c=1e-4``, ``knn:k=20,t=0.07``), parsed by ``parse_probe`` before any work.

For the SVM, ``torch`` is this project's solver; ``liblinear`` is scikit-learn's LinearSVC
with the same objective, kept as the reference, whose solutions are certified by the same
gap after the fact. ``LIBLINEAR`` holds the reference's settings in one place, for the fits
and for the rows that record them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import BenchError
from . import params
from .knn import K_GRID, T_GRID
from .logreg import LogRegSolver, certify as logreg_certify
from .operand import Operand, Spectrum, as_rows, default_precision
from .svm import SVMSolver, certify

DEFAULT_GRID = tuple(float(c) for c in np.logspace(-6, 0, 13))
DEFAULT_GAP = 1e-3  # the relative duality gap every leaderboard number is certified to
SOLVERS = ("torch", "liblinear", "lbfgs")  # liblinear: the SVM's reference; lbfgs: logistic regression's
PROBES = ("svm", "logreg", "knn")
PROBE_OPTIONS = {"svm": {"c": float}, "logreg": {"c": float}, "knn": {"k": int, "t": float}}
LIBLINEAR = {"tol": 1e-4, "max_iter": 2000, "precision": "float64"}
LBFGS = {"tol": 1e-4, "max_iter": 100, "precision": "float64"}  # scikit-learn's defaults
REFERENCES = {"liblinear": ("svm", LIBLINEAR), "lbfgs": ("logreg", LBFGS)}


def certified_gaps(gap: float, search_gap: float) -> bool:
    """Whether a result's final fit and every fit of its C search met the project's gap (NaN: never certified)."""
    return bool(gap <= DEFAULT_GAP and search_gap <= DEFAULT_GAP)


@dataclass(frozen=True)
class ProbeConfig:
    kind: str = "svm"  # one of PROBES
    k_grid: tuple[int, ...] = K_GRID  # knn: neighbour counts searched on validation
    t_grid: tuple[float, ...] = T_GRID  # knn: vote temperatures searched on validation
    solver: str = "torch"
    grid: tuple[float, ...] = DEFAULT_GRID
    gap: float = DEFAULT_GAP  # torch solver: stop each class at this relative duality gap
    patience: int = 2
    device: str = "cpu"
    precision: str = "auto"  # torch solver: "float32", "mixed" (bfloat16 CG products) or "auto"
    rank: int = 512  # torch solver: rank of the CG preconditioner (0: none)
    scale: str = "standard"  # "standard": per-feature mean and deviation; "none": raw features, as the DCGAN code
    fit_time_limit: float | None = None  # torch solver: seconds per fit before it stops uncertified
    memory: int = 0  # bytes the probe may hold the training rows in (0: no limit); past it, they stream from disk

    @property
    def spec(self) -> str:
        """The probe as rows record it: its name, with the settings it fixes rather than searches."""
        fixed = []
        if self.kind == "knn":
            fixed += [f"k={self.k_grid[0]}"] if self.k_grid != K_GRID and len(self.k_grid) == 1 else []
            fixed += [f"t={self.t_grid[0]:g}"] if self.t_grid != T_GRID and len(self.t_grid) == 1 else []
        elif self.grid != DEFAULT_GRID and len(self.grid) == 1:
            fixed.append(f"c={self.grid[0]:g}")
        return self.kind + (":" + ",".join(fixed) if fixed else "")

    def check(self) -> None:
        """Refuse, before any work, a solver that does not fit this probe."""
        if self.solver in REFERENCES and REFERENCES[self.solver][0] != self.kind:
            raise BenchError(f"--solver {self.solver} is the {REFERENCES[self.solver][0]} probe's reference; "
                             f"with --probe {self.kind} use --solver torch")

    def resolved_precision(self) -> str:
        if self.kind == "knn":
            return "float32"
        if self.solver in REFERENCES:
            return REFERENCES[self.solver][1]["precision"]
        return default_precision(self.device) if self.precision == "auto" else self.precision

    def recorded(self) -> dict:
        """The solver settings a result row records (the reference's own for liblinear)."""
        if self.kind == "knn":
            return {"probe": self.spec, "solver": "exact", "tol": "", "precision": self.resolved_precision()}
        tol = REFERENCES[self.solver][1]["tol"] if self.solver in REFERENCES else self.gap
        return {"probe": self.spec, "solver": self.solver, "tol": tol, "precision": self.resolved_precision()}


def parse_probe(spec: str) -> dict:
    """``NAME[:key=value,...]`` -> ProbeConfig fields; one line for anything unknown or out of range."""
    name, _, rest = spec.strip().partition(":")
    if name not in PROBES:
        raise BenchError(f"unknown probe {name!r} in {spec!r}; choose from {', '.join(PROBES)} "
                         "(e.g. svm, logreg:c=1e-4, knn:k=20,t=0.07)")
    fields = {"kind": name}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        allowed = PROBE_OPTIONS[name]
        if not eq or key not in allowed:
            raise BenchError(f"probe {name}: unknown option {item!r} in {spec!r}; its options are "
                             f"{', '.join(f'{k}=' for k in allowed)}")
        try:
            number = allowed[key](value)
            number = (params.positive_int if allowed[key] is int else params.positive_finite)(key, number)
        except ValueError as exc:
            problem = str(exc) if "must be" in str(exc) else \
                f"{key} must be {'a positive integer' if allowed[key] is int else 'a positive finite number'}, got {value!r}"
            raise BenchError(f"probe {name}: {problem}") from None
        fields[{"c": "grid", "k": "k_grid", "t": "t_grid"}[key]] = (number,)
    return fields


def in_memory(X) -> torch.Tensor:
    """The rows as one tensor, as scikit-learn's solvers need them."""
    X = as_rows(X).tensor()
    if X is None:
        raise BenchError("the scikit-learn reference solvers need the features in memory; raise --memory or use "
                         "--solver torch")
    return X


class Liblinear:
    """scikit-learn's LinearSVC behind the solver interface, its solution certified by the duality gap."""

    def __init__(self, C):
        from sklearn.svm import LinearSVC

        self.C = C
        self.model = LinearSVC(C=C, loss="squared_hinge", penalty="l2", dual="auto", tol=LIBLINEAR["tol"],
                               max_iter=LIBLINEAR["max_iter"])

    def fit(self, X, y, n_classes=None, warm_start=None, operand=None, spectrum=None):
        X = in_memory(X)
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


class Lbfgs(Liblinear):
    """scikit-learn's LogisticRegression (lbfgs, its defaults) on X with a constant column: the same objective
    as ``logreg.LogRegSolver``, its solution certified by the same duality gap."""

    def __init__(self, C, tol: float = LBFGS["tol"], max_iter: int = LBFGS["max_iter"]):
        from sklearn.linear_model import LogisticRegression

        self.C = C
        self.model = LogisticRegression(C=C, fit_intercept=False, tol=tol, max_iter=max_iter)

    def fit(self, X, y, n_classes=None, warm_start=None, operand=None, spectrum=None):
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        X = in_memory(X)
        X64 = np.hstack([X.cpu().double().numpy(), np.ones((len(X), 1))])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # its gap says how far it got
            self.model.fit(X64, y.cpu().numpy())
        coef = torch.from_numpy(self.model.coef_)
        self.coef_, self.intercept_ = coef[:, :-1].float().to(X.device), coef[:, -1].float().to(X.device)
        self.gap_ = torch.tensor([logreg_certify(X, y, self.coef_, self.intercept_, self.C)])
        self.passes_ = float("nan")
        return self


def make_solver(config: ProbeConfig, C: float):
    if config.kind == "logreg" and config.solver == "torch":
        return LogRegSolver(C=C, tol=config.gap, precision=config.resolved_precision(), time_limit=config.fit_time_limit)
    if config.solver == "liblinear":
        return Liblinear(C)
    if config.solver == "lbfgs":
        return Lbfgs(C)
    return SVMSolver(C=C, tol=config.gap, precision=config.resolved_precision(), time_limit=config.fit_time_limit)


@dataclass
class Prepared:
    """What every fit on one matrix shares: the operand CG reads and the preconditioner's spectrum."""

    operand: Operand | None = None
    spectrum: Spectrum | None = None

    def fit(self, config: ProbeConfig, C: float, X, y, n_classes: int, start=None):
        """A fit at C from ``start`` ((W, b); None: from zero)."""
        return make_solver(config, C).fit(X, y, n_classes, warm_start=start, operand=self.operand,
                                          spectrum=self.spectrum)


def prepare(config: ProbeConfig, X: torch.Tensor, spectrum: Spectrum | None = None) -> Prepared:
    """The operand and spectrum of X (torch solver only); pass ``spectrum`` to reuse a close one."""
    if config.solver != "torch" or config.kind == "knn":
        return Prepared()
    operand = Operand.of(X, config.resolved_precision())
    if spectrum is None and config.rank > 0:
        spectrum = Spectrum.of(operand, config.rank)
    return Prepared(operand, spectrum)


def accuracy(model, X: torch.Tensor, y: torch.Tensor) -> float:
    return float((model.predict(X).cpu() == y.cpu()).float().mean()) * 100.0
