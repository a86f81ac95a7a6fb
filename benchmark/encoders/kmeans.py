"""The single-layer k-means network of Coates, Lee & Ng (2011), with its published defaults.

Fit (training images only): sample random patches, normalise each patch's brightness and
contrast, ZCA-whiten, run k-means. Transform: every patch of an image (stride 1: 27x27
positions for 6x6 patches), normalised and whitened alike, the "triangle" activation
f_k = max(0, mean_j z_j - z_k) of its distances z to the centroids, summed over the four
quadrants of the response map (split at round(27/2) = 14, as the reference code): 4K
features.

Distances are matrix products (|x|^2 - 2 x.c + |c|^2) in PyTorch, on CPU threads or CUDA,
in fixed batches so memory stays bounded; ``torch.compile`` fuses the elementwise passes
over the (patches x K) distances with the quadrant sums, about 3x faster on CPU, and the fit's
argmin with its product (``compile=false`` turns both off).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.compiled import compiled_or_eager
from ..core.errors import BenchError
from ..core.progress import bar
from .base import Encoder
from .options import Option, declare

# Temporaries per step (patches x K distances, float32) stay under glibc's 32 MB mmap ceiling, so they are reused
# from the heap instead of being mapped and zeroed afresh each step: at K = 4,000, 4 images a step (47 MB) ran
# 1.4x slower than 2, and 4,096 patches a fit step 1.6x slower than 1,536.
# On CUDA steps are 64x larger: there is no such ceiling, and larger steps amortise kernel launches.
TEMP_BYTES = 24 * 2 ** 20


def rows_per_step(k: int, device: torch.device, rows_per_item: int = 1) -> int:
    """Items (images of ``rows_per_item`` patches, or patches) per step whose k distances fit the step's bytes."""
    budget = TEMP_BYTES if device.type == "cpu" else 64 * TEMP_BYTES
    return max(1, budget // (rows_per_item * k * 4))


# ---------------------------------------------------------------- the steps, as plain functions

def patches(x: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """uint8 NHWC images -> (N, positions, 3*size*size) float patches, channel-major (F.unfold's layout).

    Built from ``Tensor.unfold`` views: on this CPU 5x faster than ``F.unfold``.
    """
    windows = x.permute(0, 3, 1, 2).float().unfold(2, size, stride).unfold(3, size, stride)  # N,C,H',W',k,k
    n, c, h, w = windows.shape[:4]
    return windows.permute(0, 2, 3, 1, 4, 5).reshape(n, h * w, c * size * size)


def normalise(p: torch.Tensor, eps: float) -> torch.Tensor:
    """Per-patch brightness and contrast: (p - mean) / sqrt(var + eps), on the 0-255 scale (unbiased var).

    Written out rather than ``Tensor.var``, which ran 5x slower here.
    """
    centred = p - p.mean(1, keepdim=True)
    return centred * torch.rsqrt(centred.pow(2).sum(1, keepdim=True) / (p.shape[1] - 1) + eps)


def whiten(p: torch.Tensor, mean: torch.Tensor, whitening: torch.Tensor) -> torch.Tensor:
    """ZCA-whiten normalised patches with the fitted patch mean and whitening matrix."""
    return (p - mean) @ whitening


def distances(p: torch.Tensor, centroids: torch.Tensor, centroids_sq: torch.Tensor) -> torch.Tensor:
    """Euclidean distances from each row of p to each centroid (rows of ``centroids``), via one matrix product.

    ``p @ centroids.T`` with row-major centroids is the fast layout here (1.5x over a d x K copy).
    """
    sq = torch.addmm(centroids_sq, p, centroids.T, alpha=-2.0) + p.pow(2).sum(1, keepdim=True)
    return sq.clamp(min=0).sqrt()


def nearest(p: torch.Tensor, centroids: torch.Tensor, centroids_sq: torch.Tensor) -> torch.Tensor:
    """Each row's nearest centroid: the argmin of |c|^2 - 2 x.c, as |x|^2 is the same for every centroid."""
    return torch.addmm(centroids_sq, p, centroids.T, alpha=-2.0).argmin(1)


def triangle(z: torch.Tensor) -> torch.Tensor:
    """f_k(x) = max(0, mean_j(z_j) - z_k), z the distances to the centroids."""
    return (z.mean(-1, keepdim=True) - z).clamp(min=0)


def quadrant_sums(act: torch.Tensor, side: int) -> torch.Tensor:
    """(N, side*side, K) responses -> (N, 4K) sums over the quadrants of the side x side map (top-left,
    top-right, bottom-left, bottom-right), halves split at round(side/2) as the reference code.

    Sums over slices, fused into the compiled step: 1.15-1.3x faster per image than a product with 0/1 masks
    at K = 4,000 on CIFAR images (the masks' batched product was a third of the step's non-GEMM time)."""
    half, n = int(side / 2 + 0.5), act.shape[0]
    grid = act.view(n, side, side, -1)
    top, bottom = grid[:, :half].sum(1), grid[:, half:].sum(1)
    return torch.stack([top[:, :half].sum(1), top[:, half:].sum(1), bottom[:, :half].sum(1),
                        bottom[:, half:].sum(1)], 1).reshape(n, -1)


def encode_batch(x, patch_mean, whitening, centroids, centroids_sq, size: int, stride: int,
                 norm_eps: float) -> torch.Tensor:
    """uint8 NHWC batch -> (N, 4K) features."""
    p = patches(x, size, stride)
    n, positions = p.shape[0], p.shape[1]
    p = whiten(normalise(p.reshape(n * positions, -1), norm_eps), patch_mean, whitening)
    act = triangle(distances(p, centroids, centroids_sq))
    return quadrant_sums(act.view(n, positions, -1), (x.shape[1] - size) // stride + 1)


# ---------------------------------------------------------------- the encoder

@declare(
    Option("k", "int", 1600, "centroids; features are 4k", min=1),
    Option("patch", "int", 6, "patch side in pixels", min=1, max=32),
    Option("stride", "int", 1, "step between patches", min=1, max=32),
    Option("patches", "int", 400_000, "random training patches for the fit", min=1),
    Option("iters", "int", 50, "k-means iterations", min=1),
    Option("whiten_eps", "float", 0.1, "ZCA regulariser added to the eigenvalues", min=0),
    Option("norm_eps", "float", 10.0, "contrast normalisation regulariser, on the 0-255 scale", min=0),
    Option("seed", "int", 0, "seeds the patches and the initial centroids", min=0),
    Option("init", "choice", "randn", "initial centroids: randn (N(0, 0.1^2) vectors, as Coates & Ng's "
           "run_kmeans.m) or patches (random whitened patches)", choices=("randn", "patches")),
    Option("empty", "choice", "zero", "a cluster left empty by an iteration: zero (a zero centroid, as Coates & "
           "Ng's code) or reseed (a random patch)", choices=("zero", "reseed")),
    Option("compile", "choice", "true", "fuse the activation passes with torch.compile (speed only)",
           choices=("true", "false")),
)
class KMeansNetwork(Encoder):
    """Single-layer k-means features (Coates, Lee & Ng 2011): 4K quadrant-pooled triangle activations."""

    name = "kmeans"
    needs_fit = True

    def __init__(self, k=1600, patch=6, stride=1, patches=400_000, iters=50, whiten_eps=0.1, norm_eps=10.0,
                 seed=0, init="randn", empty="zero", compile="true"):
        super().__init__()
        self.init, self.empty = init, empty
        self.k, self.patch, self.stride = int(k), int(patch), int(stride)
        self.n_patches, self.iters, self.seed = int(patches), int(iters), int(seed)
        self.whiten_eps, self.norm_eps = float(whiten_eps), float(norm_eps)
        if self.k > self.n_patches:
            raise BenchError(f"kmeans: k={self.k} centroids need at least as many patches (patches={self.n_patches})")
        compiled = compile == "true"  # the fit's assignment step too: 1.1-1.4x per iteration at K = 4,000
        self.encode = compiled_or_eager(encode_batch, "kmeans") if compiled else encode_batch
        self.nearest = compiled_or_eager(nearest, "kmeans", dynamic=None) if compiled else nearest
        self.centroids = self.whitening = self.patch_mean = None

    def config(self) -> dict:  # ``compile`` changes speed only, so it is not part of the fingerprint
        config = {"k": self.k, "patch": self.patch, "stride": self.stride, "patches": self.n_patches,
                  "iters": self.iters, "whiten_eps": self.whiten_eps, "norm_eps": self.norm_eps, "seed": self.seed}
        # The first release's pair (patches, reseed) is named by omission, so its cached files keep their names.
        return config | ({"init": self.init, "empty": self.empty} if (self.init, self.empty) != ("patches", "reseed")
                         else {})

    @property
    def dim(self) -> int:
        return 4 * self.k

    def flops(self, n_train: int) -> tuple[float, float]:
        """From the shapes (the activations run compiled): the fit's assignments, then per image every
        position's whitening, distances to the k centroids and quadrant sums."""
        d = 3 * self.patch * self.patch
        positions = ((32 - self.patch) // self.stride + 1) ** 2
        fit = self.iters * self.n_patches * self.k * d * 2.0 + self.n_patches * d * d * 2.0
        return fit, positions * (d * d * 2.0 + self.k * d * 2.0 + 4 * self.k * 2.0)

    def sample_patches(self, images: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """``n_patches`` random patches (random image and position), laid out as ``patches`` lays them."""
        n, size = self.n_patches, images.shape[1] - self.patch + 1
        which, rows, cols = rng.integers(0, len(images), n), rng.integers(0, size, n), rng.integers(0, size, n)
        d = np.arange(self.patch)
        p = images[which[:, None, None], rows[:, None, None] + d[None, :, None], cols[:, None, None] + d[None, None, :]]
        return torch.from_numpy(p.transpose(0, 3, 1, 2).reshape(n, -1).astype(np.float32)).to(self.device)

    def fit_whitening(self, p: torch.Tensor) -> None:
        """ZCA: W = V diag(1 / sqrt(lambda + eps)) V^T of the patches' covariance."""
        p = p.double()
        mean = p.mean(0)
        eigvals, eigvecs = torch.linalg.eigh(torch.cov((p - mean).T))
        self.patch_mean = mean.float()
        self.whitening = (eigvecs @ torch.diag(1.0 / torch.sqrt(eigvals + self.whiten_eps)) @ eigvecs.T).float()

    def fit(self, images: np.ndarray, batch_size: int = 256) -> "KMeansNetwork":
        rng = np.random.default_rng(self.seed)
        p = normalise(self.sample_patches(images, rng), self.norm_eps)
        self.fit_whitening(p)
        p = whiten(p, self.patch_mean, self.whitening)
        if self.init == "randn":
            g = torch.Generator().manual_seed(self.seed)
            self.centroids = (torch.randn(self.k, p.shape[1], generator=g) * 0.1).to(self.device)
        else:
            self.centroids = p[torch.from_numpy(rng.choice(len(p), self.k, replace=False)).to(self.device)].clone()
        self.cluster_sizes, chunk = None, rows_per_step(self.k, self.device)
        for _ in bar(range(self.iters), desc=f"k-means k={self.k}", unit="iter"):
            c2 = self.centroids.pow(2).sum(1)
            assigned = torch.cat([self.nearest(p[i:i + chunk], self.centroids, c2) for i in range(0, len(p), chunk)])
            sums = torch.zeros_like(self.centroids).index_add_(0, assigned, p)  # one call: 5x faster than per chunk
            counts = torch.bincount(assigned, minlength=self.k).to(p.dtype)
            empty = counts == 0
            self.centroids = sums / counts.clamp_min(1)[:, None]  # an empty cluster's centroid: zero
            if empty.any() and self.empty == "reseed":  # re-seed empty clusters with random patches
                fresh = torch.from_numpy(rng.choice(len(p), int(empty.sum()), replace=False)).to(self.device)
                self.centroids[empty] = p[fresh]
            self.cluster_sizes = counts  # of the last assignment, for diagnostics
        return self

    def state(self) -> dict[str, np.ndarray]:
        state = {"centroids": self.centroids.cpu().numpy(), "whitening": self.whitening.cpu().numpy(),
                 "patch_mean": self.patch_mean.cpu().numpy()}
        if getattr(self, "cluster_sizes", None) is not None:  # the last assignment's, to study empty clusters
            state["cluster_sizes"] = self.cluster_sizes.cpu().numpy().astype(np.int64)
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.centroids = torch.from_numpy(state["centroids"]).to(self.device)
        self.whitening = torch.from_numpy(state["whitening"]).to(self.device)
        self.patch_mean = torch.from_numpy(state["patch_mean"]).to(self.device)
        sizes = state.get("cluster_sizes")
        self.cluster_sizes = torch.from_numpy(sizes) if sizes is not None else None

    @torch.no_grad()
    def transform(self, images: np.ndarray) -> np.ndarray:
        side = (images.shape[1] - self.patch) // self.stride + 1
        args = (self.patch_mean, self.whitening, self.centroids.contiguous(), self.centroids.pow(2).sum(1),
                self.patch, self.stride, self.norm_eps)
        # A fixed step shape, so the compiled kernel is built once (and once more for a smaller last call); never
        # more images than the call has, which at small k would pad a batch to thousands of zero images.
        out, batch = [], max(1, min(rows_per_step(self.k, self.device, side * side), len(images)))
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch])).to(self.device)
            n = len(x)
            if n < batch:
                x = torch.cat([x, x.new_zeros((batch - n, *x.shape[1:]))])
            out.append(self.encode(x, *args)[:n])
        return torch.cat(out).cpu().numpy()

    def to(self, device):
        super().to(device)
        for name in ("centroids", "whitening", "patch_mean"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).to(self.device))
        return self
