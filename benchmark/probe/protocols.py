"""Evaluation protocols: how labelled training rows are used and what a result row reports.

``full``: C chosen on a held-out validation split of the training set (stratified,
seeded, identical for every encoder), refit on all training rows, scored once on test.
During the search, features are standardised with the statistics of the remaining
training rows only; for the refit, with all training rows. Test features are read only
after C is fixed.

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
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy import stats

from ..core.errors import BenchError
from ..core.progress import bar
from ..data.cache import CachedFeatures
from . import knn, params
from .knn import K_GRID
from .scaling import RawSpace, Standardizer
from .search import search_C, walk_grid
from .solver import ProbeConfig, accuracy, prepare
from .operand import to_tensor


@dataclass
class ProbeResult:
    C: float
    val_acc: float
    test_acc: float | None
    tried: list[tuple[float, float]] = field(default_factory=list)  # (C, validation accuracy)
    fit_s: float = 0.0
    test_correct: np.ndarray | None = None  # per test image, for paired comparisons
    val_correct: np.ndarray | None = None  # per validation image at the chosen C, likewise
    gap: float = float("nan")  # worst relative duality gap of the final fit(s)
    search_gap: float = float("nan")  # worst over every fit of the C search
    passes: float = float("nan")  # passes over the float32 features, search and refit
    k: int | None = None  # knn: the chosen neighbour count and temperature
    t: float | None = None


def validation_size(requested: int, n_train: int) -> int:
    """The validation images actually used: ``requested``, at most a fifth of the training rows."""
    return min(requested, n_train // 5)


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



def run_probe(train: CachedFeatures, test: CachedFeatures | None, val_size: int, seed: int,
              config: ProbeConfig, columns: slice | None = None, rows: np.ndarray | None = None) -> ProbeResult:
    """The full protocol on cached features: C on validation, refit on all training rows, test once.

    ``rows`` restricts training to a subset of the cached training rows (default: all).
    """
    rows = np.arange(train.n_rows) if rows is None else np.asarray(rows)
    labels = train.labels()[rows]
    fit_pos, val_pos = validation_split(labels, val_size, seed)
    order = np.concatenate([fit_pos, val_pos])  # fit rows first, so both parts are views
    device = torch.device(config.device)
    X = to_tensor(train.read(rows[order], columns), device)
    y = torch.from_numpy(labels[order]).to(device)
    n_classes = int(labels.max()) + 1
    if config.kind == "knn":
        return _knn_full(X, y, len(fit_pos), n_classes, test, config, columns)

    start = time.perf_counter()
    n_fit = len(fit_pos)
    fit_stats = Standardizer(X[:n_fit], config.scale)
    fit_stats.apply_(X)
    prepared = prepare(config, X[:n_fit])
    walk = search_C(config, X[:n_fit], y[:n_fit], X[n_fit:], y[n_fit:], n_classes, prepared)
    val_correct = (walk.fitted.predict(X[n_fit:]) == y[n_fit:]).cpu().numpy()  # validation rows, ascending

    fit_stats.undo_(X)  # refit on every training row, standardised with all of them
    all_stats = Standardizer(X, config.scale)
    all_stats.apply_(X)
    prepared = prepare(config, X, prepared.spectrum)  # the search's spectrum preconditions the refit: it need only be close
    final = prepared.fit(config, walk.C, X, y, n_classes, walk.fitted)
    passes = walk.passes + final.passes_
    fit_s = time.perf_counter() - start
    del X, prepared

    test_acc = correct = None
    if test is not None:
        X_test = all_stats.apply_(to_tensor(test.read(columns=columns), device))
        correct = (final.predict(X_test).cpu() == torch.from_numpy(test.labels())).numpy()
        test_acc = float(correct.mean()) * 100.0
    return ProbeResult(walk.C, walk.accuracy, test_acc, walk.tried, fit_s, correct, val_correct, final.gap, walk.gap,
                       passes)


def _knn_full(X, y, n_fit: int, n_classes: int, test, config: ProbeConfig, columns) -> ProbeResult:
    """kNN under the full protocol: (k, T) by validation accuracy with the fit rows as neighbours, then
    every training row as neighbours of the test rows."""
    start = time.perf_counter()
    standardizer = Standardizer(X, config.scale)
    knn.normalise_(standardizer.apply_(X))
    found = knn.neighbours(X[:n_fit], X[n_fit:], max(config.k_grid), desc="kNN: validation")
    choice = knn.choose([found], [y[:n_fit]], y[n_fit:], n_classes, config.k_grid, config.t_grid)
    val_correct = (knn.predict(knn.vote(found, y[:n_fit], n_classes, choice.k, choice.t)) == y[n_fit:]).cpu().numpy()
    test_acc = correct = None
    if test is not None:
        X_test = knn.normalise_(standardizer.apply_(to_tensor(test.read(columns=columns), X.device)))
        predicted = knn.predict(knn.classify(X, y, X_test, n_classes, choice.k, choice.t, desc="kNN: test")).cpu()
        correct = (predicted == torch.from_numpy(test.labels())).numpy()
        test_acc = float(correct.mean()) * 100.0
    return ProbeResult(float("nan"), choice.accuracy, test_acc, [(k, a) for k, _, a in choice.tried],
                       time.perf_counter() - start, correct, val_correct, 0.0, 0.0, float("nan"), choice.k, choice.t)


@dataclass(frozen=True)
class FewShot:
    per_class: int
    search_draws: int
    test_draws: int


PROTOCOLS = ("full", "few", "svhn-1000")


def check(name: str, per_class: int, draws: int) -> None:
    """Refuse an unknown protocol or impossible draws in one line, before any work."""
    if name not in PROTOCOLS:
        raise BenchError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    if name == "few" and (per_class < 1 or draws < 2):
        raise BenchError(f"protocol few: --per-class {per_class} and --draws {draws}; give at least 1 label per "
                         "class and 2 draws (the interval needs two)")


def check_labels(name: str, labels: np.ndarray, val_size: int, seed: int, per_class: int) -> None:
    """Refuse, before extraction, draws that the training labels cannot supply."""
    if name not in ("few", "svhn-1000"):
        return
    need = few_shot_setting(name, per_class, 2).per_class
    pool, _ = validation_split(labels, val_size, seed)
    counts = np.bincount(labels[pool], minlength=int(labels.max()) + 1)
    if counts.min() < need:
        raise BenchError(f"protocol {name}: class {int(counts.argmin())} has {int(counts.min())} training images "
                         f"outside the {val_size} validation images, fewer than {need} per class; lower --per-class "
                         "(or --val-size), or drop --limit")


def neighbour_rows(name: str, n_train: int, val_size: int, per_class: int, n_classes: int) -> int:
    """How many training rows kNN's validation search has as neighbours under protocol ``name``."""
    if name == "full":
        return n_train - val_size
    return few_shot_setting(name, per_class, 2).per_class * n_classes


