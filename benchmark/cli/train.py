"""``bench train``: train models that become encoders (DCGAN, Exemplar-CNN); time a training step."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.errors import BenchError
from ..models.exemplar import NETWORKS
from .options import cli, log


@cli.group()
def train():
    """Train models that become encoders (DCGAN, Exemplar-CNN); time a training step."""


@train.command("dcgan")
@click.option("--data", "dataset", required=True, help="Any dataset spec; labels are ignored (folder:PATH too).")
@click.option("--arch", type=click.Choice(["small", "svhn32", "imagenet32"]), default="small", show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoint, samples.")
@click.option("--epochs", default=25, show_default=True)
@click.option("--batch-size", default=128, show_default=True, help="Global batch (split across torchrun ranks).")
@click.option("--lr", default=2e-4, show_default=True)
@click.option("--beta1", default=0.5, show_default=True)
@click.option("--z", "z_dist", type=click.Choice(["uniform", "gaussian"]), default="uniform", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/checkpoint.pt exactly where it stopped.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--limit", type=int, help="Train on the first N images only.")
@click.option("--data-dir", envvar="BENCH_DATA_DIR", type=click.Path(file_okay=False))
@click.option("--cache-dir", envvar="BENCH_CACHE_DIR", type=click.Path(file_okay=False))
def train_dcgan(dataset, arch, out, epochs, batch_size, lr, beta1, z_dist, seed, resume, device, limit, data_dir,
                cache_dir):
    """Train a DCGAN with the paper's recipe; `--features dcgan:RUN_DIR` then evaluates its discriminator."""
    from ..core.devices import init_distributed, resolve_device
    from ..data import datasets
    from ..data.cache import default_root
    from ..training.checkpoints import checked_checkpoint
    from ..training.dcgan import TrainConfig, Trainer

    device = init_distributed(resolve_device(device))
    images = datasets.find(dataset, data_dir, default_root(cache_dir)).splits["train"]().images
    images = images[:limit] if limit else images
    config = TrainConfig(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, beta1=beta1, z=z_dist,
                         seed=seed, data=dataset)
    checkpoint = checked_checkpoint(out, resume)
    trainer = Trainer(config, images, Path(out), device)
    if resume:
        trainer.load(checkpoint)
    log(f"training {arch} DCGAN on {len(images)} images of {dataset} on {device}")
    trainer.fit(log=log)
    click.echo(f"trained {trainer.epoch} epochs; checkpoint {checkpoint}; evaluate with --features dcgan:{out}")


@train.command("throughput")
@click.option("--arch", "archs", type=click.Choice(["small", "svhn32", "imagenet32"]), multiple=True,
              default=("small", "svhn32", "imagenet32"), show_default=True)
@click.option("--steps", default=20, show_default=True,
              help="Timed steps of 128 images, after 3 warm-up steps; best of 3 alternating rounds each.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--out", default=str(Path("results") / "train-throughput.csv"), show_default=True,
              type=click.Path(dir_okay=False), help="CSV the rows are appended to.")
def train_throughput(archs, steps, device, out):
    """Images per second of a DCGAN training step: our trainer against a plain PyTorch loop."""
    from ..core.devices import resolve_device
    from ..training.throughput import record

    rows = record(archs, resolve_device(device), steps, Path(out), log=log)
    click.echo(f"appended {len(rows)} rows to {out}")


@train.command("exemplar-cnn")
@click.option("--data", "folder", required=True, help="Folder of unlabeled images (any layout), e.g. Tiny-ImageNet.")
@click.option("--net", type=click.Choice(NETWORKS), default=NETWORKS[0], show_default=True)
@click.option("--classes", default=8000, show_default=True, help="Surrogate classes: patches, one per image.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoint, config.")
@click.option("--steps", default=30_000, show_default=True)
@click.option("--batch-size", default=256, show_default=True, help="Global batch (split across torchrun ranks).")
@click.option("--lr", default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--checkpoint-every", default=2000, show_default=True, help="Steps between checkpoints.")
@click.option("--seed", default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/checkpoint.pt exactly where it stopped.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def train_exemplar(folder, net, classes, out, steps, batch_size, lr, checkpoint_every, seed, resume, device):
    """Train an Exemplar-CNN on patches of unlabeled images; `--features exemplar-cnn:RUN_DIR` then evaluates it."""
    from ..core.devices import init_distributed, resolve_device
    from ..training.checkpoints import checked_checkpoint
    from ..training.exemplar import ExemplarConfig, ExemplarTrainer

    folder = Path(folder.removeprefix("folder:"))
    if not folder.is_dir():
        raise BenchError(f"--data {folder}: not a folder; give a folder of images, e.g. an unpacked Tiny-ImageNet")
    device = init_distributed(resolve_device(device))
    config = ExemplarConfig(net=net, classes=classes, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                            checkpoint_every=checkpoint_every, data=str(folder))
    checkpoint = checked_checkpoint(out, resume)
    trainer = ExemplarTrainer(config, folder, Path(out), device)
    if resume:
        trainer.load(checkpoint)
    log(f"training exemplar-cnn {net} on {classes} surrogate classes from {folder} on {device}")
    trainer.fit(log=log)
    click.echo(f"trained {trainer.step} steps; checkpoint {checkpoint}; evaluate with --features exemplar-cnn:{out}")
