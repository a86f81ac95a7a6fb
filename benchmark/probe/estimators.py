"""The three probes as scikit-learn estimators, for notebooks, ``Pipeline`` and ``GridSearchCV``.

They take numpy arrays or torch tensors (any numeric dtype; contiguous float32 input on the
CPU is used without a copy, so the torch path keeps its speed) and labels of any values
(``classes_`` maps them back). Fitted weights live as float32 tensors; ``coef_`` and
``intercept_`` are numpy views of them for scikit-learn.

    from benchmark.probe import L2SVM, LogReg, KNN
    L2SVM(C=1e-3).fit(X, y).score(X_test, y_test)
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..core.devices import resolve_device
from ..core.errors import BenchError
from ..core.progress import bar
from . import knn, params
from .logreg import LogRegSolver
from .svm import SVMSolver


class _Probe(ClassifierMixin, BaseEstimator):
    """Input checks, label encoding and torch conversion shared by the three probes."""

    def _fit_inputs(self, X, y):
        if torch.is_tensor(y):
            y = y.detach().cpu().numpy()
        X, y = validate_data(self, _numpy(X), y, dtype=[np.float32, np.float64])
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data; "
                             f"got 1 class: {self.classes_[0]!r}")
        try:
            device = torch.device(resolve_device(self.device, "device="))
        except BenchError as exc:
            raise ValueError(str(exc)) from None
        self.device_ = str(device)
        return self._checked(_tensor(X, device)), torch.from_numpy(encoded.astype(np.int64)).to(device)

    def _checked(self, X: torch.Tensor) -> torch.Tensor:
        """Float32 X the probe's arithmetic can hold: finite after the cast (float64 beyond float32's range is not)."""
        if not torch.isfinite(X).all():
            raise ValueError(f"{type(self).__name__}: X has values beyond float32's range (the probes compute in "
                             "float32); rescale the features")
        return X

    def _inputs(self, X) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(self, _numpy(X), dtype=[np.float32, np.float64], reset=False)
        return self._checked(_tensor(X, torch.device(self.device_)))

    def _scores(self, X) -> torch.Tensor:
        raise NotImplementedError

    def decision_function(self, X) -> np.ndarray:
        """Class scores (n, n_classes); for two classes, one score per sample (positive: ``classes_[1]``).
        kNN's scores are each class's share of the vote."""
        scores = self._scores(X).double().cpu().numpy()
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X) -> np.ndarray:
        best = self._scores(X).argmax(1).cpu().numpy()
        return self.classes_[best]


class _Linear(_Probe):
    def _checked(self, X: torch.Tensor) -> torch.Tensor:
        """Also: features whose squares overflow float32 (X^T X, the preconditioner) are refused, not fitted."""
        X = super()._checked(X)
        largest = float(X.abs().max()) if X.numel() else 0.0
        if largest ** 2 * len(X) > torch.finfo(torch.float32).max:
            raise ValueError(f"{type(self).__name__}: X is too large for float32 products (largest |x| = "
                             f"{largest:.3g}; its squares summed over rows overflow); standardise or rescale the features")
        return X

    @property
    def coef_(self) -> np.ndarray:
        return self.solver_.coef_.float().cpu().numpy()

    @property
    def intercept_(self) -> np.ndarray:
        return self.solver_.intercept_.float().cpu().numpy()

    @property
    def gap_(self) -> float:
        """The fit's certified relative duality gap (worst class for the SVM)."""
        return self.solver_.gap

    @property
    def certified_(self) -> bool:
        """Whether the fit met its gap ``tol`` (``max_iter`` or ``time_limit`` can stop it short)."""
        return bool(self.solver_.certified_)

    @property
    def n_iter_(self) -> int:
        return self.solver_.n_iter_

    def fit(self, X, y):
        X, y = self._fit_inputs(X, y)
        settings = dict(C=self.C, tol=self.tol, max_iter=self.max_iter, precision=self.precision,
                        time_limit=None if self.time_limit is None else params.positive_finite("time_limit",
                                                                                               self.time_limit))
        name = type(self).__name__
        with bar(total=self.max_iter, desc=f"{name} C={self.C:g}", unit="step", disable=not self.verbose) as steps:
            def progress(step, gap):
                steps.update()
                steps.set_postfix(gap=f"{gap:.1e}")

            self.solver_ = self._solver(**settings).fit(X, y, len(self.classes_), progress=progress)
        if not self.certified_:
            limit = "time_limit" if self.n_iter_ < self.max_iter else "max_iter"
            warnings.warn(f"{name}: stopped at relative duality gap {self.gap_:.1e} after {self.n_iter_} Newton steps "
                          f"({limit}), short of tol={self.tol:g}; raise max_iter or time_limit, or lower C",
                          ConvergenceWarning, stacklevel=2)
        return self

    def _scores(self, X) -> torch.Tensor:
        X = self._inputs(X)
        return self.solver_.decision_function(X)


