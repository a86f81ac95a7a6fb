"""The linear probe: standardise, choose C on a validation split, refit, score on test once.

The validation split is carved from the training set (stratified, seeded, identical for
every encoder). During the search, features are standardised with the statistics of the
remaining training rows only; for the refit, with all training rows. Test features are
read only after C is fixed.

The search walks a log grid upward from the smallest C, warm-starting each fit from the
last, and stops once validation accuracy has failed to beat its best for ``patience`` grid
points in a row (a flat start, such as chance accuracy at tiny C, does not count). A best C at the top (bottom) edge extends the grid by half-decades, so
the chosen C is never at an edge of what was tried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .cache import CachedFeatures
from .progress import bar
from .svm import L2SVM, Spectrum, to_tensor

DEFAULT_GRID = tuple(float(c) for c in np.logspace(-6, 0, 13))
SOLVERS = ("torch", "liblinear")


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


@dataclass
class ProbeResult:
    C: float
    val_acc: float
    test_acc: float | None
    tried: list[tuple[float, float]] = field(default_factory=list)  # (C, validation accuracy)
    fit_s: float = 0.0
    test_correct: np.ndarray | None = None  # per test image, for paired comparisons


def validation_split(labels: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of training rows into (fit, validation) index arrays, both sorted."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = counts / counts.sum() * val_size
    per_class = np.floor(share).astype(int)
    per_class[np.argsort(share - per_class)[::-1][: val_size - per_class.sum()]] += 1
    val = np.concatenate([rng.choice(np.flatnonzero(labels == c), n, replace=False)
                          for c, n in zip(classes, per_class)])
    val.sort()
    return np.setdiff1d(np.arange(len(labels)), val), val


class Standardizer:
    """Per-feature mean and deviation; applied in place, block by block, to spare memory.

    With ``enabled=False`` it is the identity (mean 0, scale 1), for probes on raw features.
    """

    def __init__(self, X: torch.Tensor, block: int = 1024, enabled: bool = True):
        self.block = block
        if not enabled:
            self.mean = torch.zeros(X.shape[1], device=X.device)
            self.scale = torch.ones(X.shape[1], device=X.device)
            return
        total = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
        sq = torch.zeros_like(total)
        for i in range(0, len(X), block):
            chunk = X[i:i + block].double()
            total += chunk.sum(0)
            sq += chunk.pow(2).sum(0)
        mean = total / len(X)
        var = torch.clamp_min(sq / len(X) - mean.pow(2), 0.0)
        self.mean = mean.float()
        self.scale = torch.where(var > 1e-12, var.sqrt(), torch.ones_like(var)).float()

    def apply_(self, X: torch.Tensor) -> torch.Tensor:
        for i in range(0, len(X), self.block):
            X[i:i + self.block].sub_(self.mean).div_(self.scale)
        return X

    def undo_(self, X: torch.Tensor) -> torch.Tensor:
        for i in range(0, len(X), self.block):
            X[i:i + self.block].mul_(self.scale).add_(self.mean)
        return X


class _Liblinear:
    """scikit-learn's LinearSVC behind the solver interface, kept as the reference."""

    def __init__(self, C, tol):
        from sklearn.svm import LinearSVC

        self.model = LinearSVC(C=C, loss="squared_hinge", penalty="l2", dual="auto", tol=tol, max_iter=2000)

    def fit(self, X, y, n_classes=None, warm_start=None, X_low=None, spectrum=None):
        self.model.fit(X.numpy(), y.numpy())
        self.coef_ = torch.from_numpy(self.model.coef_).float()
        self.intercept_ = torch.from_numpy(self.model.intercept_).float()
        return self

    def predict(self, X):
        return torch.from_numpy(self.model.predict(X.numpy()))


def make_solver(config: ProbeConfig, C: float):
    if config.solver == "liblinear":
        return _Liblinear(C, tol=1e-4)
    return L2SVM(C=C, tol=config.tol, precision=config.precision)


def accuracy(model, X: torch.Tensor, y: torch.Tensor) -> float:
    return float((model.predict(X).cpu() == y.cpu()).float().mean()) * 100.0


