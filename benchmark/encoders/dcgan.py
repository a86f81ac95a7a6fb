"""DCGAN discriminator features: the paper's released models and a random-weights control.

Every chosen conv layer's activation is max-pooled to 4x4 and the blocks are concatenated,
as in the paper. The released models store no batchnorm statistics, so they are
re-estimated on the training split being evaluated (the encoder's fit).

Speed (measured on two AVX512-BF16 cores, 60,000 CIFAR-10 images through layers 1-4): the
convolutions run in bfloat16 where it is native (``precision=auto``), 2.4x faster than
float32, with batchnorm statistics summed in float64; images go through in micro-batches of
``MICRO_BATCH`` so that activations stay below glibc's mmap threshold and are reused rather
than mapped and zeroed afresh each batch.

The batchnorm estimate's default, a seeded sample of 10,000 training images estimated layer
by layer, was chosen by measurement (``bench record extraction-variants``, its table in
BENCHMARKS.md): on CIFAR-10 ``layers=1-4`` it scores as all images do, for a fraction of the work.
``bn_images=all`` gives the estimate the paper's code used.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..core.devices import bfloat16_is_fast
from ..core.distributed import Shard
from ..core.errors import BenchError
from ..core.progress import chunks
from ..models.dcgan import ARCHITECTURES, Discriminator, Generator, architecture, estimate_batchnorm, init_weights
from ..training.checkpoints import load_weights, read_checkpoint
from . import pretrained
from .base import Encoder, to_unit_range
from .options import Option, declare

BN_IMAGES = 10_000  # the estimate's default sample; see the module docstring for the measurement behind it
MICRO_BATCH = 64  # images per forward pass on CPU: 64 x 128 x 32 x 32 bfloat16 activations are 16 MB


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


def _layers_check(text: str) -> str:
    try:
        parse_layers(text, 99)
    except BenchError as exc:
        return str(exc).partition(": ")[2]  # the depth itself is checked against the discriminator
    return ""


COMMON = (
    Option("layers", "text", "all", "conv layers whose pooled activations are features: 1-4, 1,3,5 or all",
           check=_layers_check),
    Option("bn_images", "count-or-all", BN_IMAGES, "training images for the batchnorm estimate: a seeded sample "
           "of this many, or all", min=1),
    Option("bn", "choice", "layerwise", "layerwise: layer k's statistics with layers 1..k-1 normalised by their "
           "estimates (one pass per layer); onepass: all layers in one pass, earlier ones normalised per batch",
           choices=("layerwise", "onepass")),
    Option("precision", "choice", "auto", "convolutions in float32 or bfloat16; auto: bfloat16 where native",
           choices=("auto", "float32", "bfloat16")),
    Option("seed", "int", 0, "seeds the batchnorm sample (and random weights)", min=0),
)


class DCGANFeatures(Encoder):
    """Discriminator features: each chosen conv layer max-pooled to 4x4, concatenated."""

    version = 2  # 2: bfloat16 convolutions by default, batchnorm modes
    needs_fit = True
    fit_distributed = True  # batchnorm sums are added over torchrun ranks
    probe_scale = "none"  # the original code fed raw features to LinearSVC; standardising cost a point here

    def __init__(self, name: str, disc: Discriminator, layers: tuple[int, ...], source: str,
                 weights_digest: str, bn_images=BN_IMAGES, seed: int = 0, bn: str = "layerwise",
                 precision: str = "auto"):
        super().__init__()
        self.name, self.spec = name, name
        self.disc, self.chosen, self.source = disc.eval(), layers, source
        self._digest, self.bn_images, self.seed, self.bn = weights_digest, bn_images, seed, bn
        self.precision = precision
        self.to(self.device)  # convolutions in the precision of the default device until moved

    @property
    def dtype(self) -> torch.dtype:
        native = self.precision == "auto" and bfloat16_is_fast(self.device)
        return torch.bfloat16 if self.precision == "bfloat16" or native else torch.float32

    def config(self) -> dict:
        return {"arch": self.disc.arch.name, "layers": list(self.chosen), "source": self.source,
                "bn_images": self.bn_images, "bn": self.bn, "seed": self.seed, "preprocessing": "x/127.5-1",
                "precision": str(self.dtype).removeprefix("torch.")}

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
        # images arrive NHWC, so inputs are channels-last already; matching weights run ~1.4x faster on CPU.
        # Convolutions take the encoder's precision; batchnorm keeps float32 parameters and statistics.
        self.disc.to(self.device, memory_format=torch.channels_last)
        for conv in self.disc.convs:
            conv.to(self.dtype)
        return self

    def _inputs(self, images: np.ndarray, desc: str | None = None):
        """Micro-batches of images in [-1, 1], channels-last, in the convolutions' precision."""
        step = MICRO_BATCH if self.device.type == "cpu" else 256
        for part in chunks(len(images), step, desc, unit="img"):
            yield to_unit_range(images[part], self.device).to(self.dtype)

    def fit(self, images: np.ndarray, batch_size: int = 256) -> "DCGANFeatures":
        """Re-estimate batchnorm statistics on (a seeded sample of) unlabeled training images.

        Under torchrun each rank takes its share of the images and the sums are added over ranks.
        """
        if self.bn_images != "all" and int(self.bn_images) < len(images):
            rng = np.random.default_rng(self.seed)
            images = images[np.sort(rng.choice(len(images), int(self.bn_images), replace=False))]
        images = images[Shard.current().rows(len(images))]
        estimate_batchnorm(self.disc, lambda desc: self._inputs(images, desc), max(self.chosen),
                           one_pass=self.bn == "onepass")
        return self

    def fit_sample(self, n_train: int) -> int:
        return n_train if self.bn_images == "all" else min(n_train, int(self.bn_images))

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
        return torch.cat([self.disc.features(x, self.chosen).float() for x in self._inputs(images)]).cpu().numpy()


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


