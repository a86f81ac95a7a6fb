"""DCGAN architectures shared by the released-weights encoders, the control and the trainer.

A discriminator is a stack of conv layers (batchnorm on all but the first, LeakyReLU 0.2)
and a linear real/fake output. Its features, as in the paper, are every conv layer's
activation max-pooled to a 4x4 grid, flattened and concatenated.

Batchnorm follows the original Theano code: no running statistics are stored; a layer
normalises with statistics passed in (re-estimated on a dataset) or, when none are set,
with the statistics of the current batch (as during training; summed over all ranks
under DDP). Variance is biased and epsilon is 1e-8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..core.errors import BenchError

BN_EPS = 1e-8
POOL = 4  # every layer's activation is max-pooled to POOL x POOL


@dataclass(frozen=True)
class ConvSpec:
    c_in: int
    c_out: int
    kernel: int
    stride: int
    batchnorm: bool


@dataclass(frozen=True)
class Architecture:
    name: str
    discriminator: tuple[ConvSpec, ...]
    z_dim: int
    generator_base: int  # channels of the generator's 4x4 input map

    def feature_width(self, layers) -> int:
        return sum(self.discriminator[i - 1].c_out * POOL * POOL for i in layers)


def _stack(kernel, stride_pattern, channels):
    specs, c_in = [], 3
    for i, (c_out, stride) in enumerate(zip(channels, stride_pattern)):
        specs.append(ConvSpec(c_in, c_out, kernel, stride, batchnorm=i > 0))
        c_in = c_out
    return tuple(specs)


ARCHITECTURES = {
    # the paper's ImageNet-1k 32x32 model (released weights: imagenet_gan_pretrain_128f_relu_lrelu_7l_3x3_256z)
    "imagenet32": Architecture("imagenet32", _stack(3, (1, 2, 1, 2, 1, 2), (128, 128, 256, 256, 512, 512)), 256, 512),
    # the paper's SVHN model (released weights: svhn_unsup_all_conv_dcgan_100z_gaussian_lr_0.0005_64mb)
    "svhn32": Architecture("svhn32", _stack(5, (2, 2, 2), (64, 128, 256)), 100, 256),
    # 64 base filters, 4x4 stride-2 convolutions: trains on a laptop CPU
    "small": Architecture("small", _stack(4, (2, 2, 2), (64, 128, 256)), 100, 256),
}


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise BenchError(f"unknown DCGAN architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def _padding(spec: ConvSpec) -> int:
    return (spec.kernel - 1) // 2 if spec.kernel % 2 else spec.kernel // 2 - 1


class BatchNorm(nn.Module):
    """Per-channel batchnorm with optional fixed statistics (``mean``/``var`` buffers)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))
        self.fixed = False  # True once statistics were estimated on a dataset

    def forward(self, x):
        if self.fixed:
            return F.batch_norm(x, self.mean, self.var, self.weight, self.bias, training=False, eps=BN_EPS)
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            # batch statistics, biased variance: PyTorch's fused kernel (no running averages kept)
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=BN_EPS)
        dims = [0, 2, 3] if x.ndim == 4 else [0]
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean, var = _synced_moments(x, dims)
        return (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + BN_EPS) * self.weight.view(shape) \
            + self.bias.view(shape)


