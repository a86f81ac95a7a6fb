"""``bench run``, ``bench compare``, ``bench solvers``: evaluate encoders on a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from ..probe.solver import SOLVERS, ProbeConfig
from ..report import results
from .options import cli, data_options, export_weights_dir, log


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
    from ..pipeline.run import RunOptions, run as run_benchmark, summary

    export_weights_dir(weights_dir)
    opts = RunOptions(data_dir=data_dir, cache_dir=cache_dir, results=results_path, seed=seed, device=device,
                      batch_size=batch_size, limit=limit, download=download, protocol=protocol,
                      val_size=val_size, per_class=per_class, draws=draws, per_layer=per_layer,
                      probe=ProbeConfig(solver=solver, tol=tol, precision=precision, scale=scale or ""))
    for row in run_benchmark(dataset, spec, opts, log=log):
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
    from ..pipeline.run import RunOptions, compare_encoders

    export_weights_dir(weights_dir)
    opts = RunOptions(data_dir=data_dir, cache_dir=cache_dir, seed=seed, device=device, limit=limit,
                      protocol=protocol, val_size=val_size, per_class=per_class, draws=draws)
    for line in compare_encoders(dataset, encoder_a, encoder_b, opts, log=log):
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
    from ..core.devices import resolve_device
    from ..pipeline.run import RunOptions, features
    from ..probe.solver_timing import time_solvers

    export_weights_dir(weights_dir)
    opts = RunOptions(data_dir=data_dir, cache_dir=cache_dir, seed=seed, device=device)
    _, _, encoder, got = features(dataset, spec, opts, log=log)
    base = ProbeConfig(grid=tuple(float(c) for c in grid.split(",")) if grid else ProbeConfig().grid,
                       device=resolve_device(device))
    meta = {"dataset": dataset, "encoder": spec, "dims": encoder.dim, "c_grid": grid or "default"}
    for line in time_solvers(got.features["train"], got.features["test"], row_counts, solvers, base, Path(out),
                             meta, seed, timeout_s, log=log):
        click.echo(line)
