"""Feature scaling for the probe: per-feature standardisation, or none (raw features)."""

from __future__ import annotations

import torch


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


class RawSpace:
    """A model fitted on standardised rows, applied to raw features: w/s, b - (w/s).m."""

    def __init__(self, model, standardizer: Standardizer):
        self.coef_ = model.coef_ / standardizer.scale
        self.intercept_ = model.intercept_ - self.coef_ @ standardizer.mean

    def predict(self, X):
        return torch.nn.functional.linear(X, self.coef_, self.intercept_).argmax(1)