def _synced_moments(x, dims):
    """Batch mean and biased variance over every rank's batch (differentiable all-reduce)."""
    from torch.distributed.nn.functional import all_reduce

    count = torch.tensor(float(x.numel() // x.shape[1]), device=x.device)
    moments = all_reduce(torch.stack([x.sum(dims), x.pow(2).sum(dims)]))
    n = all_reduce(count)
    mean = moments[0] / n
    return mean, moments[1] / n - mean.pow(2)


class Discriminator(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.convs = nn.ModuleList(nn.Conv2d(s.c_in, s.c_out, s.kernel, s.stride, _padding(s), bias=False)
                                   for s in arch.discriminator)
        self.norms = nn.ModuleList(BatchNorm(s.c_out) if s.batchnorm else nn.Identity() for s in arch.discriminator)
        last = arch.discriminator[-1].c_out
        self.out = nn.Linear(last * POOL * POOL, 1, bias=False)

    def layer(self, i: int, h):
        """Apply conv layer i (0-based) with its batchnorm and LeakyReLU."""
        return F.leaky_relu(self.norms[i](self.convs[i](h)), 0.2)

    def forward(self, x):
        h = x
        for i in range(len(self.convs)):
            h = self.layer(i, h)
        return self.out(h.flatten(1))  # logits (the sigmoid lives in the loss)

    def features(self, x, layers) -> torch.Tensor:
        """Chosen layers' activations (1-based), each max-pooled to 4x4, flattened, concatenated."""
        out, h = [], x
        for i in range(max(layers)):
            h = self.layer(i, h)
            if i + 1 in layers:
                out.append(F.adaptive_max_pool2d(h, POOL).flatten(1))
        return torch.cat(out, 1)


class Generator(nn.Module):
    """z -> linear (batchnorm, ReLU) -> base x 4 x 4 -> stride-2 deconvolutions -> tanh, 32x32."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        kernel = arch.discriminator[0].kernel
        base = arch.generator_base
        self.fc = nn.Linear(arch.z_dim, base * 16, bias=False)
        self.fc_norm = BatchNorm(base * 16)
        chans = [base, base // 2, base // 4, 3]
        pad = (kernel - 1) // 2
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(a, b, kernel, 2, pad, output_padding=1 if kernel % 2 else 0, bias=False)
            for a, b in zip(chans[:-1], chans[1:]))
        self.norms = nn.ModuleList(BatchNorm(c) for c in chans[1:-1])

    def forward(self, z):
        h = F.relu(self.fc_norm(self.fc(z))).view(len(z), self.arch.generator_base, 4, 4)
        for deconv, norm in zip(self.deconvs[:-1], self.norms):
            h = F.relu(norm(deconv(h)))
        return torch.tanh(self.deconvs[-1](h))


def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """The original code's initialisation: weights N(0, 0.02), batchnorm gains N(1, 0.02), shifts 0."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                m.weight.normal_(0.0, 0.02, generator=generator)
            elif isinstance(m, BatchNorm):
                m.weight.normal_(1.0, 0.02, generator=generator)
                m.bias.zero_()


@torch.no_grad()
def estimate_batchnorm(disc: Discriminator, batches, n_layers: int, one_pass: bool = False) -> None:
    """Re-estimate each batchnorm layer's mean and biased variance over all batches.

    ``batches`` is a callable returning a fresh iterator of input tensors. Layer by layer (the
    default), layer k's statistics are computed with layers 1..k-1 already normalised by their
    estimates: one pass per batchnorm layer. ``one_pass`` accumulates every layer's statistics
    in a single pass, deeper layers normalised meanwhile with each batch's own statistics (as
    the authors' SVHN analysis script did). Sums are over every torchrun rank's batches.
    """
    from ..core.distributed import all_reduce_sum

    norms = [k for k in range(n_layers) if isinstance(disc.norms[k], BatchNorm)]
    passes = [norms] if one_pass else [[k] for k in norms]
    for layers in passes:
        sums = {k: torch.zeros(3, disc.norms[k].mean.numel(), dtype=torch.float64, device=disc.norms[k].mean.device)
                for k in layers}
        desc = "batchnorm, one pass" if one_pass else f"batchnorm layer {layers[0] + 1}"
        for x in batches(desc):
            h = x
            for i in range(max(layers) + 1):
                a = disc.convs[i](h)
                if i in sums:
                    wide = a.double()
                    sums[i][0] += wide.sum((0, 2, 3))
                    sums[i][1] += wide.pow(2).sum((0, 2, 3))
                    sums[i][2] += a.shape[0] * a.shape[2] * a.shape[3]
                if i < max(layers):
                    h = F.leaky_relu(disc.norms[i](a), 0.2)  # estimated layers: their estimate; the rest: the batch's
        for k, total in sums.items():
            total = all_reduce_sum(total)
            mean = total[0] / total[2]
            norm = disc.norms[k]
            norm.mean.copy_(mean.float())
            norm.var.copy_((total[1] / total[2] - mean.pow(2)).clamp_min(0).float())
            norm.fixed = True
