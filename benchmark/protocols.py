"""Evaluation protocols: how labelled training rows are used and what a result row reports.

``full``: C chosen on a held-out validation split of the training set, refit on all
training rows, scored once on test.

``few``: ``per_class`` labelled images per class, ``draws`` random draws from the
training rows outside the validation split. The draws depend only on the labels and the
seed, so every encoder sees the same images and encoders can be compared draw by draw.
C is chosen by the mean validation accuracy over the draws; each draw is then fitted at
that C and scored on test. Reports mean, sample standard deviation and the half-width
of a 95% t-interval for the mean.

``svhn-1000``: the original DCGAN code's SVHN protocol: 10,000 validation images from
the training set, 100 labelled images per class, 10 draws per C on validation to choose
C, then 100 draws at that C scored on test; the paper reports the error rate with 1.96
standard deviations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from .cache import CachedFeatures
from .errors import BenchError
from .probe import ProbeConfig, Standardizer, accuracy, make_solver, run_probe, spectrum_for, validation_split
from .progress import bar
from .svm import to_tensor


@dataclass(frozen=True)
class FewShot:
    per_class: int
    search_draws: int
    test_draws: int


PROTOCOLS = ("full", "few", "svhn-1000")


def few_shot_setting(name: str, per_class: int, draws: int) -> FewShot:
    if name == "few":
        return FewShot(per_class, draws, draws)
    if name == "svhn-1000":
        return FewShot(100, 10, 100)
    raise BenchError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")


def draw_indices(labels: np.ndarray, pool: np.ndarray, per_class: int, n_draws: int, seed: int) -> list[np.ndarray]:
    """``n_draws`` sorted index arrays, each ``per_class`` rows of every class from ``pool``."""
    classes = np.unique(labels)
    draws = []
    for d in range(n_draws):
        rng = np.random.default_rng([seed, d])
        picked = []
        for c in classes:
            members = pool[labels[pool] == c]
            if len(members) < per_class:
                raise BenchError(f"class {c} has {len(members)} training images outside validation; "
                                 f"asked for {per_class} per class")
            picked.append(rng.choice(members, per_class, replace=False))
        draws.append(np.sort(np.concatenate(picked)))
    return draws


def interval95(values) -> float:
    """Half-width of the 95% t-interval for the mean of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


class _RawSpace:
    """A model fitted on standardised rows, applied to raw features: w/s, b - (w/s).m."""

    def __init__(self, model, standardizer: Standardizer):
        self.coef_ = model.coef_ / standardizer.scale
        self.intercept_ = model.intercept_ - self.coef_ @ standardizer.mean

    def predict(self, X):
        return torch.nn.functional.linear(X, self.coef_, self.intercept_).argmax(1)


@dataclass
class DrawResults:
    C: float
    val_acc: float  # mean over the search draws at the chosen C
    test_accs: list[float]  # one per test draw
    tried: list[tuple[float, float]]
    fit_s: float


def run_few_shot(train: CachedFeatures, test: CachedFeatures | None, setting: FewShot, val_size: int, seed: int,
                 config: ProbeConfig, columns=None) -> DrawResults:
    labels = train.labels()
    pool, val_idx = validation_split(labels, val_size, seed)
    n_draws = max(setting.search_draws, setting.test_draws)
    draws = draw_indices(labels, pool, setting.per_class, n_draws, seed)
    device = torch.device(config.device)
    drawn = np.unique(np.concatenate(draws))
    X_drawn = to_tensor(train.read(drawn, columns), device)  # one read; each draw indexes into it
    X_val = to_tensor(train.read(val_idx, columns), device)
    y_val = torch.from_numpy(labels[val_idx])
    n_classes = int(labels.max()) + 1

    spectra = {}  # search draws: the CG preconditioner, computed once and reused along the grid

    def fit(d, C, warm=None):
        X = X_drawn[torch.from_numpy(np.searchsorted(drawn, draws[d])).to(device)]
        standardizer = Standardizer(X, enabled=config.scale == "standard")
        standardizer.apply_(X)
        spectrum = spectra.get(d) or spectrum_for(config, X)
        if d < setting.search_draws:
            spectra[d] = spectrum
        model = make_solver(config, C).fit(X, torch.from_numpy(labels[draws[d]]), n_classes, warm_start=warm,
                                           spectrum=spectrum)
        return model, _RawSpace(model, standardizer)

    start = time.perf_counter()
    grid, tried, warm = sorted(config.grid), [], [None] * setting.search_draws
    best, since_best = (None, -1.0), 0
    for C in bar(grid, desc="search C over draws", unit="C"):
        accs = []
        for d in range(setting.search_draws):
            model, raw = fit(d, C, warm[d])
            warm[d] = (model.coef_, model.intercept_)
            accs.append(accuracy(raw, X_val, y_val))
        mean = float(np.mean(accs))
        tried.append((C, mean))
        if mean > best[1]:
            best, since_best = (C, mean), 0
        else:
            since_best += 1
            if since_best >= config.patience:
                break
    del X_val
    C = best[0]
    test_accs = []
    if test is not None:
        X_test = to_tensor(test.read(columns=columns), device)
        y_test = torch.from_numpy(test.labels())
        for d in bar(range(setting.test_draws), desc=f"test draws at C={C:.2g}", unit="draw"):
            test_accs.append(accuracy(fit(d, C)[1], X_test, y_test))
    return DrawResults(C, best[1], test_accs, tried, time.perf_counter() - start)


def run(name: str, train: CachedFeatures, test: CachedFeatures, val_size: int, seed: int,
        probe: ProbeConfig, columns, opts, log=print) -> dict:
    """Run protocol ``name``; returns the result-row columns it determines."""
    if name == "full":
        r = run_probe(train, test, val_size, seed, probe, columns, log)
        return {"C": r.C, "val_acc": round(r.val_acc, 3), "test_acc": round(r.test_acc, 3),
                "draws": 1, "fit_s": round(r.fit_s, 1)}
    setting = few_shot_setting(name, opts.per_class, opts.draws)
    r = run_few_shot(train, test, setting, val_size, seed, probe, columns)
    accs = np.asarray(r.test_accs)
    return {"C": r.C, "val_acc": round(r.val_acc, 3), "test_acc": round(float(accs.mean()), 3),
            "test_acc_std": round(float(accs.std(ddof=1)), 3), "test_acc_ci95": round(interval95(accs), 3),
            "draws": len(accs), "per_class": setting.per_class, "fit_s": round(r.fit_s, 1)}
