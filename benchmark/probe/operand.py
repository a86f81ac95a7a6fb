"""The training rows as the linear probes read them: products with X~ = [X, 1] at a chosen precision.

``Operand`` is what every solver pass goes through (``times``: X~ [W, b]^T, ``t_times``: X~^T V,
``rows``: a subset, ``gram``: X~^T diag(D) X~), so where the rows live (a tensor in memory; on disk
or sharded over processes, in later operands) is this module's business alone. ``Spectrum`` is the
top of X~^T X~'s spectrum, the preconditioner's; ``Rung`` one rung of the precision ladder
(bfloat16 CG products -> float32 -> float64) that the Newton core climbs when rounding stalls it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..core import distributed
from ..core.devices import bfloat16_is_fast, device_name
from ..data.cache import CachedFeatures

BLOCK = 256  # rows per block of float64 products (measured 3-5x faster than 2048 rows here)
COPY_BLOCK = 4096  # rows per block when making the bfloat16 copy
PIECE = 8192  # rows per product of the spectrum's passes: (PIECE, r) temporaries, not (n, r)
LADDER = ("mixed", "float32", "float64")


def default_precision(device) -> str:
    return "mixed" if bfloat16_is_fast(device) else "float32"


class Rows:
    """A float32 matrix as the probes read it: row blocks, the probe's standardisation applied.

    ``sharded``: this process holds only its rows of a matrix split over torchrun processes (starting at
    row ``offset`` of the whole), and every sum over rows (``reduce``) is all-reduced.
    """

    sharded: bool = False
    offset: int = 0

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def d(self) -> int:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    def blocks(self) -> Iterator[torch.Tensor]:
        """Consecutive float32 row blocks."""
        raise NotImplementedError

    def block_count(self) -> int:
        """How many blocks ``blocks`` yields (for progress)."""
        return 1

    def subset(self, index: torch.Tensor) -> "Rows":
        raise NotImplementedError

    def tensor(self) -> torch.Tensor | None:
        """The matrix itself, when it is in memory."""
        return None

    def reduce(self, t: torch.Tensor) -> torch.Tensor:
        """A sum over rows: this process's part, summed over every process of a sharded matrix."""
        return distributed.all_reduce_sum(t) if self.sharded else t

    def count(self) -> int:
        """Rows of the whole matrix (over every process)."""
        return int(self.reduce(torch.tensor([len(self)], dtype=torch.int64, device=self.device)))


class MemoryRows(Rows):
    """Rows held in memory as one tensor: one block, no copy."""

    def __init__(self, X: torch.Tensor, sharded: bool = False, offset: int = 0):
        if X.dtype != torch.float32 or X.ndim != 2:
            raise ValueError("X must be a 2-D float32 tensor")
        self.X, self.sharded, self.offset = X, sharded, offset

    def __len__(self) -> int:
        return len(self.X)

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def device(self) -> torch.device:
        return self.X.device

    def blocks(self) -> Iterator[torch.Tensor]:
        yield self.X

    def subset(self, index: torch.Tensor) -> "MemoryRows":
        return MemoryRows(self.X[index], self.sharded)

    def tensor(self) -> torch.Tensor:
        return self.X


