"""The training rows as the linear probes read them: products with X~ = [X, 1] at a chosen precision.

``Operand`` is what every solver pass goes through (``times``: X~ [W, b]^T, ``t_times``: X~^T V,
``rows``: a subset, ``gram``: X~^T diag(D) X~), so where the rows live (a tensor in memory; on disk
or sharded over processes, in later operands) is this module's business alone. ``Spectrum`` is the
top of X~^T X~'s spectrum, the preconditioner's; ``Rung`` one rung of the precision ladder
(bfloat16 CG products -> float32 -> float64) that the Newton core climbs when rounding stalls it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.devices import bfloat16_is_fast

BLOCK = 256  # rows per block of float64 products (measured 3-5x faster than 2048 rows here)
COPY_BLOCK = 4096  # rows per block when making the bfloat16 copy
LADDER = ("mixed", "float32", "float64")


def default_precision(device) -> str:
    return "mixed" if bfloat16_is_fast(device) else "float32"


@dataclass
class Operand:
    """X for products with X~ = [X, 1], stored as X_c + 1 mean^T, computed in ``compute``.

    ``mixed``: X_c is a centred bfloat16 copy. Centring keeps the common component of
    non-negative features (raw DCGAN activations) exact in float32, so rounding scales with
    the spread of the features, not their size. ``float32``: X itself. ``float64``: X itself,
    its products computed in float64 row block by row block.
    """

    X: torch.Tensor  # (n, d)
    mean: torch.Tensor  # (d,)
    compute: torch.dtype

    @classmethod
    def of(cls, X: torch.Tensor, precision: str) -> "Operand":
        if precision in ("float32", "float64"):
            dtype = torch.float64 if precision == "float64" else torch.float32
            return cls(X, torch.zeros(X.shape[1], dtype=dtype, device=X.device), dtype)
        mean = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
        for i in range(0, len(X), COPY_BLOCK):
            mean += X[i:i + COPY_BLOCK].sum(0, dtype=torch.float64)
        mean = (mean / max(len(X), 1)).float()
        low = torch.empty(X.shape, dtype=torch.bfloat16, device=X.device)
        for i in range(0, len(X), COPY_BLOCK):  # no full-size float32 temporary
            low[i:i + COPY_BLOCK] = X[i:i + COPY_BLOCK] - mean
        return cls(low, mean, torch.bfloat16)

    @property
    def result(self) -> torch.dtype:
        return torch.float64 if self.compute == torch.float64 else torch.float32

    @property
    def share(self) -> float:
        """Cost of a pass relative to a float32 pass."""
        return {torch.bfloat16: 0.5, torch.float32: 1.0}.get(self.compute, 2.0)  # float64: measured ~2x

    def rows(self, index: torch.Tensor) -> "Operand":
        return Operand(self.X[index], self.mean, self.compute)

    def _blocks(self, rows: int = BLOCK):
        if self.X.dtype == self.compute:
            yield self.X
            return
        for i in range(0, len(self.X), rows):
            yield self.X[i:i + rows].to(self.compute)

    def times(self, P: torch.Tensor, Pb: torch.Tensor) -> torch.Tensor:
        """X~ [P, Pb]^T: (n, k) from (k, d) and (k,)."""
        P = P.to(self.result)
        if self.X.dtype == self.compute:
            out = F.linear(self.X, P.to(self.compute)).to(self.result)
        else:  # (P X_b^T)^T: this layout ran steadily at about a float32 pass here, F.linear's varied 1-5x
            out = torch.cat([(P @ block.T).T for block in self._blocks()])
        return out + (P @ self.mean.to(self.result) + Pb.to(self.result))

    def t_times(self, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """X~^T V, split into its (k, d) and (k,) parts, from (n, k)."""
        V = V.to(self.result)
        out, start = 0, 0
        for block in self._blocks():
            out = out + (V[start:start + len(block)].T.to(self.compute) @ block).to(self.result)
            start += len(block)
        column = V.sum(0)
        return out + column[:, None] * self.mean.to(self.result), column

    def gram(self, D: torch.Tensor) -> torch.Tensor:
        """X~^T diag(D_j) X~ for every class j: (k, d + 1, d + 1), in the result dtype."""
        k, d = D.shape[1], self.X.shape[1]
        out = torch.zeros(k, d + 1, d + 1, dtype=self.result, device=self.X.device)
        start = 0
        for block in self._blocks():
            rows = torch.cat([block.to(self.result) + self.mean.to(self.result),
                              torch.ones(len(block), 1, dtype=self.result, device=block.device)], 1)
            weights = D[start:start + len(block)].to(self.result)
            for j in range(k):
                out[j] += (rows * weights[:, j:j + 1]).T @ rows
            start += len(block)
        return out


@dataclass
class Spectrum:
    """Top eigenpairs of X~^T X~ (X with a constant column appended): X~^T X~ ~ V diag(values) V^T."""

    vectors: torch.Tensor  # (d + 1, r), orthonormal columns, float64
    values: torch.Tensor  # (r,)

    @classmethod
    def of(cls, X: Operand | torch.Tensor, rank: int = 512, power_iters: int = 1, seed: int = 0) -> "Spectrum":
        """Randomized range finder with power iterations (Halko et al. 2011): 2 * (power_iters + 1) + 1 passes."""
        X = X if isinstance(X, Operand) else Operand.of(X, "float32")
        d = X.X.shape[1]
        g = torch.Generator(device="cpu").manual_seed(seed)
        Q = torch.randn(d + 1, min(rank, d + 1), generator=g).to(X.X.device)
        for _ in range(power_iters + 1):
            w, wb = X.t_times(X.times(Q[:d].T, Q[d]))
            Q, _ = torch.linalg.qr(torch.cat([w, wb[:, None]], 1).T.float())
        Q, _ = torch.linalg.qr(Q.double())  # orthonormal to float64 precision: M^-1 must stay positive definite
        B = X.times(Q[:d].T.float(), Q[d].float()).double()
        values, U = torch.linalg.eigh(B.T @ B)
        return cls(Q @ U, values.clamp_min(0).float())


class Rung:
    """One rung of the precision ladder: exact products (margins, gradient) and CG's operand."""

    def __init__(self, X: torch.Tensor, name: str, operand: Operand | None = None):
        self.name = name
        self.exact = Operand.of(X, "float64" if name == "float64" else "float32")
        self.cg = operand if operand is not None and name == "mixed" else (
            self.exact if name != "mixed" else Operand.of(X, "mixed"))
        self.dtype = self.exact.result


def to_tensor(X: np.ndarray | torch.Tensor, device) -> torch.Tensor:
    """Share memory with a float32 numpy array on CPU; copy once to another device."""
    t = torch.from_numpy(X) if isinstance(X, np.ndarray) else X
    return t.to(device) if t.device != torch.device(device) else t
