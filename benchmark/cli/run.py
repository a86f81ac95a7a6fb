"""``bench run``, ``bench extract``, ``bench compare``, ``bench solvers``, ``bench reproduce``: evaluate encoders."""

from __future__ import annotations

from pathlib import Path

import click

from ..probe.protocols import PROTOCOLS
from ..core.errors import BenchError
from ..probe.solver import DEFAULT_GAP, REFERENCES, SOLVERS, ProbeConfig, parse_probe
from . import options
from .options import cli, export_weights_dir, log

features = click.option("--features", "spec", required=True,
                        help="Encoder spec NAME[:key=value,...], e.g. pixels or dcgan-imagenet:layers=1-4 "
                             "(`bench encoders --verbose` lists names and options).")
dataset_and_encoder = options.stack(
    click.argument("dataset"), features, options.data_options,
    click.option("--download", is_flag=True, help="Fetch the dataset with torchvision where there is internet."),
    options.strict)
protocol = click.option("--protocol", type=click.Choice(PROTOCOLS), default="full", show_default=True,
                        help="full: C on validation, refit on all training images; few: --per-class labels per "
                             "class in --draws draws; svhn-1000: the paper's SVHN protocol.")


def _probe(ctx, param, value):
    try:
        return parse_probe(value)
    except BenchError as exc:
        raise click.BadParameter(str(exc)) from None


probe_spec = click.option(
    "--probe", "probe_spec", default="svm", show_default=True, callback=_probe,
    help="svm: the paper's L2-SVM; logreg: multinomial logistic regression (both certified, C chosen on "
         "validation); knn: weighted kNN on L2-normalised features (exact, k and T chosen on validation). "
         "Options fix what the search would choose: logreg:c=1e-4, knn:k=20,t=0.07.")
probe_options = options.stack(
    probe_spec,
    click.option("--solver", type=click.Choice(SOLVERS), default="torch", show_default=True,
                 help="torch: our certified solver; liblinear (svm) or lbfgs (logreg): scikit-learn's, for "
                      "reference, certified after the fact."),
    click.option("--precision", type=click.Choice(["auto", "float32", "mixed"]), default="auto", show_default=True,
                 help="torch solver: mixed reads a bfloat16 copy of the features for CG's Hessian products (the "
                      "gradient and the gap stay float32); auto picks mixed where bfloat16 is native."),
    click.option("--gap", default=DEFAULT_GAP, show_default=True, type=click.FloatRange(min=0, min_open=True),
                 help="torch solver: stop every fit at this relative primal-dual gap (certified, recorded per row)."),
    click.option("--fit-time-limit", type=click.FloatRange(min=0, min_open=True),
                 help="torch solver: seconds per fit; a fit stopped by it is recorded as not certified."),
    options.scale,
    options.memory,
)


def _probe_config(probe_spec: dict, solver, gap, precision, scale, fit_time_limit, memory) -> ProbeConfig:
    from ..core.memory import default_budget

    config = ProbeConfig(**probe_spec, solver=solver, gap=gap, precision=precision, scale=scale or "",
                         fit_time_limit=fit_time_limit, memory=memory or default_budget())
    config.check()
    return config


def _options(data_dir, cache_dir, weights_dir, device, **kw):
    """RunOptions for this process: weights folder exported, torchrun's process group joined."""
    from ..core.devices import init_distributed, resolve_device
    from ..pipeline.run import RunOptions

    export_weights_dir(weights_dir)
    return RunOptions(data_dir=data_dir, cache_dir=cache_dir, device=init_distributed(resolve_device(device)), **kw)


@cli.command()
@dataset_and_encoder
@protocol
@options.per_class
@options.draws
@click.option("--per-layer", is_flag=True, help="Also probe each layer's features alone.")
@options.results("CSV file the result row is appended to (checked first); the checkout's results/ is the "
                 "project's record, written by `bench record`.")