class DiskRows(Rows):
    """Rows of a cached feature file, read block by block on every pass (``rows``: file rows, in the order the
    probe sees them), each block put through ``transforms`` (standardisation, unit length) as it is read.
    Memory stays at a block, whatever the file's size; each pass reads the file (from the page cache when it
    fits there)."""

    def __init__(self, features: CachedFeatures, rows: np.ndarray, columns: slice | None, device, block: int,
                 sharded: bool = False, offset: int = 0, transforms: tuple = ()):
        self.features, self.rows, self.columns, self._device = features, np.asarray(rows), columns, torch.device(device)
        self.block, self.sharded, self.offset, self.transforms = max(1, int(block)), sharded, offset, transforms

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def d(self) -> int:
        return len(range(self.features.dim)[self.columns or slice(None)])

    @property
    def device(self) -> torch.device:
        return self._device

    def blocks(self) -> Iterator[torch.Tensor]:
        for i in range(0, len(self.rows), self.block):
            X = to_tensor(self.features.read(self.rows[i:i + self.block], self.columns), self._device)
            for transform in self.transforms:
                X = transform(X)
            yield X

    def block_count(self) -> int:
        return -(-len(self.rows) // self.block)

    def subset(self, index: torch.Tensor) -> "DiskRows":
        return DiskRows(self.features, self.rows[index.cpu().numpy()], self.columns, self._device, self.block,
                        self.sharded, 0, self.transforms)

    def then(self, *transforms) -> "DiskRows":
        """The same rows, each block also put through ``transforms``."""
        return DiskRows(self.features, self.rows, self.columns, self._device, self.block, self.sharded, self.offset,
                        self.transforms + transforms)


def as_rows(X) -> Rows:
    return X if isinstance(X, Rows) else MemoryRows(X)


class Operand:
    """Products with X~ = [X, 1] in a chosen precision, stored as X_c + 1 mean^T, computed in ``compute``.

    ``mixed``: X_c is a centred bfloat16 copy when the rows are in memory (converted block by block when they
    are not). Centring keeps the common component of non-negative features (raw DCGAN activations) exact in
    float32, so rounding scales with the spread of the features, not their size. ``float32``: X itself.
    ``float64``: X itself, its products computed in float64 block by block.
    """

    def __init__(self, rows: Rows, compute: torch.dtype, mean: torch.Tensor, low: torch.Tensor | None = None):
        self.source, self.compute, self.mean, self.low = rows, compute, mean, low

    @classmethod
    def of(cls, X, precision: str) -> "Operand":
        rows = as_rows(X)
        if precision in ("float32", "float64"):
            dtype = torch.float64 if precision == "float64" else torch.float32
            return cls(rows, dtype, torch.zeros(rows.d, dtype=dtype, device=rows.device))
        if not bfloat16_is_fast(rows.device):
            warnings.warn(f"precision mixed on {device_name(rows.device)}: bfloat16 products are not native here "
                          "and run many times slower than float32; precision auto picks float32 here")
        mean = torch.zeros(rows.d, dtype=torch.float64, device=rows.device)
        for block in rows.blocks():
            for i in range(0, len(block), COPY_BLOCK):
                mean += block[i:i + COPY_BLOCK].sum(0, dtype=torch.float64)
        mean = (rows.reduce(mean) / max(rows.count(), 1)).float()
        X = rows.tensor()
        if X is None:  # not in memory: each block is centred and rounded as it is read
            return cls(rows, torch.bfloat16, mean)
        low = torch.empty(X.shape, dtype=torch.bfloat16, device=X.device)
        for i in range(0, len(X), COPY_BLOCK):  # no full-size float32 temporary
            low[i:i + COPY_BLOCK] = X[i:i + COPY_BLOCK] - mean
        return cls(rows, torch.bfloat16, mean, low)

    @property
    def result(self) -> torch.dtype:
        return torch.float64 if self.compute == torch.float64 else torch.float32

    @property
    def share(self) -> float:
        """Cost of a pass relative to a float32 pass."""
        return {torch.bfloat16: 0.5, torch.float32: 1.0}.get(self.compute, 2.0)  # float64: measured ~2x

    def rows(self, index: torch.Tensor) -> "Operand":
        low = self.low[index] if self.low is not None else None
        return Operand(self.source.subset(index), self.compute, self.mean, low)

    def reduce(self, t: torch.Tensor) -> torch.Tensor:
        return self.source.reduce(t)

    def _blocks(self, rows: int = BLOCK):
        if self.low is not None:
            yield self.low
            return
        for block in self.source.blocks():
            if block.dtype == self.compute:
                yield block
                continue
            for i in range(0, len(block), rows):
                yield (block[i:i + rows] - self.mean.to(block.dtype)).to(self.compute)

    def times(self, P: torch.Tensor, Pb: torch.Tensor) -> torch.Tensor:
        """X~ [P, Pb]^T: (n, k) from (k, d) and (k,), for this process's rows."""
        P = P.to(self.result)
        X = self.low if self.low is not None else self.source.tensor()
        if X is not None and X.dtype == self.compute:
            out = F.linear(X, P.to(self.compute)).to(self.result)
        else:  # (P X_b^T)^T: this layout ran steadily at about a float32 pass here, F.linear's varied 1-5x
            # written into one result: a list of small per-block results pinned the freed blocks' heap, and a
            # float64 pass over 1.28 M rows grew the process by GBs (measured: 9.5 GB against 0.5 over 610 k rows)
            out, start = torch.empty(len(self.source), len(P), dtype=self.result, device=P.device), 0
            for block in self._blocks():
                out[start:start + len(block)] = (P.to(block.dtype) @ block.T).T
                start += len(block)
        return out + (P @ self.mean.to(self.result) + Pb.to(self.result))

    def t_times(self, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """X~^T V, split into its (k, d) and (k,) parts, from (n, k): summed over every process's rows."""
        V = V.to(self.result)
        out, start = 0, 0
        for block in self._blocks():
            out = out + (V[start:start + len(block)].T.to(block.dtype) @ block).to(self.result)
            start += len(block)
        out, column = self.reduce(out), self.reduce(V.sum(0))
        return out + column[:, None] * self.mean.to(self.result), column

    def gram(self, D: torch.Tensor) -> torch.Tensor:
        """X~^T diag(D_j) X~ for every class j: (k, d + 1, d + 1), in the result dtype."""
        k, d = D.shape[1], self.source.d
        out = torch.zeros(k, d + 1, d + 1, dtype=self.result, device=self.source.device)
        start = 0
        for block in self._blocks():
            rows = torch.cat([block.to(self.result) + self.mean.to(self.result),
                              torch.ones(len(block), 1, dtype=self.result, device=block.device)], 1)
            weights = D[start:start + len(block)].to(self.result)
            for j in range(k):
                out[j] += (rows * weights[:, j:j + 1]).T @ rows
            start += len(block)
        return self.reduce(out)

    def squared_norms(self) -> torch.Tensor:
        """|x~_i|^2 of this process's rows, float64."""
        return torch.cat([torch.linalg.vector_norm(b, dim=1).double().pow(2) + 1.0 for b in self.source.blocks()])

    def gram_times(self, Q: torch.Tensor) -> torch.Tensor:
        """X~^T X~ Q for Q (d + 1, r), summed over every process's rows, in one pass of ``PIECE`` rows at a time:
        never an (n, r) temporary (at 1.28 M rows and r = 512, X~ Q alone would be 2.6 GB)."""
        d, Q = self.source.d, Q.to(self.result)
        shift = self.mean.to(self.result) @ Q[:d] + Q[d]  # what each row's [mean, 1] adds to its product
        out = torch.zeros(d, Q.shape[1], dtype=self.result, device=Q.device)
        column = torch.zeros(Q.shape[1], dtype=self.result, device=Q.device)
        for block in self._blocks():
            for piece in block.split(PIECE):
                Z = (piece @ Q[:d].to(piece.dtype)).to(self.result) + shift
                out += (piece.T @ Z.to(piece.dtype)).to(self.result)
                column += Z.sum(0)
        out, column = self.reduce(out), self.reduce(column)
        return torch.cat([out + self.mean.to(self.result)[:, None] * column, column[None]])


@dataclass
class Spectrum:
    """Top eigenpairs of X~^T X~ (X with a constant column appended): X~^T X~ ~ V diag(values) V^T."""

    vectors: torch.Tensor  # (d + 1, r), orthonormal columns, float64
    values: torch.Tensor  # (r,)

    @classmethod
    def of(cls, X, rank: int = 512, power_iters: int = 1, seed: int = 0) -> "Spectrum":
        """Randomized range finder with power iterations (Halko et al. 2011): power_iters + 2 passes, each one
        X~^T X~ Q. The same seed on every process of a sharded matrix, so all hold the same spectrum."""
        X = X if isinstance(X, Operand) else Operand.of(X, "float32")
        d, device = X.source.d, X.source.device
        g = torch.Generator(device="cpu").manual_seed(seed)
        Q = torch.randn(d + 1, min(rank, d + 1), generator=g).to(device)
        for _ in range(power_iters + 1):
            Q, _ = torch.linalg.qr(X.gram_times(Q).float())
        Q, _ = torch.linalg.qr(Q.double())  # orthonormal to float64 precision: M^-1 must stay positive definite
        B = Q.T @ X.gram_times(Q.float()).double()  # Q^T X~^T X~ Q
        values, U = torch.linalg.eigh(0.5 * (B + B.T))
        return cls(Q @ U, values.clamp_min(0).float())


class Rung:
    """One rung of the precision ladder: exact products (margins, gradient) and CG's operand."""

    def __init__(self, X: Rows, name: str, operand: Operand | None = None):
        self.name = name
        self.exact = Operand.of(X, "float64" if name == "float64" else "float32")
        self.cg = operand if operand is not None and name == "mixed" else (
            self.exact if name != "mixed" else Operand.of(X, "mixed"))
        self.dtype = self.exact.result


def to_tensor(X: np.ndarray | torch.Tensor, device) -> torch.Tensor:
    """Share memory with a float32 numpy array on CPU; copy once to another device."""
    t = torch.from_numpy(X) if isinstance(X, np.ndarray) else X
    return t.to(device) if t.device != torch.device(device) else t
