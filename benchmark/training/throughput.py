"""Training throughput: our DCGAN trainer's step against a plain PyTorch loop, in images per second.

The plain loop is the textbook one (torch.nn layers, nn.BatchNorm, data already on the
device, no progress bar or checkpoint logic) built from the same architecture table, so the
comparison shows what the trainer's conveniences cost. Both run the paper's step: one D
update on a real and a fake batch, one G update.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.devices import device_name
from ..core.files import append_csv, check_csv
from ..models.dcgan import _padding, architecture
from .dcgan import TrainConfig, Trainer


COLUMNS = ("time", "arch", "device", "batch", "steps", "trainer_img_s", "plain_img_s")


def plain_models(arch_name: str) -> tuple[nn.Module, nn.Module]:
    arch = architecture(arch_name)
    base, kernel = arch.generator_base, arch.discriminator[0].kernel
    chans = [base, base // 2, base // 4, 3]
    g = [nn.Linear(arch.z_dim, base * 16, bias=False), nn.BatchNorm1d(base * 16), nn.ReLU(),
         nn.Unflatten(1, (base, 4, 4))]
    for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
        g.append(nn.ConvTranspose2d(a, b, kernel, 2, (kernel - 1) // 2, output_padding=kernel % 2, bias=False))
        g += [nn.BatchNorm2d(b), nn.ReLU()] if i < 2 else [nn.Tanh()]
    d = []
    for s in arch.discriminator:
        d.append(nn.Conv2d(s.c_in, s.c_out, s.kernel, s.stride, _padding(s), bias=False))
        d += [nn.BatchNorm2d(s.c_out)] if s.batchnorm else []
        d.append(nn.LeakyReLU(0.2))
    d += [nn.Flatten(), nn.Linear(arch.discriminator[-1].c_out * 16, 1, bias=False)]
    return nn.Sequential(*g), nn.Sequential(*d)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_rate(arch_name: str, device: str, steps: int, warmup: int, batch: int = 128) -> float:
    dev = torch.device(device)
    G, D = (m.to(dev) for m in plain_models(arch_name))
    z_dim = architecture(arch_name).z_dim
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, 3, 32, 32, device=dev) * 2 - 1
    ones, zeros = torch.ones(batch, 1, device=dev), torch.zeros(batch, 1, device=dev)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")

    def step():
        with amp:
            fake = G(torch.rand(batch, z_dim, device=dev) * 2 - 1)
            loss_d = F.binary_cross_entropy_with_logits(D(real).float(), ones) + \
                F.binary_cross_entropy_with_logits(D(fake.detach()).float(), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        with amp:
            loss_g = F.binary_cross_entropy_with_logits(D(fake).float(), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    def run(n):
        for _ in range(n):
            step()

    return _timed(run, steps, warmup, batch, dev)


def trainer_rate(arch_name: str, device: str, steps: int, warmup: int, batch: int = 128) -> float:
    """The whole training loop (data order, z draws, progress bar), stopped before any epoch ends."""
    images = np.random.default_rng(0).integers(0, 256, ((steps + warmup + 1) * batch, 32, 32, 3), dtype=np.uint8)
    scratch = Path(tempfile.gettempdir()) / "bench-throughput"  # written only if interrupted
    trainer = Trainer(TrainConfig(arch=arch_name, batch_size=batch), images, scratch, device=device)
    return _timed(lambda n: trainer.fit(max_steps=n), steps, warmup, batch, trainer.device)


def _timed(run, steps: int, warmup: int, batch: int, device: torch.device) -> float:
    run(warmup)
    _sync(device)
    start = time.perf_counter()
    run(steps)
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def measure(arch_name: str, device: str, steps: int, warmup: int = 3, rounds: int = 3) -> dict:
    """Best of ``rounds`` alternating measurements of each, so a noisy neighbour hits both alike."""
    trainer, plain = [], []
    for _ in range(rounds):
        trainer.append(trainer_rate(arch_name, device, steps, warmup))
        plain.append(plain_rate(arch_name, device, steps, warmup))
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "arch": arch_name, "device": device_name(device),
            "batch": 128, "steps": steps, "trainer_img_s": round(max(trainer), 1),
            "plain_img_s": round(max(plain), 1)}


def record(archs, device: str, steps: int, out: Path, rounds: int = 3, log=print) -> list[dict]:
    """Measure each architecture and append its row to ``out`` (results/train-throughput.csv)."""
    check_csv(out, COLUMNS, "throughput")
    rows = []
    for arch in archs:
        row = measure(arch, device, steps, rounds=rounds)
        log(f"{arch} on {row['device']}: trainer {row['trainer_img_s']} img/s, plain loop {row['plain_img_s']} img/s")
        append_csv(out, [row], COLUMNS, "throughput", warn=log)
        rows.append(row)
    return rows