@options.seed("Seeds the validation split, the draws and the encoders.")
@options.device
@options.batch_size
@options.limit
@options.val_size
@probe_options
def run(dataset, spec, data_dir, cache_dir, weights_dir, download, strict, protocol, per_class, draws, per_layer,
        results_path, seed, device, batch_size, limit, val_size, probe_spec, solver, precision, gap, fit_time_limit,
        scale, memory):
    """Evaluate encoder SPEC on DATASET (cifar10, cifar10-lossless, cifar10-test1k, svhn, svhn-extra, folder:PATH).

    Under torchrun, every process extracts its share of the images and probes its share of the training rows; the
    first writes the row.
    """
    from ..pipeline.run import run as run_benchmark, summary

    opts = _options(data_dir, cache_dir, weights_dir, device, results=results_path, seed=seed,
                    batch_size=batch_size, limit=limit, download=download, strict=strict, protocol=protocol,
                    val_size=val_size,
                    per_class=per_class, draws=draws, per_layer=per_layer,
                    probe=_probe_config(probe_spec, solver, gap, precision, scale, fit_time_limit, memory))
    for row in run_benchmark(dataset, spec, opts, log=log):
        click.echo(summary(row))


@cli.command()
@dataset_and_encoder
@options.seed("Seeds the encoder (and a --limit subset).")
@options.device
@options.batch_size
@options.limit
def extract(dataset, spec, data_dir, cache_dir, weights_dir, download, strict, seed, device, batch_size, limit):
    """Extract (or verify) SPEC's features of DATASET into the cache, without probing.

    Under torchrun (`torchrun --nproc-per-node N -m benchmark.cli extract ...`) every process
    extracts its share of the images and the first writes the cache file.
    """
    from ..core.distributed import Shard
    from ..pipeline.run import features as extract_features

    opts = _options(data_dir, cache_dir, weights_dir, device, seed=seed, batch_size=batch_size, limit=limit,
                    download=download, strict=strict)
    _, splits, encoder, got = extract_features(dataset, spec, opts, log=log)
    if Shard.current().lead:
        sizes = ", ".join(f"{name} {len(split)}" for name, split in splits.items())
        click.echo(f"{dataset} | {spec} | {encoder.dim} features | {sizes} | "
                   f"{'cached' if got.cached else 'extracted'} in {got.features['train'].path.parent}")


@cli.command()
@click.argument("encoder_a")
@click.argument("encoder_b")
@click.option("--dataset", required=True, help="cifar10, svhn, svhn-extra or folder:PATH.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="few", show_default=True,
              help="few and svhn-1000 pair the encoders draw by draw; full pairs them over test images.")
@options.per_class
@options.draws
@options.data_options
@options.seed("Seeds the validation split and the draws (the same for both encoders).")
@options.device
@options.limit
@options.val_size
@probe_options
def compare(encoder_a, encoder_b, dataset, protocol, per_class, draws, data_dir, cache_dir, weights_dir, seed,
            device, limit, val_size, probe_spec, solver, precision, gap, fit_time_limit, scale, memory):
    """Paired difference between ENCODER_A and ENCODER_B over the same draws (or test images), one probe."""
    from ..pipeline.run import compare_encoders

    opts = _options(data_dir, cache_dir, weights_dir, device, seed=seed, limit=limit, protocol=protocol,
                    val_size=val_size, per_class=per_class, draws=draws,
                    probe=_probe_config(probe_spec, solver, gap, precision, scale, fit_time_limit, memory))
    for line in compare_encoders(dataset, encoder_a, encoder_b, opts, log=log):
        click.echo(line)


