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

from ..core.errors import BenchError
from ..core.progress import bar
from ..data.cache import CachedFeatures
from . import knn, params
from .knn import K_GRID
from .scaling import RawSpace, Standardizer
from .search import next_start, search_C, start_of, walk_grid
from .solver import ProbeConfig, accuracy, prepare
from ..core.distributed import Shard
from .operand import DiskRows, MemoryRows, Rows, to_tensor


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
    search_s: float = float("nan")  # of fit_s: the search, and the refit (kNN: the test rows' neighbours)
    refit_s: float = float("nan")
    search_passes: float = float("nan")  # of passes: the search's and the refit's
    refit_passes: float = float("nan")


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



@dataclass(frozen=True)
class Placement:
    """Where a probe holds training rows: in memory when they fit ``budget`` bytes (0: always), else read from the
    cache file block by block on every pass; under torchrun, each process its contiguous share (``Rows.sharded``).
    ``copies``: the matrices a probe keeps per row, in float32 rows (the SVM's bfloat16 copy is half of one)."""

    budget: int = 0
    copies: float = 1.5

    def need(self, n_rows: int, width: int) -> float:
        """Bytes the probe holds for ``n_rows`` rows in memory."""
        return n_rows * width * 4 * self.copies

    def fits(self, n_rows: int, width: int) -> bool:
        return not self.budget or self.need(n_rows, width) <= self.budget

    def block_rows(self, width: int) -> int:
        """Rows per block streamed under the budget: an eighth of it as float32, so that the block, its float16
        read and its standardised copy leave room for what the probe keeps per row."""
        return max(1, int(self.budget / (8 * width * 4)))

    def rows(self, features: CachedFeatures, file_rows: np.ndarray, columns, device) -> Rows:
        shard = Shard.current()
        bounds = shard.bounds(len(file_rows))
        mine, offset = file_rows[bounds[shard.rank]:bounds[shard.rank + 1]], bounds[shard.rank]
        width = len(range(features.dim)[columns or slice(None)])
        if self.fits(len(mine), width):
            return MemoryRows(to_tensor(features.read(mine, columns), device), shard.world > 1, offset)
        return DiskRows(features, mine, columns, device, self.block_rows(width), shard.world > 1, offset)


@dataclass
class Training:
    """The training rows of the full protocol: fit rows (this process's), validation rows (every process's), and
    all training rows for the refit. In one process with room, one matrix in [fit, validation] order, whose
    parts are views; otherwise each read as ``Placement`` says."""

    fit: Rows
    y_fit: torch.Tensor  # labels of the fit rows this process holds
    y_fits: torch.Tensor  # labels of every fit row (every process's), in order
    X_val: torch.Tensor
    y_val: torch.Tensor
    y_all: torch.Tensor  # labels of every training row, in the refit's order (every process)
    whole: torch.Tensor | None  # the one matrix, when there is one (and no ``source``)
    source: tuple | None  # (features, file rows in file order, columns, device, placement) to read them again

    @classmethod
    def read(cls, train: CachedFeatures, rows: np.ndarray, labels: np.ndarray, fit_pos, val_pos, columns, device,
             placement: Placement) -> "Training":
        order = np.concatenate([fit_pos, val_pos])  # fit rows first, so both parts are views of one matrix
        y = torch.from_numpy(labels[order]).to(device)
        n_fit, width = len(fit_pos), len(range(train.dim)[columns or slice(None)])
        if Shard.current().world == 1 and placement.fits(len(order), width):
            X = to_tensor(train.read(rows[order], columns), device)
            return cls(MemoryRows(X[:n_fit]), y[:n_fit], y[:n_fit], X[n_fit:], y[n_fit:], y, X, None)
        fit = placement.rows(train, rows[fit_pos], columns, device)
        X_val = to_tensor(train.read(rows[val_pos], columns), device)
        # read again for the refit in file order: the validation rows, scattered over the file, would make the
        # block that holds them read the whole file on every pass (measured: a pass over 1.28 M rows took 2x)
        refit = np.argsort(rows, kind="stable")
        source = (train, rows[refit], columns, device, placement)
        return cls(fit, cls.local(y[:n_fit], fit), y[:n_fit], X_val, y[n_fit:],
                   torch.from_numpy(labels[refit]).to(device), None, source)

    @staticmethod
    def local(y: torch.Tensor, rows: Rows) -> torch.Tensor:
        return y[rows.offset:rows.offset + len(rows)] if rows.sharded else y

    def all_rows(self) -> Rows:
        """Every training row (this process's share), for the refit: the one matrix, or read again."""
        if self.whole is not None:
            return MemoryRows(self.whole)
        features, file_rows, columns, device, placement = self.source
        self.fit = None  # the search's rows go before the refit's come
        return placement.rows(features, file_rows, columns, device)


