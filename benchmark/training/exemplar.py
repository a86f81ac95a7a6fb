"""Exemplar-CNN (Dosovitskiy et al. 2014): the surrogate task and its trainer.

The surrogate task: N patches cut from unlabeled images, each a class of its own; every
draw of a patch passes through random transformations (``augment``), and a CNN learns to
tell the N classes apart with a softmax. Patches come from regions with strong gradients:
each chosen image's patch position is drawn with probability proportional to the summed
squared gradient inside the window.

The networks are in ``models.exemplar``.

The trainer keeps the DCGAN trainer's conventions: seeded CPU generators draw every class
and transformation, checkpoints (weights, optimiser, step, RNG states, config) are written
atomically every ``checkpoint_every`` steps, at the end and on Ctrl-C, ``--resume`` goes on
exactly, CUDA with bfloat16 autocast when present, and under ``torchrun`` each rank takes its
share of every global batch while DistributedDataParallel averages the gradients.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..core.devices import device_name
from ..core.errors import BenchError
from ..core.progress import bar
from ..data.images import IMAGE_SUFFIXES, decode_all
from ..models.exemplar import build_net
from . import augment
from .checkpoints import CHECKPOINT, checkpoint_errors, load_weights, resume_state, save_checkpoint
from .dcgan import LOG_EVERY

ACCURACY_WINDOW = 50  # logged batches in the surrogate accuracy reported and exported

# ---------------------------------------------------------------- the surrogate data

def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BenchError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def choose_corners(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One patch corner (x, y) per image, drawn in proportion to the window's squared gradient."""
    gray = images.float().mean(1, keepdim=True)
    energy = F.pad((gray[..., 1:, :] - gray[..., :-1, :]) ** 2, (0, 0, 0, 1)) + \
        F.pad((gray[..., :, 1:] - gray[..., :, :-1]) ** 2, (0, 1, 0, 0))
    window = F.avg_pool2d(energy, size, stride=1).flatten(1) + 1e-6
    pick = torch.multinomial(window, 1, generator=generator).squeeze(1)
    side = images.shape[-1] - size + 1
    return torch.stack([pick % side, pick // side], 1)


def exemplar_set(folder: Path, classes: int, patch: int, source_size: int, seed: int):
    """The N surrogate classes: source images (uint8 NCHW), patch corners and a digest of the choice."""
    files = image_files(folder)
    if len(files) < classes:
        raise BenchError(f"{folder}: {len(files)} images, fewer than --classes {classes}")
    generator = torch.Generator().manual_seed(seed)
    chosen = [files[i] for i in sorted(torch.randperm(len(files), generator=generator)[:classes].tolist())]
    images = torch.from_numpy(decode_all(chosen, "read exemplar images", source_size)).permute(0, 3, 1, 2).contiguous()
    corners = choose_corners(images, patch, generator)
    digest = hashlib.sha1("\n".join(str(f.relative_to(folder)) for f in chosen).encode()).hexdigest()[:16]
    return images, corners, digest


# ---------------------------------------------------------------- training

@dataclass
class ExemplarConfig:
    net: str = "64c5-64c5-128f"
    classes: int = 8000
    steps: int = 30000
    batch_size: int = 256  # global batch, split across ranks
    lr: float = 1e-3
    dropout: float = 0.5
    patch: int = 32
    source_size: int = 64  # images are read at this size (area filter when larger)
    seed: int = 0
    checkpoint_every: int = 2000
    data: str = ""


class ExemplarTrainer:
    def __init__(self, config: ExemplarConfig, folder: Path, out: Path, device: str = "cpu"):
        self.config, self.out, self.device = config, Path(out), torch.device(device)
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        if config.batch_size % self.world:
            raise BenchError(f"batch size {config.batch_size} does not split over {self.world} processes")
        images, corners, self.digest = exemplar_set(Path(folder), config.classes, config.patch,
                                                    config.source_size, config.seed)
        self.sources = images.to(self.device).float().div_(255)
        self.corners = corners.to(self.device)
        self.mean, self.axes = augment.principal_components(self.sources)
        self.net = build_net(config.net, config.classes, config.seed, config.dropout).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.rng = torch.Generator().manual_seed(config.seed + 1)  # classes and transformations
        torch.manual_seed(config.seed + 2)  # dropout draws from the global generator; checkpointed too
        self.step, self.wall_s = 0, 0.0
        self.recent: list[float] = []  # batch accuracies at the last logged steps
        self.model = self.net
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.model = DDP(self.net)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's share of the next global batch: transformed patches in [-1, 1] and their classes."""
        n, share = self.config.batch_size, self.config.batch_size // self.world
        labels = torch.randint(self.config.classes, (n,), generator=self.rng)
        params = augment.Params.draw(n, self.rng)
        mine = slice(self.rank * share, (self.rank + 1) * share)
        labels = labels[mine].to(self.device)
        params = augment.Params(**{k: v[mine].to(self.device) for k, v in vars(params).items()})
        x = augment.transform(self.sources[labels], self.corners[labels], self.config.patch, params,
                              self.mean, self.axes)
        return x * 2 - 1, labels

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One update; loss and batch accuracy stay on the device."""
        x, labels = self.batch()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            logits = self.model(x).float()
        loss = F.cross_entropy(logits, labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach(), (logits.argmax(1) == labels).float().mean()

    def fit(self, max_steps: int | None = None, log=print) -> dict:
        """Train to ``config.steps`` (``max_steps`` stops sooner, for tests); Ctrl-C checkpoints first."""
        end = self.config.steps if max_steps is None else min(self.config.steps, self.step + max_steps)
        stats, start, first = {}, time.perf_counter(), self.step
        progress = bar(range(self.step, end), desc="exemplar-cnn", unit="step", disable=self.rank != 0, leave=True)
        try:
            for _ in progress:
                tick = time.perf_counter()
                loss, acc = self.train_step()
                self.step += 1
                self.wall_s += time.perf_counter() - tick
                stats = {"loss": loss, "acc": acc}
                if self.step % LOG_EVERY == 0:
                    rate = (self.step - first) * self.config.batch_size / (time.perf_counter() - start)
                    self.recent = (self.recent + [float(acc)])[-ACCURACY_WINDOW:]
                    progress.set_postfix(loss=f"{loss:.3f}", acc=f"{self.surrogate_acc:.3f}", img_s=f"{rate:.0f}")
                if self.step % self.config.checkpoint_every == 0:
                    self.save()
        except KeyboardInterrupt:
            self.save()
            log(f"interrupted at step {self.step}: checkpoint written to {self.out / CHECKPOINT}; "
                "continue with --resume")
            raise
        self.save()
        return {k: float(v) for k, v in stats.items()}

    @property
    def surrogate_acc(self) -> float:
        """Training accuracy on the surrogate task, the mean of the last logged batches."""
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def state(self) -> dict:
        return {"config": asdict(self.config), "net": self.net.state_dict(), "opt": self.opt.state_dict(),
                "step": self.step, "rng": self.rng.get_state(), "torch_rng": torch.random.get_rng_state(),
                "exemplars": self.digest, "wall_s": self.wall_s, "device": device_name(self.device),
                "recent": torch.tensor(self.recent, dtype=torch.float64)}

    def save(self) -> Path | None:
        return save_checkpoint(self.state(), self.out, asdict(self.config)) if self.rank == 0 else None

    def load(self, path: Path) -> None:
        state = resume_state(path, "Exemplar-CNN", "exemplar-cnn", "net",
                             {"config": asdict(self.config), "exemplars": self.digest}, self.device)
        load_weights(self.net, state["net"], path)
        load_weights(self.opt, state["opt"], path)
        with checkpoint_errors(path):
            self.step, self.wall_s = state["step"], state["wall_s"]
            self.recent = state["recent"].tolist() if "recent" in state else []
            self.rng.set_state(state["rng"])
            torch.random.set_rng_state(state["torch_rng"])
