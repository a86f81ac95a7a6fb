"""The ``bench`` command line."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from . import results
from .errors import BenchError
from .exemplar import NETWORKS
from .probe import SOLVERS, ProbeConfig


def _log(message: str) -> None:
    click.echo(message, err=True)


def data_options(f):
    f = click.option("--data-dir", envvar="BENCH_DATA_DIR", type=click.Path(file_okay=False),
                     help="Folder holding cifar10/, svhn/ (or set BENCH_DATA_DIR).")(f)
    f = click.option("--cache-dir", envvar="BENCH_CACHE_DIR", type=click.Path(file_okay=False),
                     help="Feature cache (default ~/.cache/bench, or BENCH_CACHE_DIR).")(f)
    f = click.option("--weights-dir", envvar="BENCH_WEIGHTS_DIR", type=click.Path(file_okay=False),
                     help="Folder searched for pretrained weights (or BENCH_WEIGHTS_DIR).")(f)
    return f


def _export_weights_dir(weights_dir):
    if weights_dir:
        os.environ["BENCH_WEIGHTS_DIR"] = str(weights_dir)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bench")
def cli():
    """Evaluate image representations with a linear L2-SVM probe (DCGAN paper protocols)."""


@cli.command()
@click.argument("dataset")
@click.option("--features", "spec", required=True, help="Encoder spec, e.g. pixels or dcgan-imagenet:layers=1-4.")
@data_options
@click.option("--download", is_flag=True, help="Fetch the dataset with torchvision where there is internet.")
@click.option("--protocol", default="full", show_default=True, help="full, few or svhn-1000.")
@click.option("--per-class", default=400, show_default=True, help="Labels per class for the few protocol.")
@click.option("--draws", default=10, show_default=True, help="Random draws for the few protocol.")
@click.option("--per-layer", is_flag=True, help="Also probe each layer's features alone.")
@click.option("--results", "results_path", default=str(results.DEFAULT_PATH), show_default=True,
              type=click.Path(dir_okay=False), help="CSV file the result row is appended to.")
@click.option("--seed", default=0, show_default=True, help="Seeds the validation split, draws and encoders.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch-size", default=256, show_default=True)
@click.option("--limit", type=int, help="Use a random subset of N images per split, for a quick look.")
@click.option("--val-size", default=10_000, show_default=True, help="Validation images carved from train.")
@click.option("--solver", type=click.Choice(SOLVERS), default="torch", show_default=True,
              help="torch: our L2-SVM; liblinear: scikit-learn's LinearSVC, for reference.")
@click.option("--precision", type=click.Choice(["float32", "mixed"]), default="float32", show_default=True,
              help="torch solver: float32, or bfloat16 passes with a float32 finish.")
@click.option("--tol", default=1e-3, show_default=True, help="torch solver's relative gradient-norm tolerance.")
@click.option("--scale", type=click.Choice(["standard", "none"]),
              help="standard: per-feature mean and deviation of the fitting rows; none: raw features. "
                   "Default: the encoder's own (none for DCGAN discriminators, as the original code; else standard).")
def run(dataset, spec, data_dir, cache_dir, weights_dir, download, protocol, per_class, draws, per_layer,
        results_path, seed, device, batch_size, limit, val_size, solver, precision, tol, scale):
    """Evaluate encoder SPEC on DATASET (cifar10, svhn, svhn-extra, folder:PATH)."""
    from .runner import RunOptions, run as run_benchmark, summary

    _export_weights_dir(weights_dir)
    opts = RunOptions(data_dir=data_dir, cache_dir=cache_dir, results=results_path, seed=seed, device=device,
                      batch_size=batch_size, limit=limit, download=download, protocol=protocol,
                      val_size=val_size, per_class=per_class, draws=draws, per_layer=per_layer,
                      probe=ProbeConfig(solver=solver, tol=tol, precision=precision, scale=scale or ""))
    for row in run_benchmark(dataset, spec, opts, log=_log):
        click.echo(summary(row))


@cli.command()
@click.argument("encoder_a")
@click.argument("encoder_b")
@click.option("--dataset", required=True, help="cifar10, svhn, svhn-extra or folder:PATH.")
@click.option("--protocol", type=click.Choice(["full", "few", "svhn-1000"]), default="few", show_default=True)
@click.option("--per-class", default=400, show_default=True)
@click.option("--draws", default=10, show_default=True)
@data_options
@click.option("--seed", default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--limit", type=int)
@click.option("--val-size", default=10_000, show_default=True)
def compare(encoder_a, encoder_b, dataset, protocol, per_class, draws, data_dir, cache_dir, weights_dir, seed,
            device, limit, val_size):
    """Paired difference between ENCODER_A and ENCODER_B over the same draws (or test images)."""
    from .compare import compare as paired
    from .runner import RunOptions, features, probe_config

    _export_weights_dir(weights_dir)
    opts = RunOptions(data_dir=data_dir, cache_dir=cache_dir, seed=seed, device=device, limit=limit)
    pairs, probes = [], []
    for spec in (encoder_a, encoder_b):
        _, splits, encoder, got = features(dataset, spec, opts, log=_log)
        pairs.append((got.features["train"], got.features["test"]))
        probes.append(probe_config(opts, encoder))
    size = min(val_size, len(splits["train"]) // 5)
    result = paired(pairs[0], pairs[1], protocol, size, seed, probes, per_class, draws)
    for line in result.lines(f"A={encoder_a}", f"B={encoder_b}"):
        click.echo(line)


@cli.command()
@click.argument("dataset")
@click.option("--features", "spec", required=True)
@click.option("--rows", "row_counts", type=int, multiple=True, default=(10_000, 50_000), show_default=True,
              help="Training rows per case (repeatable).")
@click.option("--solver", "solvers", type=click.Choice(["torch", "torch-mixed", "liblinear"]), multiple=True,
              default=("torch", "liblinear"), show_default=True)
@click.option("--grid", help="Comma-separated C values (default: the probe's grid).")
@click.option("--out", default=str(Path("results") / "solvers.csv"), show_default=True, type=click.Path(dir_okay=False))
@click.option("--timeout", "timeout_s", type=float, help="Stop a case after this many seconds (reported as such).")
@data_options
@click.option("--seed", default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def solvers(dataset, spec, row_counts, solvers, grid, out, timeout_s, data_dir, cache_dir, weights_dir, seed, device):
    """Time the probe's solvers on cached features: same rows, C grid and protocol; peak memory each."""
    import csv
    import time as clock

    from .devices import device_name, resolve_device
    from .runner import RunOptions, features
    from .solver_benchmark import COLUMNS, run_case

    _export_weights_dir(weights_dir)
    opts = RunOptions(data_dir=data_dir, cache_dir=cache_dir, seed=seed, device=device)
    _, _, encoder, got = features(dataset, spec, opts, log=_log)
    dev = resolve_device(device)
    c_grid = tuple(float(c) for c in grid.split(",")) if grid else ProbeConfig().grid
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists()
    with open(out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for n in row_counts:
            for solver in solvers:
                config = ProbeConfig(solver="liblinear" if solver == "liblinear" else "torch",
                                     precision="mixed" if solver == "torch-mixed" else "float32",
                                     grid=c_grid, device="cpu" if solver == "liblinear" else dev)
                _log(f"{solver} on {n} rows ...")
                r = run_case(got.features["train"], got.features["test"], n, config, seed=seed, timeout_s=timeout_s)
                row = {"time": clock.strftime("%Y-%m-%dT%H:%M:%S"), "dataset": dataset, "encoder": spec,
                       "dims": encoder.dim, "solver": solver, "precision": config.precision if solver != "liblinear"
                       else "float64", "device": device_name(config.device), "c_grid": grid or "default",
                       **{k: v for k, v in r.items() if k in COLUMNS}}
                writer.writerow(row)
                f.flush()
                if r["status"] != "ok":
                    click.echo(f"{solver:<12} {n:>6} rows  {r['status']}")
                    continue
                click.echo(f"{solver:<12} {r['n_train']:>6} rows  fit {r['fit_s']:>7.1f} s  C={r['C']:.3g}  "
                           f"val {r['val_acc']:.2f}%  test {r['test_acc']:.2f}%  peak {r['peak_rss_gb']:.1f} GB")


@cli.command("datasets")
@data_options
def list_datasets(data_dir, cache_dir, weights_dir):
    """List each dataset, its splits and sizes, and where it was found."""
    from . import datasets
    from .cache import default_root

    for name in ("cifar10", "svhn", "svhn-extra"):
        try:
            source = datasets.find(name, data_dir, default_root(cache_dir))
        except BenchError as exc:
            click.echo(f"{name:<11} not found: {exc}")
            continue
        sizes = ", ".join(f"{split} {len(load())}" for split, load in source.splits.items())
        click.echo(f"{name:<11} {sizes} | {source.variant} | {source.location}")


@cli.command("encoders")
def list_encoders():
    """List every encoder name with a line each (built-ins and installed plug-ins)."""
    from .encoders import registry

    for name, factory in registry.available().items():
        click.echo(f"{name:<16} {registry.describe(factory)}")


@cli.group()
def cache():
    """Inspect or clear the feature cache."""


@cache.command("list")
@click.option("--cache-dir", envvar="BENCH_CACHE_DIR", type=click.Path(file_okay=False))
def cache_list(cache_dir):
    from .cache import FeatureCache

    store = FeatureCache(cache_dir)
    entries = store.entries()
    for path, attrs in entries:
        size = path.stat().st_size / 1e6
        click.echo(f"{path.name}  {attrs.get('encoder', '?')}  {attrs.get('dataset', '?')}/{attrs.get('split', '?')}"
                   f"  {attrs.get('n_rows', '?')}x{attrs.get('dim', '?')}  {size:.0f} MB  {attrs.get('created', '')}")
    click.echo(f"{len(entries)} cached feature files in {store.root / 'features'}")


@cache.command("clear")
@click.option("--cache-dir", envvar="BENCH_CACHE_DIR", type=click.Path(file_okay=False))
def cache_clear(cache_dir):
    from .cache import FeatureCache

    store = FeatureCache(cache_dir)
    click.echo(f"removed {store.clear()} files from {store.root}")


@cli.command()
@click.option("--results", "results_path", default=str(results.DEFAULT_PATH), show_default=True,
              type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "html"]), default="markdown",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (markdown default: BENCHMARKS.md).")