def usable_probe(probe: ProbeConfig, name: str, labels: np.ndarray, val_size: int, per_class: int,
                 log=print) -> ProbeConfig:
    """The probe as the protocol can run it, before extraction: a kNN k the training rows cannot supply is
    refused when the user fixed it; the default k grid loses such values, said in one line."""
    if probe.kind != "knn":
        return probe
    rows = neighbour_rows(name, len(labels), val_size, per_class, len(np.unique(labels)))
    where = f"the {name} protocol's search"
    if probe.k_grid != K_GRID:
        for k in probe.k_grid:
            try:
                params.neighbours_available(k, rows, where)
            except ValueError as exc:
                raise BenchError(f"--probe knn: {exc}") from None
        return probe
    usable = tuple(k for k in probe.k_grid if k <= rows) or (rows,)
    if usable != probe.k_grid:
        log(f"kNN: {where} has {rows} training rows; searching k in {', '.join(map(str, usable))} "
            f"(of {', '.join(map(str, probe.k_grid))})")
    return replace(probe, k_grid=usable)


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


@dataclass
class DrawResults:
    C: float
    val_acc: float  # mean over the search draws at the chosen C
    test_accs: list[float]  # one per test draw
    tried: list[tuple[float, float]]
    fit_s: float
    gap: float  # worst relative duality gap of the fits scored on test
    search_gap: float  # worst over every fit of the C search
    passes: float
    k: int | None = None  # knn: the chosen neighbour count and temperature
    t: float | None = None


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
    y_val = torch.from_numpy(labels[val_idx]).to(device)
    n_classes = int(labels.max()) + 1
    if config.kind == "knn":
        return _knn_few(X_drawn, drawn, X_val, y_val, draws, labels, setting, n_classes, test, config, columns)

    def standardised(d):
        X = X_drawn[torch.from_numpy(np.searchsorted(drawn, draws[d])).to(device)]
        standardizer = Standardizer(X, config.scale)
        return standardizer.apply_(X), torch.from_numpy(labels[draws[d]]).to(device), standardizer

    kept = {}  # search draws: standardised rows and what their fits share, reused along the grid

    def fit(d, C, warm=None):
        if d not in kept:
            X, y, standardizer = standardised(d)
            ready = (X, y, standardizer, prepare(config, X))
            if d >= setting.search_draws:
                return fit_with(ready, C, warm)
            kept[d] = ready
        return fit_with(kept[d], C, warm)

    def fit_with(ready, C, warm):
        X, y, standardizer, prepared = ready
        model = prepared.fit(config, C, X, y, n_classes, warm[0] if warm is not None else None)
        return model, RawSpace(model, standardizer)

    def evaluate(C, warm):  # every search draw at C, each warm-started from its fit at the previous C
        fits = [fit(d, C, warm[d] if warm else None) for d in range(setting.search_draws)]
        return (float(np.mean([accuracy(raw, X_val, y_val) for _, raw in fits])), fits,
                max(model.gap for model, _ in fits), sum(model.passes_ for model, _ in fits))

    start = time.perf_counter()
    walk = walk_grid(config.grid, config.patience, evaluate, desc="search C over draws")
    del X_val
    kept.clear()
    C, test_accs, gaps, passes = walk.C, [], [], walk.passes
    if test is not None:
        X_test = to_tensor(test.read(columns=columns), device)
        y_test = torch.from_numpy(test.labels())
        for d in bar(range(setting.test_draws), desc=f"test draws at C={C:.2g}", unit="draw"):
            model, raw = walk.fitted[d] if d < setting.search_draws else fit(d, C)  # the search fitted it at C
            if d >= setting.search_draws:
                passes += model.passes_
            test_accs.append(accuracy(raw, X_test, y_test))
            gaps.append(model.gap)
    gap = max(gaps) if gaps else max(model.gap for model, _ in walk.fitted)
    return DrawResults(C, walk.accuracy, test_accs, walk.tried, time.perf_counter() - start, gap, walk.gap, passes)


