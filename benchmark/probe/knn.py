"""Weighted k-nearest-neighbour classification, the self-supervised codebases' probe, computed exactly.

As DINO's ``eval_knn.py`` (and DINOv2, solo-learn, VISSL, mmpretrain): features are
L2-normalised, similarity is the cosine, each of the k nearest training rows votes for its
label with weight exp(s / T), and the class with the largest total wins.

Exact and bounded: similarities are computed query block by query block (at most ``BLOCK``
queries against the training rows at a time, so no n_query x n_train matrix is ever held).
Where bfloat16 products are native, a block's k + ``MARGIN`` best candidates are found in
bfloat16 and re-scored in float32; a query whose k-th float32 score is not clear of the last
candidate's bfloat16 score by the rounding bound is scored in float32 against every row, so
bfloat16 can never drop a true neighbour. Elsewhere every block is scored in float32. Neighbours
are ordered by similarity, ties by the lower training index, so results are deterministic.
Class ties go to the lower class index.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.devices import bfloat16_is_fast
from ..core.progress import bar

K_GRID = (10, 20, 50, 100, 200)
T_GRID = (0.03, 0.07, 0.2)
BLOCK = 512  # queries per block
MARGIN = 32  # extra bfloat16 candidates per query, re-scored in float32
RESCORE = 16  # queries per float32 re-scoring step (16 x 232 candidate rows of 12,288 floats: 180 MB)
BF16_ERROR = 2.0 ** -7 + 1e-5  # bound on |bfloat16 - exact| cosine of unit vectors: 2 x 2^-8 x sum|q_i x_i| <= 2^-7
ROW_BLOCK = 4096  # rows per block when normalising


def normalise_(X: torch.Tensor) -> torch.Tensor:
    """Scale float32 rows to unit length in place, block by block (zero rows stay zero)."""
    for i in range(0, len(X), ROW_BLOCK):
        block = X[i:i + ROW_BLOCK]
        block /= torch.linalg.vector_norm(block, dim=1, keepdim=True).clamp_min(1e-12)
    return X


def normalised(X: torch.Tensor) -> torch.Tensor:
    """A float32 copy of X with unit rows."""
    return normalise_(X.to(torch.float32, copy=True))


@dataclass
class Neighbours:
    """The ``k`` most similar training rows of every query, most similar first."""

    similarity: torch.Tensor  # (n_query, k) float32
    index: torch.Tensor  # (n_query, k) int64 rows of the training matrix


def neighbours(train: torch.Tensor, queries: torch.Tensor, k: int, fast: bool | None = None,
               desc: str | None = "kNN") -> Neighbours:
    """Exact top-``k`` cosine neighbours of unit-norm ``queries`` among unit-norm ``train`` rows."""
    k = min(k, len(train))
    fast = (bfloat16_is_fast(train.device) and len(train) > k + MARGIN) if fast is None else fast
    low = train.to(torch.bfloat16) if fast else None
    sims, idx = [], []
    for i in bar(range(0, len(queries), BLOCK), desc=desc, unit="block", disable=desc is None):
        q = queries[i:i + BLOCK]
        s, j = _fast_block(train, low, q, k) if fast else _ordered_topk(q @ train.T, k)
        sims.append(s)
        idx.append(j)
    return Neighbours(torch.cat(sims), torch.cat(idx))


def _fast_block(train, low, q, k):
    """Candidates by bfloat16 products, re-scored in float32; queries whose result bfloat16 rounding could
    have changed (a row outside the candidates within ``BF16_ERROR`` of the k-th) are scored in float32."""
    rough = torch.topk((q.to(torch.bfloat16) @ low.T).float(), k + MARGIN, dim=1)
    wide = rough.indices.shape[1]
    rows = torch.empty(RESCORE * wide, train.shape[1], dtype=train.dtype, device=train.device)  # reused: no page faults
    scores = torch.empty(len(q), wide, dtype=train.dtype, device=train.device)
    for i in range(0, len(q), RESCORE):
        picked = rough.indices[i:i + RESCORE].reshape(-1)
        torch.index_select(train, 0, picked, out=rows[:len(picked)])
        n = len(picked) // wide
        scores[i:i + n] = torch.bmm(rows[:len(picked)].view(n, wide, -1), q[i:i + n, :, None]).squeeze(2)
    s, j = _ordered_topk(scores, k)
    s, j = _tie_order_rows(s, rough.indices.gather(1, j))
    unsure = s[:, -1] <= rough.values[:, -1] + BF16_ERROR
    if unsure.any():
        s[unsure], j[unsure] = _ordered_topk(q[unsure] @ train.T, k)
    return s, j


def _ordered_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k per row, by score then by lower column: a stable descending sort keeps column order in ties."""
    top = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    threshold = top.values[:, -1:]  # everything above the (k+1)-th score is certainly in the top k
    if top.values.shape[1] == k:  # fewer columns than k + 1: all of them
        order = torch.sort(scores, dim=1, descending=True, stable=True)
        return order.values[:, :k], order.indices[:, :k]
    # ties at the boundary: a stable sort of the whole row decides them by column (rare; exact)
    tied = (top.values[:, k - 1:k] == threshold).squeeze(1)
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
    """Class scores (n_query, n_classes): each of the first ``k`` neighbours adds exp(s / t) to its label."""
    weights = torch.exp(found.similarity[:, :k].double() / t)
    scores = torch.zeros(len(weights), n_classes, dtype=torch.float64, device=weights.device)
    return scores.scatter_add_(1, labels[found.index[:, :k]], weights)


def predict(scores: torch.Tensor) -> torch.Tensor:
    return scores.argmax(1)  # the first maximum: ties go to the lower class


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