def leaderboard(results_path, fmt, out):
    """Best row per dataset, protocol and encoder, beside the paper's published figures.

    Markdown rewrites the tables between the leaderboard markers of BENCHMARKS.md; figures
    go to figures/ beside the results file.
    """
    from . import leaderboard as lb

    rows = lb.load_rows(results_path)
    figures = lb.draw_figures(rows, Path(results_path).parent / "figures")
    if fmt == "csv":
        text = lb.best_rows(rows).to_csv(index=False)
    elif fmt == "html":
        text = lb.html(rows, figures)
    else:
        out = Path(out or "BENCHMARKS.md")
        text = lb.markdown(rows, figures, relative_to=out.parent)
        click.echo(text)
        document = out.read_text() if out.exists() else "# Benchmarks\n"
        document = lb.replace_section(document, text)
        solver_rows = Path(results_path).parent / "solvers.csv"
        if solver_rows.is_file():
            document = lb.replace_section(document, lb.solver_table(solver_rows), *lb.SOLVER_MARKERS)
        document = lb.replace_section(document, lb.timings_table(rows), *lb.TIMINGS_MARKERS)
        models = lb.models_table()
        if models:
            document = lb.replace_section(document, models, *lb.MODELS_MARKERS)
        speeds = Path(results_path).parent / "train-throughput.csv"
        if speeds.is_file():
            document = lb.replace_section(document, lb.throughput_table(speeds), *lb.THROUGHPUT_MARKERS)
        paired = lb.comparisons(Path(results_path).parent)
        if paired:
            document = lb.replace_section(document, paired, *lb.COMPARE_MARKERS)
        out.write_text(document)
        click.echo(f"updated {out}", err=True)
        return
    if out:
        Path(out).write_text(text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text)


