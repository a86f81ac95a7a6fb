"""Exemplar-CNN features, computed as the original code did on CIFAR-10.

Images are upscaled to 64x64 (bilinear), the network runs fully convolutionally, each
layer's ReLU responses are max-pooled over the four quadrants, and each layer's block is
divided by a high percentile (99.99th by default) of its values on training images, so no
layer dominates by scale. The percentiles are fitted on a seeded sample of ``fit_images``
training images (10,000 by default) and cached beside the features.

Spec: ``exemplar-cnn:RUN_DIR`` (a `bench train exemplar-cnn` run or its checkpoint),
``exemplar-cnn-small`` (the weights trained by this project, see pretrained/manifest.toml)
or the control ``exemplar-cnn:net=64c5-64c5-128f,weights=random``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import BenchError
from ..core.progress import bar
from ..models.exemplar import NETWORKS, ExemplarNet, build_net
from ..training.checkpoints import load_weights, read_checkpoint
from . import pretrained
from .base import Encoder
from .options import Option, declare

UPSCALE = 64


class ExemplarFeatures(Encoder):
    """Exemplar-CNN: every layer max-pooled over the four quadrants, scaled by its percentile."""

    name = "exemplar-cnn"
    needs_fit = True

    def __init__(self, net: ExemplarNet, source: str, digest: str, percentile: float = 99.99,
                 fit_images: int = 10_000, seed: int = 0):
        super().__init__()
        self.net, self.source, self._digest = net.eval(), source, digest
        self.percentile, self.fit_images, self.seed = percentile, fit_images, seed
        self.scales = None

    def config(self) -> dict:
        return {"net": self.net.name, "source": self.source, "percentile": self.percentile,
                "fit_images": self.fit_images, "seed": self.seed, "upscale": UPSCALE,
                "preprocessing": "bilinear to 64x64, x/127.5-1"}

    def weights_digest(self) -> str:
        return self._digest

    @property
    def dim(self) -> int:
        return 4 * sum(self.net.widths)

    def layers(self) -> dict[str, slice]:
        out, start = {}, 0
        for i, width in enumerate(self.net.widths, 1):
            out[str(i)] = slice(start, start + 4 * width)
            start += 4 * width
        return out

    def to(self, device):
        super().to(device)
        self.net.to(self.device)
        return self

    @torch.no_grad()
    def pooled(self, images: np.ndarray) -> list[torch.Tensor]:
        """Each layer's quadrant-max-pooled responses, (n, 4 * width), unscaled."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float()
        x = F.interpolate(x.div_(127.5).sub_(1.0), size=(UPSCALE, UPSCALE), mode="bilinear", align_corners=False)
        return [F.adaptive_max_pool2d(r, 2).flatten(1) for r in self.net.responses(x)]

    def fit(self, images: np.ndarray, batch_size: int = 256) -> "ExemplarFeatures":
        """Each layer's percentile over a seeded sample of training images."""
        if len(images) > self.fit_images:
            rng = np.random.default_rng(self.seed)
            images = images[np.sort(rng.choice(len(images), self.fit_images, replace=False))]
        blocks = [[] for _ in self.net.widths]
        for i in bar(range(0, len(images), batch_size), desc="exemplar-cnn percentiles", unit="batch"):
            for store, block in zip(blocks, self.pooled(images[i:i + batch_size])):
                store.append(block.cpu().numpy())
        scales = [np.percentile(np.concatenate(b), self.percentile) for b in blocks]
        self.scales = np.maximum(np.asarray(scales, dtype=np.float32), 1e-12)  # a dead layer stays zero
        return self

    def fit_sample(self, n_train: int) -> int:
        return min(n_train, self.fit_images)

    def state(self) -> dict[str, np.ndarray]:
        return {"scales": self.scales}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.scales = np.asarray(state["scales"], dtype=np.float32)

    def transform(self, images: np.ndarray) -> np.ndarray:
        if self.scales is None:
            raise BenchError("exemplar-cnn: fit() the percentiles on training images before transform()")
        blocks = [b / float(s) for b, s in zip(self.pooled(images), self.scales)]
        return torch.cat(blocks, 1).cpu().numpy()


def load_network(run) -> tuple[ExemplarNet, dict]:
    """The trained network of a run (folder or checkpoint file), without its surrogate-class head."""
    state = read_checkpoint(run, "Exemplar-CNN", "exemplar-cnn")
    if "net" not in state:
        raise BenchError(f"{run}: not an Exemplar-CNN checkpoint (a DCGAN run? use --features dcgan:{run})")
    net = ExemplarNet(state["config"]["net"], patch=state["config"]["patch"])
    load_weights(net, {k: v for k, v in state["net"].items() if not k.startswith("head.")}, run)
    return net, state["config"]


def _digest(net: ExemplarNet) -> str:
    h = hashlib.sha1()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode() + tensor.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


FIT_OPTIONS = (
    Option("percentile", "float", 99.99, "each layer is divided by this percentile of its training responses",
           min=0, max=100),
    Option("fit_images", "int", 10_000, "training images (a seeded sample) the percentiles are fitted on", min=1),
    Option("seed", "int", 0, "seeds that sample (and random weights)", min=0),
)


@declare(*FIT_OPTIONS)
def project_weights(name: str, percentile: float = 99.99, fit_images: int = 10_000, seed: int = 0) -> ExemplarFeatures:
    """An Exemplar-CNN trained by this project, by its name in pretrained/manifest.toml."""
    arrays, entry, sha1 = pretrained.project_arrays(name)
    model = ExemplarNet(entry.meta["architecture"])
    load_weights(model, arrays, entry.folder)
    return ExemplarFeatures(model, f"pretrained:{name}", sha1, percentile, fit_images, seed)


@declare(Option("path", "text", "", "a `bench train exemplar-cnn` run folder or its checkpoint file"),
         Option("net", "choice", NETWORKS[0], "the network, for weights=random", choices=NETWORKS),
         Option("weights", "choice", "trained", "trained (from the run folder) or random (the control)",
                choices=("trained", "random")),
         *FIT_OPTIONS)
def exemplar_cnn(path: str = "", net: str = NETWORKS[0], weights: str = "trained", percentile: float = 99.99,
                 fit_images: int = 10_000, seed: int = 0) -> ExemplarFeatures:
    """Exemplar-CNN features from a training run (exemplar-cnn:RUN_DIR) or random weights (weights=random)."""
    if weights == "random":
        if path:
            raise BenchError(f"exemplar-cnn: weights=random takes no run folder (got {path!r})")
        model, source = build_net(net, seed=seed), f"random:default-init:seed={seed}"
    else:
        if not path:
            raise BenchError("exemplar-cnn: give a run folder (exemplar-cnn:RUN_DIR) or weights=random")
        model, config = load_network(path)
        source = f"trained:{config}"
    return ExemplarFeatures(model, source, _digest(model), percentile, fit_images, seed)
