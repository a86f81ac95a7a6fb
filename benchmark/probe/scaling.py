"""Feature scaling for the probe: per-feature standardisation, or none (raw features).

``SCALES``: ``standard`` divides by the deviation; ``coates`` by sqrt(variance + 0.01), as Coates &
Ng's CIFAR-10 code does, which keeps near-constant features (a rarely used k-means centroid) near zero
instead of blowing them up to unit variance; ``none`` leaves the features as they are.
"""

from __future__ import annotations

import torch

from .operand import DiskRows, Rows, as_rows


SCALES = ("standard", "coates", "none")
COATES_EPS = 0.01  # added to every feature's variance by Coates & Ng's code


class Standardizer:
    """Per-feature mean and deviation (``scale``: one of ``SCALES``); applied in place, block by block, to spare
    memory. ``none`` is the identity (mean 0, scale 1), for probes on raw features."""

    def __init__(self, X, scale: str = "standard", block: int = 1024):
        """X: a tensor, or ``operand.Rows`` (on disk, sharded: sums over every process)."""
        self.block = block
        rows = as_rows(X)
        if scale == "none":
            self.mean = torch.zeros(rows.d, device=rows.device)
            self.scale = torch.ones(rows.d, device=rows.device)
            return
        sums = torch.zeros(2, rows.d, dtype=torch.float64, device=rows.device)
        for part in rows.blocks():
            for i in range(0, len(part), block):
                chunk = part[i:i + block].double()
                sums[0] += chunk.sum(0)
                sums[1] += chunk.pow(2).sum(0)
        total, sq = rows.reduce(sums)
        n = rows.count()
        mean = total / n
        var = torch.clamp_min(sq / n - mean.pow(2), 0.0)
        self.mean = mean.float()
        if scale == "coates":
            self.scale = (var + COATES_EPS).sqrt().float()
        else:
            self.scale = torch.where(var > 1e-12, var.sqrt(), torch.ones_like(var)).float()

    def rows(self, X):
        """Standardised rows: in place for a matrix in memory, block by block as rows on disk are read."""
        if isinstance(X, DiskRows):
            return X.then(self.apply_)
        self.apply_(X.tensor() if isinstance(X, Rows) else X)
        return X

    def apply_(self, X: torch.Tensor) -> torch.Tensor:
        for i in range(0, len(X), self.block):
            X[i:i + self.block].sub_(self.mean).div_(self.scale)
        return X

    def undo_(self, X: torch.Tensor) -> torch.Tensor:
        for i in range(0, len(X), self.block):
            X[i:i + self.block].mul_(self.scale).add_(self.mean)
        return X


class RawSpace:
    """A model fitted on standardised rows, applied to raw features: w/s, b - (w/s).m."""

    def __init__(self, model, standardizer: Standardizer):
        self.coef_ = model.coef_ / standardizer.scale
        self.intercept_ = model.intercept_ - self.coef_ @ standardizer.mean

    def predict(self, X):
        return torch.nn.functional.linear(X, self.coef_, self.intercept_).argmax(1)