@cli.group()
def train():
    """Train models that become encoders (DCGAN, Exemplar-CNN); time a training step."""


def _checked_checkpoint(out, resume: bool) -> Path:
    """RUN_DIR/checkpoint.pt, which --resume needs and a fresh run must not overwrite."""
    from .train import CHECKPOINT

    checkpoint = Path(out) / CHECKPOINT
    if resume and not checkpoint.is_file():
        raise BenchError(f"{checkpoint}: nothing to resume; start without --resume")
    if checkpoint.exists() and not resume:
        raise BenchError(f"{checkpoint} exists; pass --resume to continue it or choose another --out")
    return checkpoint


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
    from . import datasets
    from .cache import default_root
    from .devices import resolve_device
    from .train import TrainConfig, Trainer, init_distributed

    device = init_distributed(resolve_device(device))
    images = datasets.find(dataset, data_dir, default_root(cache_dir)).splits["train"]().images
    images = images[:limit] if limit else images
    config = TrainConfig(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, beta1=beta1, z=z_dist,
                         seed=seed, data=dataset)
    checkpoint = _checked_checkpoint(out, resume)
    trainer = Trainer(config, images, Path(out), device)
    if resume:
        trainer.load(checkpoint)
    _log(f"training {arch} DCGAN on {len(images)} images of {dataset} on {device}")
    trainer.fit(log=_log)
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
    import pandas as pd

    from .devices import resolve_device
    from .throughput import measure

    rows = []
    for arch in archs:
        row = {"time": pd.Timestamp.now().isoformat(timespec="seconds"), **measure(arch, resolve_device(device), steps)}
        _log(f"{arch} on {row['device']}: trainer {row['trainer_img_s']} img/s, plain loop {row['plain_img_s']} img/s")
        rows.append(row)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, mode="a", header=not path.exists(), index=False)
    click.echo(f"appended {len(rows)} rows to {path}")


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
    from .exemplar import ExemplarConfig, ExemplarTrainer
    from .devices import resolve_device
    from .train import init_distributed

    folder = Path(folder.removeprefix("folder:"))
    if not folder.is_dir():
        raise BenchError(f"--data {folder}: not a folder; give a folder of images, e.g. an unpacked Tiny-ImageNet")
    device = init_distributed(resolve_device(device))
    config = ExemplarConfig(net=net, classes=classes, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                            checkpoint_every=checkpoint_every, data=str(folder))
    checkpoint = _checked_checkpoint(out, resume)
    trainer = ExemplarTrainer(config, folder, Path(out), device)
    if resume:
        trainer.load(checkpoint)
    _log(f"training exemplar-cnn {net} on {classes} surrogate classes from {folder} on {device}")
    trainer.fit(log=_log)
    click.echo(f"trained {trainer.step} steps; checkpoint {checkpoint}; evaluate with --features exemplar-cnn:{out}")


