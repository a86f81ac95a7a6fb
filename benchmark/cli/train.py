"""``bench train``: train models that become encoders (DCGAN, Exemplar-CNN); time a training step."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.errors import BenchError
from ..models.dcgan import ARCHITECTURES
from ..models.exemplar import NETWORKS
from . import options
from .options import cli, log

resume = click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.pt, exactly "
                                                     "where it stopped (same options and data).")
train_data = click.option("--data", "dataset", required=True,
                          help="Unlabeled training images: a dataset spec such as folder:PATH (any image-folder tree; "
                               "a plain folder path works too) or cifar10; labels are ignored.")


def _dataset_spec(dataset: str) -> str:
    """A bare folder path means folder:PATH."""
    return dataset if ":" in dataset or not Path(dataset).expanduser().is_dir() else f"folder:{dataset}"


@cli.group()
def train():
    """Train models that become encoders (DCGAN, Exemplar-CNN); time a training step."""


@train.command("dcgan")
@train_data
@click.option("--arch", type=click.Choice(tuple(ARCHITECTURES)), default="small", show_default=True,
              help="small trains on a CPU; svhn32 and imagenet32 are the paper's discriminators.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoint, samples.")
@click.option("--epochs", default=25, show_default=True, type=click.IntRange(min=1), help="Passes over the images.")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1),
              help="Global batch (split across torchrun ranks).")
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Adam learning rate.")
@click.option("--beta1", default=0.5, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Adam's first-moment decay.")
@click.option("--z", "z_dist", type=click.Choice(["uniform", "gaussian"]), default="uniform", show_default=True,
              help="Distribution of the generator's input.")
@options.seed("Seeds the weights, the data order and every z.")
@resume
@options.device
@click.option("--limit", type=click.IntRange(min=1), help="Train on the first N images only.")
@options.data_dir
@options.cache_dir
def train_dcgan(dataset, arch, out, epochs, batch_size, lr, beta1, z_dist, seed, resume, device, limit, data_dir,
                cache_dir):
    """Train a DCGAN with the paper's recipe; `--features dcgan:RUN_DIR` then evaluates its discriminator."""
    from ..core.devices import init_distributed, resolve_device
    from ..data import datasets
    from ..data.cache import default_root
    from ..training.checkpoints import checked_checkpoint
    from ..training.dcgan import TrainConfig, Trainer

    dataset = _dataset_spec(dataset)
    checkpoint = checked_checkpoint(out, resume)
    device = init_distributed(resolve_device(device))
    images = datasets.find(dataset, data_dir, default_root(cache_dir)).splits["train"](warn=log).images
    images = images[:limit] if limit else images
    config = TrainConfig(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, beta1=beta1, z=z_dist,
                         seed=seed, data=dataset)
    trainer = Trainer(config, images, Path(out), device)
    if resume:
        trainer.load(checkpoint)
    log(f"training {arch} DCGAN on {len(images)} images of {dataset} on {device}")
    trainer.fit(log=log)
    click.echo(f"trained {trainer.epoch} epochs; checkpoint {checkpoint}; evaluate with --features dcgan:{out}")


@train.command("throughput")
@click.option("--arch", "archs", type=click.Choice(tuple(ARCHITECTURES)), multiple=True,
              default=tuple(ARCHITECTURES), show_default=True, help="Architectures to time (repeatable).")
@click.option("--steps", default=20, show_default=True, type=click.IntRange(min=1),
              help="Timed steps of 128 images, after 3 warm-up steps.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1),
              help="Alternating rounds of trainer and plain loop; each rate is the best of its rounds.")
@options.device
@options.beside_results("train-throughput.csv", "CSV the rows are appended to.")
def train_throughput(archs, steps, rounds, device, out):
    """Images per second of a DCGAN training step: our trainer against a plain PyTorch loop."""
    from ..core.devices import resolve_device
    from ..training.throughput import record

    rows = record(archs, resolve_device(device), steps, Path(out), rounds, log=log)
    click.echo(f"appended {len(rows)} rows to {out}")


@train.command("exemplar-cnn")
@train_data
@click.option("--net", type=click.Choice(NETWORKS), default=NETWORKS[0], show_default=True,
              help="64c5-64c5-128f trains on a CPU; 64c5-128c5-256c5-512f is the paper's network.")
@click.option("--classes", default=8000, show_default=True, type=click.IntRange(min=2),
              help="Surrogate classes: images drawn from --data, one patch each.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoint, config.")
@click.option("--steps", default=30_000, show_default=True, type=click.IntRange(min=1), help="Optimiser steps.")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Global batch (split across torchrun ranks).")
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Adam learning rate.")
@click.option("--checkpoint-every", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Steps between checkpoints.")
@options.seed("Seeds the surrogate classes, the transformations and the weights.")
@resume
@options.device
def train_exemplar(dataset, net, classes, out, steps, batch_size, lr, checkpoint_every, seed, resume, device):
    """Train an Exemplar-CNN on patches of unlabeled images; `--features exemplar-cnn:RUN_DIR` then evaluates it."""
    from ..core.devices import init_distributed, resolve_device
    from ..training.checkpoints import checked_checkpoint
    from ..training.exemplar import ExemplarConfig, ExemplarTrainer

    spec = _dataset_spec(dataset)
    folder = Path(spec.removeprefix("folder:")).expanduser()
    if not spec.startswith("folder:") or not folder.is_dir():
        raise BenchError(f"--data {dataset}: not a folder of images; give folder:PATH (an unpacked Tiny-ImageNet, "
                         "say): Exemplar-CNN cuts its patches from the full-size images")
    checkpoint = checked_checkpoint(out, resume)
    device = init_distributed(resolve_device(device))
    config = ExemplarConfig(net=net, classes=classes, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                            checkpoint_every=checkpoint_every, data=str(folder))
    trainer = ExemplarTrainer(config, folder, Path(out), device)
    if resume:
        trainer.load(checkpoint)
    log(f"training exemplar-cnn {net} on {classes} surrogate classes from {folder} on {device}")
    trainer.fit(log=log)
    click.echo(f"trained {trainer.step} steps; checkpoint {checkpoint}; evaluate with --features exemplar-cnn:{out}")
