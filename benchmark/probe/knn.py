"""Weighted k-nearest-neighbour classification, the self-supervised codebases' probe, computed exactly.

As DINO's ``eval_knn.py`` (and DINOv2, solo-learn, VISSL, mmpretrain): features are
L2-normalised, similarity is the cosine, each of the k nearest training rows votes for its
label with weight exp(s / T), and the class with the largest total wins. The weights are
computed relative to each query's best similarity, exp((s - s_max) / T), the same vote up to a
factor per query, so any positive finite T works: no exp(s / T) overflows at T = 1e-4.

Exact and bounded: similarities are computed query block by query block (at most ``BLOCK``
queries against a block of training rows at a time). Rough products (bfloat16 where native and it
pays, else float32; run as written, whatever the caller's matmul precision) pick each query's window:
every row whose rough score plus its error bound (``Rough``) reaches the k-th best rough score less
its bound, which holds every row of the exact top k. The window is re-scored in float64 (the gather,
the widening and the sum fused by ``torch.compile``), so rounding can never drop a true neighbour. A query whose window is too wide (near-duplicates, bfloat16's coarse bound)
climbs a rung: float32, then float64 against every row. Neighbours are ordered by similarity, ties by the lower
training index; class ties go to the lower class. The estimator ``KNN`` and ``--probe knn`` run
this same code (``classify``), so a (k, T) means the same in both.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..core import distributed
from ..core.compiled import compiled_or_eager
from ..core.devices import bfloat16_is_fast, ieee_products
from ..core.progress import bar
from .operand import DiskRows, as_rows

K_GRID = (10, 20, 50, 100, 200)
T_GRID = (0.03, 0.07, 0.2)
BLOCK = 512  # queries per block
MARGIN = 32  # rows past k a float32 window typically holds (24 at k = 200 on the headline's 12,288 features)
WINDOW = 4  # a window wider than WINDOW x (k + MARGIN) rows climbs a rung
RESCORE_BYTES = 2 ** 28  # queries per re-scoring step: their gathered rows in float64 (what the eager fallback copies)
ROW_BLOCK = 4096  # rows per block when normalising
# bfloat16 windows are kept when at least FAST_SURE of the first query block's fit under WINDOW and their mean width
# is at most FAST_WIDTH x (k + MARGIN): the unsure pay a float32 product besides, and re-scoring reads every window.
# On the headline (AMX, 512 queries x 40,000 rows): at k = 10 (all sure, mean width 44) a bfloat16 block cost about
# 1.1 s against float32's 1.7; at k = 200 (91% sure, mean width 557 against float32's 226) 3.4-3.9 s against 2.7.
FAST_SURE = 0.8
FAST_WIDTH = 2
UNIT_ROUNDING = {torch.bfloat16: 2.0 ** -8, torch.float32: 2.0 ** -24}
DENSE_RATIO = 64  # re-score by one float64 product with every row when rows <= this x (k + MARGIN)
DENSE_BYTES = 2 ** 30  # and the float64 copy of the rows fits in this


def normalise_(X: torch.Tensor) -> torch.Tensor:
    """Scale float32 rows to unit length in place, block by block (zero rows stay zero). Rows are first
    divided by their largest magnitude, so a norm cannot overflow (features of 1e20) or underflow."""
    for i in range(0, len(X), ROW_BLOCK):
        block = X[i:i + ROW_BLOCK]
        block /= block.abs().amax(1, keepdim=True).clamp_min(torch.finfo(block.dtype).tiny)
        block /= torch.linalg.vector_norm(block, dim=1, keepdim=True).clamp_min(1e-12)
    return X


def unit_rows(rows):
    """``operand.Rows`` scaled to unit length: in place in memory, block by block as rows on disk are read."""
    if isinstance(rows, DiskRows):
        return rows.then(normalise_)
    normalise_(rows.tensor())
    return rows


def normalised(X: torch.Tensor) -> torch.Tensor:
    """A float32 copy of X with unit rows."""
    return normalise_(X.to(torch.float32, copy=True))


def accumulation_bound(d: int) -> float:
    """Bound on the error of d float32 additions of products whose absolute values sum to at most 1 (unit vectors)."""
    return 1.01 * d * UNIT_ROUNDING[torch.float32]


def _rounded(X: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """X rounded to ``dtype``, and |x - x'| of every row: what rounding lost. The difference of a float32 and its
    bfloat16 rounding is exact in float32; its norm's float32 rounding is far inside ``Rough.scores``' 1% room."""
    low, residual = torch.empty(X.shape, dtype=dtype, device=X.device), torch.empty(len(X), device=X.device)
    for r in range(0, len(X), ROW_BLOCK):
        low[r:r + ROW_BLOCK] = X[r:r + ROW_BLOCK]
        residual[r:r + ROW_BLOCK] = torch.linalg.vector_norm(X[r:r + ROW_BLOCK] - low[r:r + ROW_BLOCK].float(), dim=1)
    return low, residual


@dataclass
class Rough:
    """Unit training rows as rough products read them (bfloat16 or float32), with what bounds each product's error.

    Below float32 the bound is per product: q.x - q'.x' = q'.(x - x') + (q - q').x, so the inputs' rounding costs
    at most |q'| |x - x'| + |q - q'| (Cauchy-Schwarz, |x| <= 1), the rows' and the query's own residual norms, about
    half the worst case 2u; then the float32 sums, and the sum rounded back to bfloat16 (a CPU's bfloat16 product
    returns bfloat16: u of it)."""

    rows: torch.Tensor
    residual: torch.Tensor | None  # |x - x'| per row; None in float32, where the inputs are exact

    @classmethod
    def of(cls, train: torch.Tensor, dtype: torch.dtype) -> "Rough":
        if dtype == train.dtype:
            return cls(train, None)
        return cls(*_rounded(train, dtype))

    def scores(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        """(rough similarities (n_query, rows) in float32, a bound on their error: per product, or one number)."""
        accumulation = accumulation_bound(q.shape[1])
        if self.residual is None:
            return q @ self.rows.T, accumulation
        low, residual = _rounded(q, self.rows.dtype)
        rough = (low @ self.rows.T).float()
        u = UNIT_ROUNDING[self.rows.dtype]
        scale, output = 1.01 / (1 - u), 1.01 * u / (1 - u)  # 1.01: room for the float32 arithmetic of the bound
        per_row = (scale * ((1 + u) * self.residual + (1 + u) ** 2 * accumulation)).float()
        per_query = scale * residual
        return rough, torch.add(per_query[:, None], per_row[None, :]).add_(rough.abs().mul_(output))


@dataclass
class Neighbours:
    """The ``k`` most similar training rows of every query, most similar first."""

    similarity: torch.Tensor  # (n_query, k) float64
    index: torch.Tensor  # (n_query, k) int64 rows of the training matrix


def neighbours(train, queries: torch.Tensor, k: int, fast: bool | None = None,
               desc: str | None = "kNN") -> Neighbours:
    """Exact top-``k`` cosine neighbours of unit-norm ``queries`` among unit-norm training rows (k <= rows).

    ``train`` is a tensor or ``operand.Rows``: rows on disk are searched block by block, a sharded matrix
    process by process, each part's exact top k then merged by similarity and index, which is the top k
    of the whole."""
    train = as_rows(train)
    if not 1 <= k <= train.count():
        raise ValueError(f"k={k} neighbours asked for among {train.count()} training rows")
    fast = bfloat16_is_fast(train.device) if fast is None else fast
    found, start = None, train.offset
    steps = train.block_count() * -(-len(queries) // BLOCK)  # one bar over every training block's query blocks
    with bar(total=steps, desc=desc, unit="block", disable=desc is None) as progress, ieee_products():
        for block in train.blocks():
            part = _search(block, queries, min(k, len(block)), fast, progress)
            part.index += start
            found = part if found is None else _merge(found, part, k)
            start += len(block)
    if train.sharded:  # every process's top k, merged alike on each
        parts = distributed.all_gather(found.similarity), distributed.all_gather(found.index)
        found = Neighbours(parts[0][0], parts[1][0])
        for similarity, index in zip(parts[0][1:], parts[1][1:]):
            found = _merge(found, Neighbours(similarity, index), k)
    return found


def _search(train: torch.Tensor, queries: torch.Tensor, k: int, fast: bool, progress) -> Neighbours:
    """The exact top k of one in-memory block of training rows, query block by query block.

    bfloat16 products pay only where most queries' windows stay narrow; at large k in a crowded neighbourhood
    they rarely do, and every query whose window is too wide costs a float32 pass besides. So the first query
    block decides: if fewer than ``FAST_SURE`` of its queries were sure, or their windows were on average wider than
    ``FAST_WIDTH`` x (k + ``MARGIN``) (re-scoring reads them all), the rest go straight to float32."""
    rough = torch.bfloat16 if fast and len(train) > WINDOW * (k + MARGIN) else torch.float32
    precise = Rough.of(train, torch.float32)
    low = Rough.of(train, rough)
    dense = len(train) <= DENSE_RATIO * (k + MARGIN) and train.numel() * 8 <= DENSE_BYTES
    exact = Exact(train, train.double() if dense else None)
    sims, idx = [], []
    for i in range(0, len(queries), BLOCK):
        q, used = queries[i:i + BLOCK], low
        s, j, sure, width = _candidates(exact, used, q, k)
        if i == 0 and used is not precise and (float(sure.float().mean()) < FAST_SURE or
                                               width > FAST_WIDTH * (k + MARGIN)):
            low = precise  # bfloat16 does not pay here: float32 windows from now on
        for rung in (precise, None) if used is not precise else (None,):  # windows too wide, one rung up
            unsure = ~sure
            if not unsure.any():
                break
            s[unsure], j[unsure], sure[unsure], _ = _candidates(exact, rung, q[unsure], k)
        sims.append(s)
        idx.append(j)
        progress.update(1)
    if not sims:
        empty = torch.empty(0, k, device=train.device)
        return Neighbours(empty.double(), empty.long())
    return Neighbours(torch.cat(sims), torch.cat(idx))


def _merge(a: Neighbours, b: Neighbours, k: int) -> Neighbours:
    """The top k of two exact neighbour lists of the same queries (from disjoint rows)."""
    values, index = torch.cat([a.similarity, b.similarity], 1), torch.cat([a.index, b.index], 1)
    order = torch.sort(index, dim=1, stable=True).indices  # by index first, so equal similarities keep index order
    values, index = values.gather(1, order), index.gather(1, order)
    top = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    return Neighbours(values.gather(1, top), index.gather(1, top))


@dataclass
class Exact:
    """The training rows as float64 re-scoring reads them: ``rows`` gathered per query, or, where the rows are
    few against the candidates (a few-label draw), ``dense``, their float64 copy, in one product per block."""

    rows: torch.Tensor
    dense: torch.Tensor | None

    def scores(self, q: torch.Tensor) -> torch.Tensor:
        """Float64 similarities of the queries with every row."""
        if self.dense is not None:
            return q.double() @ self.dense.T
        rows = self.rows
        return torch.cat([q.double() @ rows[r:r + ROW_BLOCK].double().T for r in range(0, len(rows), ROW_BLOCK)], 1)

    def rescore(self, q: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Float64 similarities of every query with its listed training rows: (n_query, width).

        Each is the float64 sum of the exact products of two float32 vectors, computed on its own, so a query's
        values never depend on the other queries."""
        if self.dense is not None:
            return self.scores(q).gather(1, index)
        step = max(1, RESCORE_BYTES // (index.shape[1] * self.rows.shape[1] * 8))
        dot = _gathered_dot()
        return torch.cat([dot(q[i:i + step].double(), self.rows, index[i:i + step]) for i in range(0, len(q), step)])


def _dot(q: torch.Tensor, rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return (rows[index].double() * q[:, None, :]).sum(2)


@functools.cache
def _gathered_dot():
    """``_dot`` compiled: the gathered rows are read once, never copied or widened in memory (24x on the headline).
    The queries come in float64, widened once rather than once per row (1.5x on 512 x 262 rows of 12,288)."""
    return compiled_or_eager(_dot, "kNN re-scoring", dynamic=None)


def _candidates(exact: Exact, low, q, k):
    """(similarity, index, sure, width): the exact top k of every query whose window fits under ``WINDOW`` (sure),
    and the sure windows' mean width.

    ``low`` is the rough copy of the training rows (``Rough``: bfloat16 or float32); None scores every row in
    float64. The window: each rough score less its error bound is a lower bound on the exact similarity, so the
    exact k-th similarity is at least the k-th best lower bound, and a row of the exact top k (or tied with it)
    has its upper bound (rough score plus error bound) at least that too. Ties in the window are all in it, so
    ties go to the lower index as in a full sort."""
    everyone = torch.ones(len(q), dtype=torch.bool, device=q.device)
    if low is None:
        s, j = _ordered_topk(exact.scores(q), k)
        return s, j, everyone, float(k)
    rough, slack = low.scores(q)
    floor = torch.topk(rough - slack, k, dim=1).values[:, -1:]
    upper = rough + slack
    window = (upper >= floor).sum(1)
    sure = window <= WINDOW * (k + MARGIN)
    s = torch.zeros(len(q), k, dtype=torch.float64, device=q.device)
    j = torch.zeros(len(q), k, dtype=torch.long, device=q.device)
    if sure.any():
        candidates = torch.topk(upper[sure], int(window[sure].max()), dim=1).indices
        candidates = torch.sort(candidates, dim=1).values  # by training index, so ties go to the lower index
        s[sure], top = _ordered_topk(exact.rescore(q[sure], candidates), k)
        j[sure] = candidates.gather(1, top)
    return s, j, sure, float(window[sure].float().mean()) if sure.any() else float("inf")


def _ordered_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k per row, by score then by lower column: a stable descending sort keeps column order in ties."""
    top = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    if top.values.shape[1] == k:  # fewer columns than k + 1: all of them
        order = torch.sort(scores, dim=1, descending=True, stable=True)
        return order.values[:, :k], order.indices[:, :k]
    # ties at the boundary: a stable sort of the whole row decides them by column (rare; exact)
    tied = top.values[:, k - 1] == top.values[:, k]
    values, indices = top.values[:, :k].clone(), top.indices[:, :k].clone()
    if tied.any():
        order = torch.sort(scores[tied], dim=1, descending=True, stable=True)
        values[tied], indices[tied] = order.values[:, :k], order.indices[:, :k]
    return _tie_order_rows(values, indices)


def _tie_order_rows(values: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by (value descending, index ascending)."""
    by_index = torch.sort(indices, dim=1, stable=True)
    values, indices = values.gather(1, by_index.indices), by_index.values
    by_value = torch.sort(values, dim=1, descending=True, stable=True)
    return by_value.values, indices.gather(1, by_value.indices)


def vote(found: Neighbours, labels: torch.Tensor, n_classes: int, k: int, t: float) -> torch.Tensor:
    """Class scores (n_query, n_classes): each of the first ``k`` neighbours adds exp((s - s_max) / t) to its
    label, s_max the query's best similarity (the vote of exp(s / t), scaled per query so it cannot overflow)."""
    s = found.similarity[:, :k].double()
    weights = torch.exp((s - s[:, :1]) / t)
    scores = torch.zeros(len(weights), n_classes, dtype=torch.float64, device=weights.device)
    return scores.scatter_add_(1, labels[found.index[:, :k]], weights)


def predict(scores: torch.Tensor) -> torch.Tensor:
    return scores.argmax(1)  # the first maximum: ties go to the lower class


def classify(train, labels: torch.Tensor, queries: torch.Tensor, n_classes: int, k: int, t: float,
             desc: str | None = None) -> torch.Tensor:
    """The class votes of unit-norm ``queries`` among unit-norm ``train`` rows: what both the estimator and
    the protocols score with."""
    return vote(neighbours(train, queries, k, desc=desc), labels, n_classes, k, t)


@dataclass
class Choice:
    k: int
    t: float
    accuracy: float
    tried: list[tuple[int, float, float]]  # (k, t, validation accuracy)


def choose(found_by_draw: list[Neighbours], labels_by_draw: list[torch.Tensor], y_val: torch.Tensor,
           n_classes: int, ks=K_GRID, ts=T_GRID) -> Choice:
    """(k, T) with the best mean validation accuracy over draws; ties go to the earlier grid point."""
    tried, best = [], None
    for k in ks:
        for t in ts:
            accs = [float((predict(vote(f, lab, n_classes, k, t)).cpu() == y_val.cpu()).double().mean()) * 100
                    for f, lab in zip(found_by_draw, labels_by_draw)]
            acc = sum(accs) / len(accs)
            tried.append((k, t, acc))
            if best is None or acc > best.accuracy:
                best = Choice(k, t, acc, [])
    best.tried = tried
    return best