def run_probe(train: CachedFeatures, test: CachedFeatures | None, val_size: int, seed: int,
              config: ProbeConfig, columns: slice | None = None, rows: np.ndarray | None = None) -> ProbeResult:
    """The full protocol on cached features: C on validation, refit on all training rows, test once.

    ``rows`` restricts training to a subset of the cached training rows (default: all). The rows are held as
    ``config.memory`` and torchrun allow (``Placement``); the result is the same wherever they are.
    """
    rows = np.arange(train.n_rows) if rows is None else np.asarray(rows)
    labels = train.labels()[rows]
    fit_pos, val_pos = validation_split(labels, val_size, seed)
    device = torch.device(config.device)
    placement = Placement(config.memory)
    data = Training.read(train, rows, labels, fit_pos, val_pos, columns, device, placement)
    n_classes = int(labels.max()) + 1
    if config.kind == "knn":
        return _knn_full(data, n_classes, test, config, columns)

    start = time.perf_counter()
    fit_stats = Standardizer(data.fit, config.scale)
    fit_rows = fit_stats.rows(data.fit)
    fit_stats.apply_(data.X_val)
    prepared = prepare(config, fit_rows)
    walk = search_C(config, fit_rows, data.y_fit, data.X_val, data.y_val, n_classes, prepared)
    val_correct = (walk.fitted.predict(data.X_val) == data.y_val).cpu().numpy()  # validation rows, ascending
    search_s = time.perf_counter() - start

    if data.whole is not None:  # the one matrix: back to raw features before the refit's standardisation
        fit_stats.undo_(data.whole)
    del fit_rows
    all_rows = data.all_rows()
    all_stats = Standardizer(all_rows, config.scale)
    all_rows = all_stats.rows(all_rows)
    prepared = prepare(config, all_rows, prepared.spectrum)  # the search's spectrum preconditions the refit
    final = prepared.fit(config, walk.C, all_rows, Training.local(data.y_all, all_rows), n_classes,
                         start_of(walk.fitted))
    passes = walk.passes + final.passes_
    fit_s = time.perf_counter() - start
    del all_rows, prepared, data

    correct = _test_correct(lambda X: final.predict(all_stats.apply_(X)), test, columns, device, placement)
    test_acc = None if correct is None else float(correct.mean()) * 100.0
    return ProbeResult(walk.C, walk.accuracy, test_acc, walk.tried, fit_s, correct, val_correct, final.gap, walk.gap,
                       passes, search_s=search_s, refit_s=fit_s - search_s, search_passes=walk.passes,
                       refit_passes=final.passes_)


def _test_correct(predict, test: CachedFeatures | None, columns, device, placement: Placement) -> np.ndarray | None:
    """Which test images ``predict`` gets right, the test rows read in blocks the memory budget allows."""
    if test is None:
        return None
    width = len(range(test.dim)[columns or slice(None)])
    block = test.n_rows if placement.fits(test.n_rows, width) else placement.block_rows(width)
    predicted = torch.cat([predict(to_tensor(test.read(np.arange(i, min(i + block, test.n_rows)), columns),
                                             device)).cpu() for i in range(0, test.n_rows, block)])
    return (predicted == torch.from_numpy(test.labels())).numpy()


