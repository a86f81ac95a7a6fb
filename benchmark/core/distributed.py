"""Work shared across processes started by torchrun: who this process is, and moving arrays between ranks.

Everything here is a no-op in a single process. Arrays travel as tensors (gloo on CPU,
NCCL on CUDA), never pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> "Shard":
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def lead(self) -> bool:
        """Rank 0: the process that writes files and runs what runs once."""
        return self.rank == 0

    def bounds(self, n: int) -> list[int]:
        """Row boundaries of every rank's contiguous share of n rows."""
        return [n * r // self.world for r in range(self.world + 1)]

    def rows(self, n: int) -> slice:
        b = self.bounds(n)
        return slice(b[self.rank], b[self.rank + 1])


def _device() -> torch.device:
    """Where collectives need their tensors: the current GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_flags(flags: list[bool]) -> list[bool]:
    """Rank 0's booleans, on every rank."""
    if Shard.current().world == 1:
        return flags
    t = torch.tensor([int(f) for f in flags], dtype=torch.int64, device=_device())
    dist.broadcast(t, 0)
    return [bool(v) for v in t.tolist()]


def broadcast_arrays(arrays: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Rank 0's dict of numpy arrays, on every rank: names, shapes and dtypes as JSON bytes, then the data."""
    shard = Shard.current()
    if shard.world == 1:
        return arrays
    device = _device()
    header = json.dumps({k: [list(v.shape), v.dtype.str] for k, v in sorted(arrays.items())}).encode() \
        if shard.lead else b""
    size = torch.tensor([len(header)], dtype=torch.int64, device=device)
    dist.broadcast(size, 0)
    buffer = torch.zeros(int(size), dtype=torch.uint8, device=device)
    if shard.lead:
        buffer.copy_(torch.frombuffer(bytearray(header), dtype=torch.uint8))
    dist.broadcast(buffer, 0)
    layout = json.loads(bytes(buffer.cpu().tolist()).decode())
    out = {}
    for name, (shape, dtype) in layout.items():
        data = torch.from_numpy(np.ascontiguousarray(arrays[name]).view(np.uint8).reshape(-1).copy()) if shard.lead \
            else torch.empty(int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=torch.uint8)
        data = data.to(device)
        dist.broadcast(data, 0)
        out[name] = data.cpu().numpy().view(np.dtype(dtype)).reshape(shape)
    return out


def gather_rows(mine: np.ndarray, n_rows: int, write, block: int = 1024) -> None:
    """Rank 0 receives every rank's contiguous share of an (n_rows, ...) float32 array, in row order,
    and hands it to ``write`` block by block; the other ranks send theirs."""
    shard = Shard.current()
    if shard.world == 1:
        write(mine)
        return
    device, bounds = _device(), shard.bounds(n_rows)
    if shard.lead:
        write(mine)
        for rank in range(1, shard.world):
            for start in range(bounds[rank], bounds[rank + 1], block):
                stop = min(start + block, bounds[rank + 1])
                part = torch.empty((stop - start, *mine.shape[1:]), dtype=torch.float32, device=device)
                dist.recv(part, rank)
                write(part.cpu().numpy())
    else:
        for start in range(0, len(mine), block):
            dist.send(torch.from_numpy(np.ascontiguousarray(mine[start:start + block])).to(device), 0)


def barrier() -> None:
    if Shard.current().world > 1:
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over every rank (in place; the tensor itself when alone)."""
    if Shard.current().world > 1:
        dist.all_reduce(t)
    return t


def all_gather(t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``t`` (same shape on every rank), in rank order; ``[t]`` when alone."""
    shard = Shard.current()
    if shard.world == 1:
        return [t]
    device = _device()
    parts = [torch.empty_like(t, device=device) for _ in range(shard.world)]
    dist.all_gather(parts, t.to(device))
    return [part.to(t.device) for part in parts]