def _knn_few(X_drawn, drawn, X_val, y_val, draws, labels, setting: FewShot, n_classes: int, test, config,
             columns) -> DrawResults:
    """kNN under a draw protocol: (k, T) by mean validation accuracy over the search draws, each draw's
    rows the neighbours; then every test draw at that (k, T). Standardisation, if asked for, per draw."""
    start = time.perf_counter()
    device = X_drawn.device

    def pool(d):
        X = X_drawn[torch.from_numpy(np.searchsorted(drawn, draws[d])).to(device)]
        standardizer = Standardizer(X, config.scale)
        return knn.normalise_(standardizer.apply_(X)), torch.from_numpy(labels[draws[d]]).to(device), standardizer

    found, pool_labels = [], []
    for d in bar(range(setting.search_draws), desc="kNN over draws", unit="draw"):
        X, y, standardizer = pool(d)
        queries = knn.normalise_(standardizer.apply_(X_val.clone()))
        found.append(knn.neighbours(X, queries, max(config.k_grid), desc=None))
        pool_labels.append(y)
    choice = knn.choose(found, pool_labels, y_val, n_classes, config.k_grid, config.t_grid)
    test_accs = []
    if test is not None:
        X_test = to_tensor(test.read(columns=columns), device)
        y_test = torch.from_numpy(test.labels())
        for d in bar(range(setting.test_draws), desc=f"test draws at k={choice.k}, T={choice.t:g}", unit="draw"):
            X, y, standardizer = pool(d)
            queries = knn.normalise_(standardizer.apply_(X_test.clone()))
            predicted = knn.predict(knn.classify(X, y, queries, n_classes, choice.k, choice.t)).cpu()
            test_accs.append(float((predicted == y_test).double().mean()) * 100.0)
    return DrawResults(float("nan"), choice.accuracy, test_accs, [(k, a) for k, _, a in choice.tried],
                       time.perf_counter() - start, 0.0, 0.0, float("nan"), choice.k, choice.t)


def run(name: str, train: CachedFeatures, test: CachedFeatures, val_size: int, seed: int,
        probe: ProbeConfig, columns=None, per_class: int = 400, draws: int = 10) -> tuple[dict, dict]:
    """Run protocol ``name``; returns the result-row columns it determines and, for ``full``, which test and
    validation images the probe got right (``{}`` otherwise), for paired comparisons later."""
    predictions = {}
    if name == "full":
        r = run_probe(train, test, val_size, seed, probe, columns)
        row = {"C": r.C, "val_acc": round(r.val_acc, 3), "test_acc": round(r.test_acc, 3), "draws": 1}
        predictions = {"test_correct": r.test_correct, "val_correct": r.val_correct}
    else:
        setting = few_shot_setting(name, per_class, draws)
        r = run_few_shot(train, test, setting, val_size, seed, probe, columns)
        accs = np.asarray(r.test_accs)
        row = {"C": r.C, "val_acc": round(r.val_acc, 3), "test_acc": round(float(accs.mean()), 3),
               "test_acc_std": round(float(accs.std(ddof=1)), 3), "test_acc_ci95": round(interval95(accs), 3),
               "draws": len(accs), "per_class": setting.per_class}
    certificate = {"gap": float(f"{r.gap:.3g}"), "search_gap": float(f"{r.search_gap:.3g}")}
    if np.isfinite(r.passes):
        certificate["passes"] = round(r.passes)
    if probe.kind == "knn":  # exact: no C, no gap to certify
        row.update(C="", k=r.k, t=r.t)
    return {**row, "fit_s": round(r.fit_s, 1), **certificate}, predictions
