"""The compact DCGAN trainer: the paper's recipe, checkpoints that resume exactly, and DDP.

Recipe (defaults): Adam lr 2e-4, beta1 0.5, batch 128, weights N(0, 0.02), batchnorm in G
and D except G's output and D's input, ReLU in G with tanh output, LeakyReLU 0.2 in D,
uniform z in [-1, 1] (or Gaussian). D sees the real and the generated batch separately, so
each has its own batch statistics, as in the original code.

Reproducibility: one seeded torch.Generator draws the data order and every z; its state,
the models, the optimisers and the position in the epoch go into each checkpoint, so a
resumed CPU run continues exactly where the original stopped. Checkpoints are written
atomically at the end of every epoch and when the run is interrupted (Ctrl-C).

Distributed: under ``torchrun`` each rank takes its share of every global batch (the same
data order on every rank), batchnorm statistics are summed across ranks, and gradients are
averaged by DistributedDataParallel, so N processes follow the single-process run; rank 0
writes checkpoints and sample grids.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..core.devices import device_name
from ..core.errors import BenchError
from ..core.progress import bar
from ..models.dcgan import Discriminator, Generator, architecture, init_weights
from . import samples
from .checkpoints import CHECKPOINT, checkpoint_errors, load_weights, resume_state, save_checkpoint
LOG_EVERY = 10  # steps between progress-bar updates: each reads the losses back from the device


@dataclass
class TrainConfig:
    arch: str = "small"
    epochs: int = 25
    batch_size: int = 128  # global batch, split across ranks
    lr: float = 2e-4
    beta1: float = 0.5
    z: str = "uniform"  # or "gaussian"
    seed: int = 0
    data: str = ""  # the dataset spec, recorded for the manifest


class Trainer:
    def __init__(self, config: TrainConfig, images: np.ndarray, out: Path, device: str = "cpu"):
        self.config, self.images, self.out = config, images, Path(out)
        self.device = torch.device(device)
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        if config.batch_size % self.world:
            raise BenchError(f"batch size {config.batch_size} does not split over {self.world} processes")
        arch = architecture(config.arch)
        init = torch.Generator().manual_seed(config.seed)
        self.G, self.D = Generator(arch), Discriminator(arch)
        init_weights(self.G, init)
        init_weights(self.D, init)
        self.G.to(self.device)
        self.D.to(self.device)
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)
        self.rng = torch.Generator().manual_seed(config.seed + 1)  # data order and every z
        self.fixed_z = self.sample_z(64, torch.Generator().manual_seed(config.seed + 2))
        self.epoch, self.step, self.order = 0, 0, None
        self.wall_s = 0.0  # training time over all sessions of this run, for the manifest
        self.g_step, self.d_step = self.G, self.D
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.g_step, self.d_step = DDP(self.G, broadcast_buffers=False), DDP(self.D, broadcast_buffers=False)

    # ------------------------------------------------------------------ pieces
    def sample_z(self, n: int, generator: torch.Generator) -> torch.Tensor:
        dim = self.G.arch.z_dim
        if self.config.z == "gaussian":
            return torch.randn(n, dim, generator=generator)
        return torch.rand(n, dim, generator=generator) * 2 - 1

    def batches_per_epoch(self) -> int:
        return len(self.images) // self.config.batch_size

    def local_batch(self, step: int) -> torch.Tensor:
        size = self.config.batch_size
        index = self.order[step * size:(step + 1) * size]
        share = size // self.world
        local = index[self.rank * share:(self.rank + 1) * share].numpy()
        x = torch.from_numpy(self.images[np.sort(local)]).to(self.device)
        return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)

    def autocast(self):
        """bfloat16 mixed precision on CUDA; full float32 on CPU (bit-for-bit resumable)."""
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def train_step(self, real: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One D and one G update; the losses stay on the device (reading them waits for the GPU)."""
        with self.autocast():
            fake = self.g_step(z)
            logits_real, logits_fake = self.d_step(real), self.d_step(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(logits_real.float(), torch.ones_like(logits_real.float())) + \
                F.binary_cross_entropy_with_logits(logits_fake.float(), torch.zeros_like(logits_fake.float()))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        with self.autocast():
            logits = self.d_step(fake).float()
            loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return loss_d.detach(), loss_g.detach()

    # ------------------------------------------------------------------ loop
    def fit(self, epochs: int | None = None, max_steps: int | None = None, log=print) -> dict:
        """Train up to ``epochs`` (default: the config's); ``max_steps`` stops early (for tests)."""
        epochs = epochs or self.config.epochs
        done = 0
        try:
            while self.epoch < epochs:
                if self.order is None:
                    self.order = torch.randperm(len(self.images), generator=self.rng)
                steps = self.batches_per_epoch()
                progress = bar(range(self.step, steps), desc=f"epoch {self.epoch + 1}/{epochs}", unit="batch",
                               disable=self.rank != 0, leave=True)
                start, first = time.perf_counter(), self.step
                tick = start
                for step in progress:
                    z = self.sample_z(self.config.batch_size, self.rng)
                    share = self.config.batch_size // self.world
                    z = z[self.rank * share:(self.rank + 1) * share].to(self.device)
                    loss_d, loss_g = self.train_step(self.local_batch(step), z)
                    self.step = step + 1
                    self.wall_s += time.perf_counter() - tick
                    tick = time.perf_counter()
                    done += 1
                    if self.step % LOG_EVERY == 0:
                        rate = (self.step - first) * self.config.batch_size / (time.perf_counter() - start)
                        progress.set_postfix(D=f"{loss_d:.3f}", G=f"{loss_g:.3f}", img_s=f"{rate:.0f}")
                    if max_steps is not None and done >= max_steps:
                        return {"loss_d": float(loss_d), "loss_g": float(loss_g)}
                self.epoch, self.step, self.order = self.epoch + 1, 0, None
                self.save()
                self.save_samples()
        except KeyboardInterrupt:
            self.save()
            log(f"interrupted: checkpoint written to {self.out / CHECKPOINT}; continue with --resume")
            raise
        return {}

    # ------------------------------------------------------------------ files
    def state(self) -> dict:
        return {"config": asdict(self.config), "G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "epoch": self.epoch,
                "step": self.step, "order": self.order, "rng": self.rng.get_state(),
                "fixed_z": self.fixed_z, "wall_s": self.wall_s, "device": device_name(self.device),
                "images": len(self.images)}

    def save(self) -> Path | None:
        return save_checkpoint(self.state(), self.out, asdict(self.config)) if self.rank == 0 else None

    def load(self, path: Path) -> None:
        state = resume_state(path, "DCGAN", "dcgan", "D", {"config": asdict(self.config)}, self.device)
        for target, key in ((self.G, "G"), (self.D, "D"), (self.opt_g, "opt_g"), (self.opt_d, "opt_d")):
            load_weights(target, state[key], path)
        with checkpoint_errors(path):
            self.epoch, self.step, self.order = state["epoch"], state["step"], state["order"]
            self.rng.set_state(state["rng"])
            self.fixed_z = state["fixed_z"]
            self.wall_s = state["wall_s"]

    def save_samples(self) -> Path | None:
        if self.rank != 0:
            return None
        self.G.eval()
        with torch.no_grad():
            images = samples.to_uint8(self.G(self.fixed_z.to(self.device)))
        self.G.train()
        grid = samples.save_grid(images, self.out / "samples" / f"epoch-{self.epoch:03d}.png")
        samples.save_grid(images, self.out / "samples.png")
        return grid
