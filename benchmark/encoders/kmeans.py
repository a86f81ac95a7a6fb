"""The single-layer k-means network of Coates, Lee & Ng (2011), with its published defaults.

Fit (training images only): sample random patches, normalise each patch's brightness and
contrast, ZCA-whiten, run k-means. Transform: every patch of an image (stride 1: 27x27
positions for 6x6 patches), normalised and whitened alike, the "triangle" activation
f_k = max(0, mean_j z_j - z_k) of its distances z to the centroids, summed over the four
quadrants of the response map: 4K features.

Distances are matrix products (|x|^2 - 2 x.c + |c|^2) in PyTorch, on CPU threads or CUDA,
in batches so memory stays bounded.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..progress import bar
from .base import Encoder


class KMeansNetwork(Encoder):
    """Single-layer k-means features (Coates, Lee & Ng 2011): 4K quadrant-pooled triangle activations."""

    name = "kmeans"
    needs_fit = True

    def __init__(self, k="1600", patch="6", stride="1", patches="400000", iters="50", whiten_eps="0.1",
                 norm_eps="10", seed="0"):
        super().__init__()
        self.k, self.patch, self.stride = int(k), int(patch), int(stride)
        self.n_patches, self.iters, self.seed = int(patches), int(iters), int(seed)
        self.whiten_eps, self.norm_eps = float(whiten_eps), float(norm_eps)
        self.centroids = self.whitening = self.patch_mean = None

    def config(self) -> dict:
        return {"k": self.k, "patch": self.patch, "stride": self.stride, "patches": self.n_patches,
                "iters": self.iters, "whiten_eps": self.whiten_eps, "norm_eps": self.norm_eps, "seed": self.seed}

    @property
    def dim(self) -> int:
        return 4 * self.k

    # ------------------------------------------------------------------ steps
    def normalise(self, p: torch.Tensor) -> torch.Tensor:
        """Per-patch brightness and contrast: (p - mean) / sqrt(var + norm_eps), 0-255 scale."""
        return (p - p.mean(1, keepdim=True)) / torch.sqrt(p.var(1, keepdim=True) + self.norm_eps)

    def fit_whitening(self, p: torch.Tensor) -> None:
        """ZCA: W = V diag(1 / sqrt(lambda + eps)) V^T of the patches' covariance."""
        p = p.double()
        mean = p.mean(0)
        cov = torch.cov((p - mean).T)
        eigvals, eigvecs = torch.linalg.eigh(cov)
        self.patch_mean = mean.float()
        self.whitening = (eigvecs @ torch.diag(1.0 / torch.sqrt(eigvals + self.whiten_eps)) @ eigvecs.T).float()

    def whiten(self, p: torch.Tensor) -> torch.Tensor:
        return (p - self.patch_mean) @ self.whitening

    def sq_distances(self, p: torch.Tensor) -> torch.Tensor:
        return (p.pow(2).sum(1, keepdim=True) - 2 * p @ self.centroids.T + self.centroids.pow(2).sum(1)).clamp_min_(0)

    @staticmethod
    def triangle(dist: torch.Tensor) -> torch.Tensor:
        """f_k(x) = max(0, mean_j(z_j) - z_k), z the distances to the centroids."""
        return (dist.mean(-1, keepdim=True) - dist).clamp_min_(0)

    @staticmethod
    def quadrant_pool(act: torch.Tensor) -> torch.Tensor:
        """Sum (N, H, W, K) responses over the four quadrants -> (N, 4K); halves split as round(H/2)."""
        h, w = act.shape[1], act.shape[2]
        rh, rw = int(h / 2 + 0.5), int(w / 2 + 0.5)
        quads = [act[:, :rh, :rw], act[:, :rh, rw:], act[:, rh:, :rw], act[:, rh:, rw:]]
        return torch.cat([q.sum((1, 2)) for q in quads], 1)

    def image_patches(self, images: np.ndarray) -> torch.Tensor:
        """All patches of uint8 NHWC images as (N, positions, 3*patch*patch), channel-major."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float()
        return F.unfold(x, self.patch, stride=self.stride).transpose(1, 2)

    # ------------------------------------------------------------------ fit
    def sample_patches(self, images: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        n, size = self.n_patches, images.shape[1] - self.patch + 1
        which, rows, cols = rng.integers(0, len(images), n), rng.integers(0, size, n), rng.integers(0, size, n)
        d = np.arange(self.patch)
        p = images[which[:, None, None], rows[:, None, None] + d[None, :, None], cols[:, None, None] + d[None, None, :]]
        p = p.transpose(0, 3, 1, 2).reshape(n, -1)  # (n, 3, patch, patch) flattened, as F.unfold orders it
        return torch.from_numpy(p.astype(np.float32)).to(self.device)

    def fit(self, images: np.ndarray, batch_size: int = 256) -> "KMeansNetwork":
        rng = np.random.default_rng(self.seed)
        p = self.normalise(self.sample_patches(images, rng))
        self.fit_whitening(p)
        p = self.whiten(p)
        self.centroids = p[torch.from_numpy(rng.choice(len(p), self.k, replace=False)).to(self.device)].clone()
        block = 20000
        for _ in bar(range(self.iters), desc=f"k-means k={self.k}", unit="iter"):
            sums = torch.zeros_like(self.centroids)
            counts = torch.zeros(self.k, device=self.device)
            c2 = self.centroids.pow(2).sum(1)
            for i in range(0, len(p), block):
                chunk = p[i:i + block]
                nearest = (c2 - 2 * chunk @ self.centroids.T).argmin(1)  # |x|^2 is the same for every k
                sums.index_add_(0, nearest, chunk)
                counts += torch.bincount(nearest, minlength=self.k)
            empty = counts == 0
            self.centroids = sums / counts.clamp_min(1)[:, None]
            if empty.any():  # re-seed empty clusters with random patches
                fresh = torch.from_numpy(rng.choice(len(p), int(empty.sum()), replace=False)).to(self.device)
                self.centroids[empty] = p[fresh]
        return self

    # ------------------------------------------------------------------ state and transform
    def state(self) -> dict[str, np.ndarray]:
        return {"centroids": self.centroids.cpu().numpy(), "whitening": self.whitening.cpu().numpy(),
                "patch_mean": self.patch_mean.cpu().numpy()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.centroids = torch.from_numpy(state["centroids"]).to(self.device)
        self.whitening = torch.from_numpy(state["whitening"]).to(self.device)
        self.patch_mean = torch.from_numpy(state["patch_mean"]).to(self.device)

    @torch.no_grad()
    def transform(self, images: np.ndarray) -> np.ndarray:
        out = []
        side = (images.shape[1] - self.patch) // self.stride + 1
        for i in range(0, len(images), 32):  # 32 images x 729 patches x K distances at a time
            p = self.image_patches(images[i:i + 32])
            n = p.shape[0]
            p = self.whiten(self.normalise(p.reshape(-1, p.shape[-1])))
            act = self.triangle(self.sq_distances(p).sqrt_())
            out.append(self.quadrant_pool(act.view(n, side, side, self.k)))
        return torch.cat(out).cpu().numpy()

    def to(self, device):
        super().to(device)
        for name in ("centroids", "whitening", "patch_mean"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).to(self.device))
        return self