def _grid(ctx, param, value):
    if value is None:
        return None
    try:
        grid = tuple(float(c) for c in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give comma-separated numbers, e.g. 1e-5,1e-4,1e-3") from None
    if not grid or min(grid) <= 0:
        raise click.BadParameter(f"{value!r}: C values must be positive")
    return grid


@cli.command()
@click.argument("dataset")
@features
@click.option("--rows", "row_counts", type=click.IntRange(min=50), multiple=True, default=(10_000, 50_000),
              show_default=True, help="Training rows per case (repeatable).")
@probe_spec
@click.option("--solver", "solvers", type=click.Choice(SOLVERS), multiple=True,
              help="Solvers to time (repeatable; default: torch and the probe's scikit-learn reference).")
@click.option("--precision", "precisions", type=click.Choice(["auto", "float32", "mixed"]), multiple=True,
              default=("auto",), show_default=True,
              help="Precisions of the torch solver to time (repeatable); auto: mixed where bfloat16 is native.")
@options.scale
@click.option("--grid", callback=_grid, help="Comma-separated C values (default: the probe's grid).")
@options.beside_results("solvers.csv", "CSV the rows are appended to.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              help="Stop a case after this many seconds (reported as such).")
@options.data_options
@options.seed("Seeds the rows of each case and the validation split.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the torch solver runs.")
def solvers(dataset, spec, row_counts, probe_spec, solvers, precisions, scale, grid, out, timeout_s, data_dir,
            cache_dir, weights_dir, seed, device):
    """Time the probe's solvers on cached features: same rows, C grid and protocol; gap, passes, peak memory each."""
    from dataclasses import replace

    from ..pipeline.run import features as extract_features, probe_config
    from ..probe.solver_timing import time_solvers

    if probe_spec["kind"] == "knn":
        raise click.BadParameter("knn is exact: it has no solvers to time; use bench run --probe knn",
                                 param_hint="--probe")
    solvers = solvers or ("torch", *(name for name, (kind, _) in REFERENCES.items() if kind == probe_spec["kind"]))
    for solver in solvers:
        ProbeConfig(**probe_spec, solver=solver).check()
    opts = _options(data_dir, cache_dir, weights_dir, device, seed=seed,
                    probe=ProbeConfig(**probe_spec, scale=scale or ""))
    _, _, encoder, got = extract_features(dataset, spec, opts, log=log)
    base = probe_config(opts, encoder)
    if grid:
        base = replace(base, grid=grid)
    meta = {"dataset": dataset, "encoder": spec, "dims": encoder.dim,
            "c_grid": ",".join(f"{c:g}" for c in grid) if grid else "default"}
    for line in time_solvers(got.features["train"], got.features["test"], row_counts, solvers, precisions, base,
                             Path(out), meta, seed, timeout_s, log=log):
        click.echo(line)


@cli.command()
@click.option("--rows", "row_counts", type=click.IntRange(min=1_000), multiple=True,
              default=(50_000, 200_000, 1_280_000), show_default=True,
              help="Training rows per case (repeatable); 1,280,000 is ImageNet-1k's training set.")
@click.option("--width", default=2048, show_default=True, type=click.IntRange(min=16), help="Features per row.")
@click.option("--budget", default="2GB", show_default=True, type=options.MemorySize(),
              help="Memory per process for the training rows in the budget cases (--memory's meaning: past it, "
                   "the rows stream from the cache file).")
@click.option("--processes", "process_counts", type=click.IntRange(min=1), multiple=True, default=(1, 2),
              show_default=True, help="Processes sharing the rows, as under torchrun (repeatable).")
@click.option("--c", "C", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="The SVM's C (one fit per case: the curve is about rows, not the search).")
@click.option("--placement", type=click.Choice(["both", "memory", "budget"]), default="both", show_default=True,
              help="Which cases: in memory (where the rows fit), under --budget, or both.")
@options.cache_dir
@options.beside_results("scale.csv", "CSV the cases are appended to, each as it completes.")
def scale(row_counts, width, budget, process_counts, C, placement, cache_dir, out):
    """How the SVM probe's time and memory grow with the rows: synthetic float16 features (kept in the cache
    folder), in memory where they fit and streamed under --budget, in one process and sharded over several."""
    from ..data.cache import FeatureCache
    from ..probe.scale_curve import scale_curve

    for line in scale_curve(FeatureCache(cache_dir), row_counts, width, budget, process_counts, C, Path(out),
                            placement, log=log):
        click.echo(line)


@cli.command()
@options.results("The recorded rows (the project's: results/runs.csv in a checkout).", exists=True)
@click.option("--row", "position", type=click.IntRange(min=1), help="The row's number (see --list).")
@click.option("--dataset", help="Filter: the latest row of this dataset (and the other filters).")
@click.option("--encoder", help="Filter: the encoder, spelled as the row records it.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), help="Filter: the protocol.")
@click.option("--probe", type=click.Choice(["svm", "logreg", "knn"]), help="Filter: the probe.")
@click.option("--data-variant", help="Filter: the data variant, e.g. jpeg-q75-copy or original-lossless.")
@click.option("--tolerance", default=0.1, show_default=True, type=click.FloatRange(min=0),
              help="Largest difference in accuracy points that counts as reproduced.")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Reuse this feature cache (default: a scratch one, so features are extracted again).")
@click.option("--list", "list_rows", is_flag=True, help="Number the rows and show their commands; run nothing.")
@click.option("--allow-module", "allow_modules", multiple=True, metavar="MODULE",
              help="Let the row's encoder spec import this Python module (module:factory specs); a results file "
                   "is data, so none is imported otherwise (repeatable).")
def reproduce(results_path, position, dataset, encoder, protocol, probe, data_variant, tolerance, cache_dir,
              list_rows, allow_modules):
    """Rerun a recorded row's command into a scratch results file and set its figures beside the record."""
    from ..pipeline.reproduce import listing, reproduce as rerun

    if list_rows:
        for line in listing(Path(results_path)):
            click.echo(line)
        return
    filters = {"dataset": dataset, "encoder": encoder, "protocol": protocol, "probe": probe,
               "data_variant": data_variant}
    if position is None and not any(filters.values()):
        raise click.UsageError("choose a row: --row N (see --list) or filters such as --encoder and --protocol")
    outcome = rerun(Path(results_path), position, filters, tolerance, cache_dir, log=log,
                    allow_modules=allow_modules)
    for line in outcome.lines():
        click.echo(line)
    if not outcome.lines()[-1].startswith("reproduced"):
        raise SystemExit(1)


@cli.command()
@features
@options.data_options
@click.option("--rows", "n_rows", default=10_000, show_default=True, type=click.IntRange(min=50),
              help="Cached training rows the checks use (a stratified, seeded subset).")
@click.option("--c", "C", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="logreg's C for the objective check (the headline search's choice).")
@options.beside_results("probe-parity.csv", "CSV the checks are appended to, each as it completes.")
def parity(spec, data_dir, cache_dir, weights_dir, n_rows, C, out):
    """The probes against their references on cached CIFAR-10 rows: logreg's objective against lbfgs run to
    tol 1e-10, kNN's predictions against a float64 brute force at every (k, T)."""
    from ..pipeline.run import features as extract_features
    from ..probe.parity import parity as check

    opts = _options(data_dir, cache_dir, weights_dir, "auto")
    _, _, encoder, got = extract_features("cifar10", spec, opts, log=log)
    check(got.features["train"], encoder.spec, n_rows, C, Path(out), log=click.echo)


@cli.command()
@click.option("--old", required=True, help="The commit whose path the new one is timed against.")
@click.option("--case", "groups", multiple=True, type=click.Choice(["headline", "logreg", "knn", "kmeans"]),
              default=("headline",), show_default=True, help="Which targets to time (repeatable).")
@options.beside_results("timings.csv", "CSV the timings are appended to.")
def timings(old, groups, out):
    """Time speed targets on the old commit and on this checkout, side by side in one invocation (each path on a
    cold cache of its own, CIFAR-10 from BENCH_DATA_DIR): run it on a quiet machine."""
    from ..pipeline.timings import timings as measure

    measure(old, list(groups), Path(out), log=click.echo)
