"""Exemplar-CNN networks (Dosovitskiy et al. 2014), named as in the paper.

``64c5-128c5-256c5-512f`` is three 5x5 convolutions (64, 128, 256 filters, ReLU, 2x2
max-pooling after the first two) and a 512-unit layer with dropout; ``64c5-64c5-128f`` is
the small one that trains on a CPU. The dense layer is a convolution whose kernel covers the
whole map at training size, so the network also runs fully convolutionally on larger
images (the encoder feeds it 64x64).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import BenchError

NETWORKS = ("64c5-64c5-128f", "64c5-128c5-256c5-512f")
POOLED_CONVS = 2  # 2x2 max-pooling follows the first two convolutions


def parse_net(name: str) -> tuple[list[tuple[int, int]], int]:
    """``64c5-128c5-512f`` -> ([(64, 5), (128, 5)], 512): conv (filters, kernel) list and dense width."""
    parts = name.split("-")
    convs = [re.fullmatch(r"(\d+)c(\d+)", p) for p in parts[:-1]]
    dense = re.fullmatch(r"(\d+)f", parts[-1])
    if not parts[:-1] or not all(convs) or not dense:
        raise BenchError(f"network {name!r}: write convolutions then one dense layer, like 64c5-64c5-128f")
    return [(int(m[1]), int(m[2])) for m in convs], int(dense[1])


class ExemplarNet(nn.Module):
    def __init__(self, name: str, classes: int = 0, patch: int = 32, dropout: float = 0.5):
        super().__init__()
        convs, width = parse_net(name)
        self.name, self.patch = name, patch
        self.convs, c_in = nn.ModuleList(), 3
        for filters, kernel in convs:
            self.convs.append(nn.Conv2d(c_in, filters, kernel, padding=kernel // 2))
            c_in = filters
        side = patch // 2 ** min(POOLED_CONVS, len(convs))
        self.dense = nn.Conv2d(c_in, width, side)  # a dense layer over the training-size map
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, classes) if classes else None

    @property
    def widths(self) -> list[int]:
        return [c.out_channels for c in self.convs] + [self.dense.out_channels]

    def responses(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's ReLU response map (convolutions before their pooling), input in [-1, 1]."""
        out = []
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            out.append(x)
            if i < POOLED_CONVS:
                x = F.max_pool2d(x, 2)
        out.append(F.relu(self.dense(self.drop(x))))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.responses(x)[-1].flatten(1)))


def build_net(name: str, classes: int = 0, seed: int = 0, dropout: float = 0.5) -> ExemplarNet:
    """PyTorch's default initialisation, seeded, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ExemplarNet(name, classes, dropout=dropout)