def _released(name: str, layers: str, **kw) -> DCGANFeatures:
    arch = architecture(pretrained.entry(name).meta["architecture"])
    chosen = parse_layers(layers, len(arch.discriminator))
    disc, digest = load_released_discriminator(name, chosen)
    return DCGANFeatures(name, disc, chosen, f"released:{name}", digest, **kw)


@declare(*COMMON)
def released_imagenet(layers: str = "all", **kw) -> DCGANFeatures:
    """The paper's ImageNet-1k DCGAN discriminator (released weights), 28,672 features for all 6 layers."""
    return _released("dcgan-imagenet", layers, **kw)


@declare(*COMMON)
def released_svhn(layers: str = "all", **kw) -> DCGANFeatures:
    """The paper's SVHN DCGAN discriminator (released weights), 7,168 features."""
    return _released("dcgan-svhn", layers, **kw)


def load_discriminator(run) -> tuple[Discriminator, dict]:
    """The discriminator of a training run (a run folder or its checkpoint file) and its config."""
    state = read_checkpoint(run, "DCGAN", "dcgan")
    if "D" not in state:
        raise BenchError(f"{run}: not a DCGAN checkpoint (an Exemplar-CNN run? use --features exemplar-cnn:{run})")
    disc = Discriminator(architecture(state["config"]["arch"]))
    load_weights(disc, state["D"], run)
    return disc, state["config"]


@declare(Option("path", "text", "", "a `bench train dcgan` run folder or its checkpoint file"), *COMMON)
def trained_run(path: str = "", layers: str = "all", **kw) -> DCGANFeatures:
    """The discriminator of a `bench train dcgan` run (a run folder or its checkpoint file)."""
    if not path:
        raise BenchError("dcgan: give a run folder, dcgan:RUN_DIR (a `bench train dcgan --out RUN_DIR` run)")
    disc, config = load_discriminator(path)
    chosen = parse_layers(layers, len(disc.arch.discriminator))
    digest = hashlib.sha1()
    for name, tensor in sorted(disc.state_dict().items()):
        if not name.startswith("norms.") or name.endswith(("weight", "bias")):
            digest.update(name.encode() + tensor.cpu().numpy().tobytes())
    return DCGANFeatures("dcgan", disc, chosen, f"trained:{config}", digest.hexdigest()[:16], **kw)


@declare(*COMMON)
def project_weights(name: str, layers: str = "all", **kw) -> DCGANFeatures:
    """A discriminator trained by this project, by its name in pretrained/manifest.toml."""
    arrays, entry, sha1 = pretrained.project_arrays(name)
    disc = Discriminator(architecture(entry.meta["architecture"]))
    load_weights(disc, arrays, entry.folder)
    chosen = parse_layers(layers, len(disc.arch.discriminator))
    return DCGANFeatures(name, disc, chosen, f"pretrained:{name}", sha1, **kw)


@declare(Option("arch", "choice", "imagenet32", "the discriminator's architecture", choices=tuple(ARCHITECTURES)),
         *COMMON)
def random_weights(arch: str = "imagenet32", layers: str = "all", seed: int = 0, **kw) -> DCGANFeatures:
    """Control: a DCGAN discriminator with seeded N(0, 0.02) weights, batchnorm estimated alike."""
    a = architecture(arch)
    chosen = parse_layers(layers, len(a.discriminator))
    disc = Discriminator(a)
    init_weights(disc, torch.Generator().manual_seed(seed))
    return DCGANFeatures("dcgan-random", disc, chosen, f"random:N(0,0.02):seed={seed}", "", seed=seed, **kw)


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