class L2SVM(_Linear):
    """The paper's probe: one-vs-rest L2-regularised squared-hinge SVM, intercept penalised as LinearSVC's,
    stopped at relative duality gap ``tol`` (certified), else after ``max_iter`` Newton steps or ``time_limit``
    seconds with a ``ConvergenceWarning``. C is liblinear's (a sum over samples): the default, 1e-4, is where
    this suite's search lands on CIFAR-10 features; search it (``GridSearchCV``) for yours. ``precision="auto"``
    uses bfloat16 Hessian products where they are native; ``verbose`` shows a bar of Newton steps."""

    def __init__(self, C: float = 1e-4, tol: float = 1e-3, max_iter: int = 200, time_limit: float | None = None,
                 precision: str = "auto", device: str = "auto", verbose: bool = False):
        self.C, self.tol, self.max_iter, self.time_limit = C, tol, max_iter, time_limit
        self.precision, self.device, self.verbose = precision, device, verbose

    _solver = SVMSolver


class LogReg(_Linear):
    """Multinomial logistic regression with the intercept penalised as a constant feature (scikit-learn's
    ``LogisticRegression(fit_intercept=False)`` on X with a column of ones), stopped at relative duality
    gap ``tol`` (certified), else as ``L2SVM``. The default C, 1e-3, is where this suite's search lands on
    CIFAR-10 features."""

    def __init__(self, C: float = 1e-3, tol: float = 1e-3, max_iter: int = 200, time_limit: float | None = None,
                 precision: str = "auto", device: str = "auto", verbose: bool = False):
        self.C, self.tol, self.max_iter, self.time_limit = C, tol, max_iter, time_limit
        self.precision, self.device, self.verbose = precision, device, verbose

    _solver = LogRegSolver

    def predict_proba(self, X) -> np.ndarray:
        return torch.softmax(self._scores(X).double(), 1).cpu().numpy()


class KNN(_Probe):
    """Weighted kNN on L2-normalised features: the ``k`` most cosine-similar training rows vote exp(s / t),
    computed by the same code as ``--probe knn`` (similarities re-scored in float64, so a sample's scores do
    not depend on which other samples share its batch)."""

    def __init__(self, k: int = 20, t: float = 0.07, device: str = "auto", verbose: bool = False):
        self.k, self.t, self.device, self.verbose = k, t, device, verbose

    def fit(self, X, y):
        k, self.t_ = params.positive_int("k", self.k), params.positive_finite("t", self.t)
        X, self.labels_ = self._fit_inputs(X, y)
        self.k_ = params.neighbours_available(k, len(X), "the data passed to fit")
        self.train_ = knn.normalised(X)
        return self

    def _scores(self, X) -> torch.Tensor:
        """Each class's share of the vote."""
        queries = knn.normalised(self._inputs(X))
        votes = knn.classify(self.train_, self.labels_, queries, len(self.classes_), self.k_, self.t_,
                             desc="KNN" if self.verbose else None)
        return votes / votes.sum(1, keepdim=True)

    def predict_proba(self, X) -> np.ndarray:
        return self._scores(X).cpu().numpy()


def _numpy(X):
    """Tensors become numpy views (CPU) for validation; everything else as given."""
    return X.detach().cpu().numpy() if torch.is_tensor(X) else X


def _tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    with np.errstate(over="ignore"):  # values beyond float32's range become inf, refused by _checked
        X = np.ascontiguousarray(X, dtype=np.float32)
    if not X.flags.writeable:  # torch cannot share read-only memory (a memory map, say)
        X = X.copy()
    return torch.from_numpy(X).to(device)
