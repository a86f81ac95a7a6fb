"""DCGAN discriminator features: the paper's released models and a random-weights control.

Spec options: ``layers`` (``1-4``, ``1,3,5`` or ``all``), ``bn_images`` (``all``, the
default, or a number: a seeded sample of training images for the batchnorm estimate),
``seed``. ``dcgan-random`` also takes ``arch`` (imagenet32, svhn32, small).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..core.errors import BenchError
from ..core.progress import bar
from ..models.dcgan import Discriminator, Generator, architecture, estimate_batchnorm, init_weights
from ..training.checkpoints import read_checkpoint
from . import pretrained
from .base import Encoder, to_unit_range


def parse_layers(text: str, n: int) -> tuple[int, ...]:
    if text in ("all", ""):
        return tuple(range(1, n + 1))
    chosen = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            chosen.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise BenchError(f"layers={text!r}: write a range like 1-4, a list like 1,3,5, or all") from None
    if not chosen or min(chosen) < 1 or max(chosen) > n:
        raise BenchError(f"layers={text!r}: this discriminator has layers 1-{n}")
    return tuple(sorted(chosen))


class DCGANFeatures(Encoder):
    """Discriminator features: each chosen conv layer max-pooled to 4x4, concatenated."""

    needs_fit = True
    probe_scale = "none"  # the original code fed raw features to LinearSVC; standardising cost a point here

    def __init__(self, name: str, disc: Discriminator, layers: tuple[int, ...], source: str,
                 weights_digest: str, bn_images: str = "all", seed: int = 0):
        super().__init__()
        self.name, self.spec = name, name
        self.disc, self.chosen, self.source = disc.eval(), layers, source
        self._digest, self.bn_images, self.seed = weights_digest, bn_images, seed

    def config(self) -> dict:
        return {"arch": self.disc.arch.name, "layers": list(self.chosen), "source": self.source,
                "bn_images": self.bn_images, "seed": self.seed, "preprocessing": "x/127.5-1"}

    def weights_digest(self) -> str:
        return self._digest

    @property
    def dim(self) -> int:
        return self.disc.arch.feature_width(self.chosen)

    def layers(self) -> dict[str, slice]:
        out, start = {}, 0
        for i in self.chosen:
            width = self.disc.arch.feature_width([i])
            out[str(i)] = slice(start, start + width)
            start += width
        return out

    def to(self, device):
        super().to(device)
        # images arrive NHWC, so inputs are channels-last already; matching weights run ~1.4x faster on CPU
        self.disc.to(self.device, memory_format=torch.channels_last)
        return self

    def fit(self, images: np.ndarray, batch_size: int = 256) -> "DCGANFeatures":
        """Re-estimate batchnorm statistics on (a seeded sample of) unlabeled training images."""
        if self.bn_images != "all" and int(self.bn_images) < len(images):
            rng = np.random.default_rng(self.seed)
            images = images[np.sort(rng.choice(len(images), int(self.bn_images), replace=False))]

        def batches(desc):
            for i in bar(range(0, len(images), batch_size), desc=desc, unit_scale=batch_size, unit="img"):
                yield to_unit_range(images[i:i + batch_size], self.device)

        estimate_batchnorm(self.disc, batches, max(self.chosen))
        return self

    def state(self) -> dict[str, np.ndarray]:
        out = {}
        for k, norm in enumerate(self.disc.norms[: max(self.chosen)]):
            if getattr(norm, "fixed", False):
                out[f"bn{k + 1}_mean"] = norm.mean.cpu().numpy()
                out[f"bn{k + 1}_var"] = norm.var.cpu().numpy()
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for k, norm in enumerate(self.disc.norms[: max(self.chosen)]):
            if f"bn{k + 1}_mean" in state:
                norm.mean.copy_(torch.from_numpy(state[f"bn{k + 1}_mean"]))
                norm.var.copy_(torch.from_numpy(state[f"bn{k + 1}_var"]))
                norm.fixed = True

    @torch.no_grad()
    def transform(self, images: np.ndarray) -> np.ndarray:
        return self.disc.features(to_unit_range(images, self.device), self.chosen).cpu().numpy()


# ---------------------------------------------------------------- released weights

def theano_kernel(w: np.ndarray) -> torch.Tensor:
    """Theano's conv_mode='conv' is a true convolution: flip kernels for PyTorch's cross-correlation."""
    return torch.from_numpy(np.ascontiguousarray(w[:, :, ::-1, ::-1]))


def load_released_discriminator(name: str, layers: tuple[int, ...], with_output: bool = False):
    """A Discriminator holding the released weights of layers 1..max(layers) (and the output layer)."""
    entry = pretrained.entry(name)
    arch = architecture(entry.meta["architecture"])
    depth = max(layers)
    roles = [f"w{k}" for k in range(1, depth + 1)]
    roles += [f"{p}{k}" for k in range(2, depth + 1) for p in ("g", "b")]
    if with_output:
        roles.append("wy")
    try:
        arrays = pretrained.load_arrays(entry, roles)
    except pretrained.MissingWeights as exc:
        missing_layers = sorted({int(f.role[1:]) for f in exc.missing if f.role[1:].isdigit()})
        complete = min(missing_layers) - 1 if missing_layers else depth
        hint = f"; layers=1-{complete} works without them" if complete >= 1 else ""
        raise BenchError(f"{exc} (needed for layers {','.join(map(str, missing_layers)) or 'output'}{hint})") from None
    disc = Discriminator(arch)
    with torch.no_grad():
        for k in range(1, depth + 1):
            disc.convs[k - 1].weight.copy_(theano_kernel(arrays[f"w{k}"]))
            if k > 1:
                disc.norms[k - 1].weight.copy_(torch.from_numpy(arrays[f"g{k}"]))
                disc.norms[k - 1].bias.copy_(torch.from_numpy(arrays[f"b{k}"]))
        if with_output:
            disc.out.weight.copy_(torch.from_numpy(arrays["wy"]).T)
    digest = hashlib.sha1("".join(f.sha1 for f in entry.files() if f.role in roles).encode()).hexdigest()[:16]
    return disc, digest


def _released(name: str, layers: str | None, bn_images: str, seed: str) -> DCGANFeatures:
    arch = architecture(pretrained.entry(name).meta["architecture"])
    chosen = parse_layers(layers or "all", len(arch.discriminator))
    disc, digest = load_released_discriminator(name, chosen)
    return DCGANFeatures(name, disc, chosen, f"released:{name}", digest, bn_images, int(seed))


def released_imagenet(layers: str = "all", bn_images: str = "all", seed: str = "0") -> DCGANFeatures:
    """The paper's ImageNet-1k DCGAN discriminator (released weights), 28,672 features for all 6 layers."""
    return _released("dcgan-imagenet", layers, bn_images, seed)