def spectrum_for(config: ProbeConfig, X) -> Spectrum | None:
    """The CG preconditioner's eigenpairs, computed once per matrix (torch solver only)."""
    if config.solver != "torch" or config.rank <= 0:
        return None
    return Spectrum.of(X, config.rank, power_iters=1)


def search_C(config: ProbeConfig, X_fit, y_fit, X_val, y_val, n_classes: int, log=print, spectrum=None):
    """Validation accuracy along the grid; returns (best C, best accuracy, tried, best model)."""
    grid = sorted(config.grid)
    tried, warm, best = [], None, (None, -1.0, None)
    low = X_fit.to(torch.bfloat16) if config.precision == "mixed" else None
    i, since_best = 0, 0
    progress = bar(total=len(grid), desc="search C", unit="C")
    while i < len(grid):
        C = grid[i]
        model = make_solver(config, C).fit(X_fit, y_fit, n_classes, warm_start=warm, X_low=low, spectrum=spectrum)
        warm = (model.coef_, model.intercept_)
        acc = accuracy(model, X_val, y_val)
        tried.append((C, acc))
        progress.update()
        progress.set_postfix(C=f"{C:.2g}", val=f"{acc:.2f}")
        if acc > best[1]:
            best, since_best = (C, acc, model), 0
        elif acc < best[1] or best[1] > tried[0][1]:  # a flat start (chance level at tiny C) is no decline
            since_best += 1
            if since_best >= config.patience:
                break
        if i == len(grid) - 1 and acc >= best[1] and C < 1e4:
            grid.append(C * 10 ** 0.5)  # still rising at the top: extend
            progress.total += 1
        i += 1
    progress.close()
    if best[0] == grid[0]:  # best at the bottom: walk down until accuracy falls
        C = grid[0]
        while C > 1e-10:
            C /= 10 ** 0.5
            model = make_solver(config, C).fit(X_fit, y_fit, n_classes, X_low=low, spectrum=spectrum)
            acc = accuracy(model, X_val, y_val)
            tried.insert(0, (C, acc))
            if acc <= best[1]:
                break
            best = (C, acc, model)
    return best[0], best[1], tried, best[2]


def run_probe(train: CachedFeatures, test: CachedFeatures | None, val_size: int, seed: int,
              config: ProbeConfig, columns: slice | None = None, log=print, rows: np.ndarray | None = None) -> ProbeResult:
    """The full protocol on cached features: C on validation, refit on all training rows, test once.

    ``rows`` restricts training to a subset of the cached training rows (default: all).
    """
    rows = np.arange(train.n_rows) if rows is None else np.asarray(rows)
    labels = train.labels()[rows]
    fit_pos, val_pos = validation_split(labels, val_size, seed)
    order = np.concatenate([fit_pos, val_pos])  # fit rows first, so both parts are views
    X = to_tensor(train.read(rows[order], columns), torch.device(config.device))
    y = torch.from_numpy(labels[order])
    n_classes = int(labels.max()) + 1
    device = torch.device(config.device)

    start = time.perf_counter()
    n_fit = len(fit_pos)
    standard = config.scale == "standard"
    fit_stats = Standardizer(X[:n_fit], enabled=standard)
    fit_stats.apply_(X)
    spectrum = spectrum_for(config, X[:n_fit])  # also preconditions the refit: it need only be close
    C, val_acc, tried, model = search_C(config, X[:n_fit], y[:n_fit], X[n_fit:], y[n_fit:], n_classes, log,
                                        spectrum)

    fit_stats.undo_(X)  # refit on every training row, standardised with all of them
    all_stats = Standardizer(X, enabled=standard)
    all_stats.apply_(X)
    low = X.to(torch.bfloat16) if config.precision == "mixed" else None
    final = make_solver(config, C).fit(X, y, n_classes, warm_start=(model.coef_, model.intercept_), X_low=low,
                                       spectrum=spectrum)
    fit_s = time.perf_counter() - start
    del X, low

    test_acc = correct = None
    if test is not None:
        X_test = all_stats.apply_(to_tensor(test.read(columns=columns), device))
        correct = (final.predict(X_test).cpu() == torch.from_numpy(test.labels())).numpy()
        test_acc = float(correct.mean()) * 100.0
    return ProbeResult(C, val_acc, test_acc, tried, fit_s, correct)