@cli.group("pretrained")
def pretrained_group():
    """The registry of pretrained encoders (pretrained/manifest.toml)."""


@pretrained_group.command("list")
@click.option("--weights-dir", envvar="BENCH_WEIGHTS_DIR", type=click.Path(file_okay=False))
def pretrained_list(weights_dir):
    """Each model and which of its files are present and verified."""
    from . import pretrained

    _export_weights_dir(weights_dir)
    for entry in pretrained.manifest().values():
        states = pretrained.status(entry)
        counts = {s: sum(1 for _, x in states if x == s) for s in ("verified", "missing", "BAD HASH")}
        click.echo(f"{entry.name}: {entry.meta['title']}")
        click.echo(f"  paper: {entry.meta['paper']}")
        click.echo("  files: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        for f, state in states:
            if state != "verified":
                click.echo(f"    {state:<8} {f.name} ({f.role})")


@pretrained_group.command("export")
@click.argument("run", type=click.Path(exists=True))
@click.option("--name", required=True, help="Registry name, e.g. dcgan-tinyimagenet-small; becomes an encoder name.")
@click.option("--title", required=True, help="One line: what was trained on what.")
def pretrained_export(run, name, title):
    """Add a `bench train` run's encoder weights (a few MB, no optimiser state) to pretrained/."""
    from . import pretrained
    from .train import read_checkpoint

    state = read_checkpoint(run)
    config = state["config"]
    training = {"data": config["data"], "seed": config["seed"], "wall_s": round(state["wall_s"], 1),
                "machine": state["device"], "batch_size": config["batch_size"]}
    if "D" in state:
        training |= {"epochs": state["epoch"], "steps_into_next_epoch": state["step"]}
    else:
        training |= {"steps": state["step"], "classes": config["classes"]}
    entry = pretrained.export(state, name, title, training)
    click.echo(f"wrote {pretrained.PROJECT_DIR / entry.folder / 'weights.npz'} and the [{name}] entry of "
               f"{pretrained.MANIFEST}; evaluate with --features {name}")


@pretrained_group.command("fetch")
@click.argument("name")
def pretrained_fetch(name):
    """Download NAME's missing files into the cache and verify them."""
    from . import pretrained

    count = pretrained.fetch(pretrained.entry(name), progress=_log)
    click.echo(f"{name}: {count} files fetched; all files present and verified")


@cli.command()
@click.argument("model", type=click.Choice(["dcgan-svhn"]))
@click.option("--out", default="samples.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--seed", default=0, show_default=True)
@click.option("--weights-dir", envvar="BENCH_WEIGHTS_DIR", type=click.Path(file_okay=False))
def samples(model, out, seed, weights_dir):
    """Render an 8x8 grid from a released generator (checks the port's kernel orientation)."""
    from . import samples as grids
    from .encoders.dcgan import load_released_generator

    _export_weights_dir(weights_dir)
    images = grids.generate(load_released_generator(model), 64, seed)
    click.echo(f"wrote {grids.save_grid(grids.to_uint8(images), out)}")


def main():
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C checkpoints, even if started ignoring it
    try:
        cli.main(standalone_mode=False)
    except (BenchError, FloatingPointError) as exc:  # FloatingPointError: the probe's solver diverged
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # torchrun -m benchmark.cli train dcgan ...
    main()
