"""Sample grids from generators: the port check for released weights and progress for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..core.files import atomic_write


def tile(images: np.ndarray, cols: int = 8, pad: int = 1) -> np.ndarray:
    """uint8 (N, H, W, 3) -> one uint8 grid image with ``pad`` white pixels between cells."""
    n, h, w, c = images.shape
    rows = -(-n // cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = img
    return grid


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Generator output in [-1, 1], NCHW -> uint8 NHWC."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def generate(gen, n: int = 64, seed: int = 0, device="cpu") -> torch.Tensor:
    """n samples from Gaussian z; batchnorm uses the batch's statistics, as at training time."""
    z = torch.randn(n, gen.arch.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    return gen.to(device).eval()(z)


def save_grid(images: np.ndarray, path, scale: int = 3) -> Path:
    path = Path(path)
    img = Image.fromarray(tile(images))
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    with atomic_write(path) as tmp:
        img.save(tmp, format="PNG")
    return path