def released_svhn(layers: str = "all", bn_images: str = "all", seed: str = "0") -> DCGANFeatures:
    """The paper's SVHN DCGAN discriminator (released weights), 7,168 features."""
    return _released("dcgan-svhn", layers, bn_images, seed)


def load_discriminator(run) -> tuple[Discriminator, dict]:
    """The discriminator of a training run (a run folder or its checkpoint file) and its config."""
    state = read_checkpoint(run, "DCGAN", "dcgan")
    if "D" not in state:
        raise BenchError(f"{run}: not a DCGAN checkpoint (an Exemplar-CNN run? use --features exemplar-cnn:{run})")
    disc = Discriminator(architecture(state["config"]["arch"]))
    disc.load_state_dict(state["D"])
    return disc, state["config"]


def trained_run(path: str, layers: str = "all", bn_images: str = "all", seed: str = "0") -> DCGANFeatures:
    """The discriminator of a `bench train dcgan` run (a run folder or its checkpoint file)."""
    disc, config = load_discriminator(path)
    chosen = parse_layers(layers, len(disc.arch.discriminator))
    digest = hashlib.sha1()
    for name, tensor in sorted(disc.state_dict().items()):
        if not name.startswith("norms.") or name.endswith(("weight", "bias")):
            digest.update(name.encode() + tensor.cpu().numpy().tobytes())
    return DCGANFeatures("dcgan", disc, chosen, f"trained:{config}", digest.hexdigest()[:16], bn_images, int(seed))


def project_weights(name: str, layers: str = "all", bn_images: str = "all", seed: str = "0") -> DCGANFeatures:
    """A discriminator trained by this project, by its name in pretrained/manifest.toml."""
    arrays, entry, sha1 = pretrained.project_arrays(name)
    disc = Discriminator(architecture(entry.meta["architecture"]))
    disc.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    chosen = parse_layers(layers, len(disc.arch.discriminator))
    return DCGANFeatures(name, disc, chosen, f"pretrained:{name}", sha1, bn_images, int(seed))


def random_weights(arch: str = "imagenet32", layers: str = "all", bn_images: str = "all",
                   seed: str = "0") -> DCGANFeatures:
    """Control: a DCGAN discriminator with seeded N(0, 0.02) weights, batchnorm estimated alike."""
    a = architecture(arch)
    chosen = parse_layers(layers, len(a.discriminator))
    disc = Discriminator(a)
    init_weights(disc, torch.Generator().manual_seed(int(seed)))
    return DCGANFeatures("dcgan-random", disc, chosen, f"random:N(0,0.02):seed={seed}", "", bn_images, int(seed))


def load_released_generator(name: str = "dcgan-svhn"):
    """The released generator (complete only for dcgan-svhn), kernels flipped like the discriminator's."""
    entry = pretrained.entry(name)
    roles = [f.role for f in entry.files(generator=True)]
    a = pretrained.load_arrays(entry, roles, generator=True)
    gen = Generator(architecture(entry.meta["architecture"]))
    if len(gen.deconvs) != 3 or "gen.wx" not in a:
        raise BenchError(f"{name}: only the SVHN generator layout (linear + 3 deconvolutions) is supported")
    with torch.no_grad():
        gen.fc.weight.copy_(torch.from_numpy(a["gen.w"]).T)
        gen.fc_norm.weight.copy_(torch.from_numpy(a["gen.g"]))
        gen.fc_norm.bias.copy_(torch.from_numpy(a["gen.b"]))
        for i, (w, g, b) in enumerate([("gen.w2", "gen.g2", "gen.b2"), ("gen.w3", "gen.g3", "gen.b3"), ("gen.wx", None, None)]):
            gen.deconvs[i].weight.copy_(theano_kernel(a[w]))  # deconv = gradient of a true convolution
            if g:
                gen.norms[i].weight.copy_(torch.from_numpy(a[g]))
                gen.norms[i].bias.copy_(torch.from_numpy(a[b]))
    return gen
