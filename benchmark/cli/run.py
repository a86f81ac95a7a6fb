"""``bench run``, ``bench compare``, ``bench solvers``: evaluate encoders on a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from ..probe.solver import DEFAULT_GAP, SOLVERS, ProbeConfig
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
@click.option("--precision", type=click.Choice(["auto", "float32", "mixed"]), default="auto", show_default=True,
              help="torch solver: mixed reads a bfloat16 copy of the features for CG's Hessian products (the "
                   "gradient and the gap stay float32); auto picks mixed where bfloat16 is native (CUDA, AVX512-BF16).")
@click.option("--gap", default=DEFAULT_GAP, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="torch solver: stop every fit at this relative primal-dual gap (certified, recorded per row).")
@click.option("--fit-time-limit", type=click.FloatRange(min=0, min_open=True),
              help="torch solver: seconds per fit; a fit stopped by it is recorded as not certified.")
@click.option("--scale", type=click.Choice(["standard", "none"]),
              help="standard: per-feature mean and deviation of the fitting rows; none: raw features. "
                   "Default: the encoder's own (none for DCGAN discriminators, as the original code; else standard).")
def run(dataset, spec, data_dir, cache_dir, weights_dir, download, protocol, per_class, draws, per_layer,
        results_path, seed, device, batch_size, limit, val_size, solver, precision, gap, fit_time_limit, scale):
    """Evaluate encoder SPEC on DATASET (cifar10, svhn, svhn-extra, folder:PATH)."""
    from ..pipeline.run import RunOptions, run as run_benchmark, summary

    export_weights_dir(weights_dir)
    opts = RunOptions(data_dir=data_dir, cache_dir=cache_dir, results=results_path, seed=seed, device=device,
                      batch_size=batch_size, limit=limit, download=download, protocol=protocol,
                      val_size=val_size, per_class=per_class, draws=draws, per_layer=per_layer,
                      probe=ProbeConfig(solver=solver, gap=gap, precision=precision, scale=scale or "",
                                        fit_time_limit=fit_time_limit))
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
@click.option("--features", "spec", required=True, help="Encoder spec whose cached features are used.")
@click.option("--rows", "row_counts", type=click.IntRange(min=50), multiple=True, default=(10_000, 50_000),
              show_default=True, help="Training rows per case (repeatable).")
@click.option("--solver", "solvers", type=click.Choice(SOLVERS), multiple=True, default=SOLVERS, show_default=True,
              help="Solvers to time (repeatable).")
@click.option("--precision", "precisions", type=click.Choice(["float32", "mixed"]), multiple=True,
              default=("mixed",), show_default=True, help="Precisions of the torch solver to time (repeatable).")
@click.option("--scale", type=click.Choice(["standard", "none"]),
              help="Feature scaling (default: the encoder's own, as in bench run).")
@click.option("--grid", help="Comma-separated C values (default: the probe's grid).")
@click.option("--out", default=str(Path("results") / "solvers.csv"), show_default=True, type=click.Path(dir_okay=False),
              help="CSV the rows are appended to.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              help="Stop a case after this many seconds (reported as such).")
@data_options
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seeds the rows and split.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the torch solver runs.")
def solvers(dataset, spec, row_counts, solvers, precisions, scale, grid, out, timeout_s, data_dir, cache_dir,
            weights_dir, seed, device):
    """Time the probe's solvers on cached features: same rows, C grid and protocol; gap, passes, peak memory each."""
    from dataclasses import replace

    from ..pipeline.run import RunOptions, features, probe_config
    from ..probe.solver_timing import time_solvers

    export_weights_dir(weights_dir)
    opts = RunOptions(data_dir=data_dir, cache_dir=cache_dir, seed=seed, device=device,
                      probe=ProbeConfig(scale=scale or ""))
    _, _, encoder, got = features(dataset, spec, opts, log=log)
    base = probe_config(opts, encoder)
    if grid:
        base = replace(base, grid=tuple(float(c) for c in grid.split(",")))
    meta = {"dataset": dataset, "encoder": spec, "dims": encoder.dim, "c_grid": grid or "default"}
    for line in time_solvers(got.features["train"], got.features["test"], row_counts, solvers, precisions, base,
                             Path(out), meta, seed, timeout_s, log=log):
        click.echo(line)