def _knn_full(data: Training, n_classes: int, test, config: ProbeConfig, columns) -> ProbeResult:
    """kNN under the full protocol: (k, T) by validation accuracy with the fit rows as neighbours, then
    every training row as neighbours of the test rows. Standardisation, if asked for, with the statistics of
    every training row, as kNN fits nothing."""
    start = time.perf_counter()
    fit = data.fit
    if data.whole is not None:
        standardizer = Standardizer(data.whole, config.scale)
        knn.normalise_(standardizer.apply_(data.whole))
    else:
        standardizer = Standardizer(fit, config.scale)  # the fit rows' statistics: all of them are not at hand
        fit = knn.unit_rows(standardizer.rows(fit))
        knn.normalise_(standardizer.apply_(data.X_val))
    found = knn.neighbours(fit, data.X_val, max(config.k_grid), desc="kNN: validation")
    choice = knn.choose([found], [data.y_fits], data.y_val, n_classes, config.k_grid, config.t_grid)
    val_correct = (knn.predict(knn.vote(found, data.y_fits, n_classes, choice.k, choice.t)) == data.y_val).cpu().numpy()
    search_s = time.perf_counter() - start
    all_rows = data.all_rows()
    if data.whole is None:
        all_rows = knn.unit_rows(standardizer.rows(all_rows))

    def predict(X):
        return knn.predict(knn.classify(all_rows, data.y_all, knn.normalise_(standardizer.apply_(X)), n_classes,
                                        choice.k, choice.t, desc="kNN: test"))

    correct = _test_correct(predict, test, columns, data.X_val.device, Placement(config.memory))
    test_acc = None if correct is None else float(correct.mean()) * 100.0
    fit_s = time.perf_counter() - start
    return ProbeResult(float("nan"), choice.accuracy, test_acc, [(k, a) for k, _, a in choice.tried], fit_s, correct,
                       val_correct, float("nan"), float("nan"), float("nan"), choice.k, choice.t, search_s,
                       fit_s - search_s)


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
    from scipy import stats  # here: scipy.stats is a fifth of every command's start-up

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

    def standardised(d):  # this process's share of the draw's rows, standardised with the whole draw's statistics
        rows = _share(X_drawn[torch.from_numpy(np.searchsorted(drawn, draws[d])).to(device)])
        standardizer = Standardizer(rows, config.scale)
        y = Training.local(torch.from_numpy(labels[draws[d]]).to(device), rows)
        return standardizer.rows(rows), y, standardizer

    kept = {}  # search draws: standardised rows and what their fits share, reused along the grid
    paths = {d: [] for d in range(setting.search_draws)}  # each search draw's fits up the grid

    def fit(d, C, start=None):
        if d not in kept:
            X, y, standardizer = standardised(d)
            ready = (X, y, standardizer, prepare(config, X))
            if d >= setting.search_draws:
                return fit_with(ready, C, start)
            kept[d] = ready
        return fit_with(kept[d], C, start)

    def fit_with(ready, C, start):
        X, y, standardizer, prepared = ready
        model = prepared.fit(config, C, X, y, n_classes, start)
        return model, RawSpace(model, standardizer)

    def evaluate(C, warm):  # every search draw at C, each started from its own path up the grid
        fits = [fit(d, C, next_start(paths[d], C, warm)) for d in range(setting.search_draws)]
        for d, (model, _) in enumerate(fits):
            paths[d].append((C, model))
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


def _share(X: torch.Tensor) -> MemoryRows:
    """A draw's rows as this process holds them: all of them, or under torchrun its contiguous share."""
    shard = Shard.current()
    if shard.world == 1:
        return MemoryRows(X)
    bounds = shard.bounds(len(X))
    return MemoryRows(X[bounds[shard.rank]:bounds[shard.rank + 1]], True, bounds[shard.rank])


def _knn_few(X_drawn, drawn, X_val, y_val, draws, labels, setting: FewShot, n_classes: int, test, config,
             columns) -> DrawResults:
    """kNN under a draw protocol: (k, T) by mean validation accuracy over the search draws, each draw's
    rows the neighbours; then every test draw at that (k, T). Standardisation, if asked for, per draw."""
    start = time.perf_counter()
    device = X_drawn.device

    def pool(d):  # this process's share of the draw's rows; the labels of all of them, for the vote
        rows = _share(X_drawn[torch.from_numpy(np.searchsorted(drawn, draws[d])).to(device)])
        standardizer = Standardizer(rows, config.scale)
        return knn.unit_rows(standardizer.rows(rows)), torch.from_numpy(labels[draws[d]]).to(device), standardizer

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
                       time.perf_counter() - start, float("nan"), float("nan"), float("nan"), choice.k, choice.t)


def run(name: str, train: CachedFeatures, test: CachedFeatures, val_size: int, seed: int,
        probe: ProbeConfig, columns=None, per_class: int = 400, draws: int = 10) -> tuple[dict, dict]:
    """Run protocol ``name``; returns the result-row columns it determines and, for ``full``, which test and
    validation images the probe got right (``{}`` otherwise), for paired comparisons later."""
    predictions = {}
    if name == "full":
        r = run_probe(train, test, val_size, seed, probe, columns)
        row = {"C": r.C, "val_acc": round(r.val_acc, 3), "test_acc": round(r.test_acc, 3), "draws": 1,
               **{key: round(getattr(r, key), 1) for key in ("search_s", "refit_s", "search_passes", "refit_passes")
                  if np.isfinite(getattr(r, key))}}
        predictions = {"test_correct": r.test_correct, "val_correct": r.val_correct}
    else:
        setting = few_shot_setting(name, per_class, draws)
        r = run_few_shot(train, test, setting, val_size, seed, probe, columns)
        accs = np.asarray(r.test_accs)
        row = {"C": r.C, "val_acc": round(r.val_acc, 3), "test_acc": round(float(accs.mean()), 3),
               "test_acc_std": round(float(accs.std(ddof=1)), 3), "test_acc_ci95": round(interval95(accs), 3),
               "draws": len(accs), "per_class": setting.per_class}
    if probe.kind == "knn":  # exact: no C, no gap to certify (blank, not 0)
        row.update(C="", k=r.k, t=r.t)
        certificate = {}
    else:
        certificate = {"gap": float(f"{r.gap:.3g}"), "search_gap": float(f"{r.search_gap:.3g}")}
        if np.isfinite(r.passes):
            certificate["passes"] = round(r.passes)
    return {**row, "fit_s": round(r.fit_s, 1), **certificate}, predictions
