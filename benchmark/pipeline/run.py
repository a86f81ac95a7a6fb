"""One benchmark run: dataset -> encoder -> feature cache -> probe -> result row."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..core.devices import device_name, resolve_device
from ..core import provenance
from ..core.distributed import Shard
from ..core.files import check_folder
from ..core.memory import peak_rss_gb, release_freed
from ..data import datasets
from ..data.cache import FeatureCache
from ..encoders import registry
from ..probe import protocols
from ..probe.compare import compare
from ..probe.solver import DEFAULT_GAP, DEFAULT_GRID, ProbeConfig, certified_gaps
from ..report import results
from .extract import extract, layer_slices, work as extraction_work


@dataclass
class RunOptions:
    data_dir: str | None = None
    cache_dir: str | None = None
    results: str = field(default_factory=lambda: str(results.default_path()))
    seed: int = 0
    device: str = "auto"
    batch_size: int = 256
    limit: int | None = None
    download: bool = False
    strict: bool = False  # refuse images that are not already the dataset's size and mode
    protocol: str = "full"
    val_size: int = 10_000
    per_class: int = 400
    draws: int = 10
    per_layer: bool = False
    probe: ProbeConfig = field(default_factory=lambda: ProbeConfig(scale=""))  # scale "": the encoder's own
    command: str = field(default_factory=provenance.command)  # what the rows record as their command


def load_splits(dataset: str, opts: RunOptions, cache: FeatureCache, log=print):
    source = datasets.find(dataset, opts.data_dir, cache.root, opts.download, opts.strict)
    splits = {name: source.splits[name](warn=log) for name in ("train", "test")}
    if opts.limit:
        rng = np.random.default_rng(opts.seed)
        splits = {name: s.subset(np.sort(rng.permutation(len(s))[: opts.limit])) if len(s) > opts.limit else s
                  for name, s in splits.items()}
    log(f"{dataset} ({source.variant}) from {source.location}: "
        + ", ".join(f"{n} {len(s)}" for n, s in splits.items()))
    return source, splits


def features(dataset: str, spec: str, opts: RunOptions, log=print):
    """Cached (or freshly extracted) features of both splits: (source, splits, encoder, Extracted).

    Under torchrun every rank extracts its share; the cached files are rank 0's to use.
    """
    cache = FeatureCache(opts.cache_dir)
    check_folder(cache.root, "--cache-dir (or BENCH_CACHE_DIR)")
    encoder = registry.build(spec).to(resolve_device(opts.device))  # before loading data: bad specs fail at once
    if encoder.notice:
        log(encoder.notice)
    source, splits = load_splits(dataset, opts, cache, log)
    val_size = protocols.validation_size(opts.val_size, len(splits["train"]))
    if val_size < opts.val_size:
        log(f"validation: {val_size} of the {len(splits['train'])} training images (at most a fifth; "
            f"{opts.val_size} asked for)")
    protocols.check_labels(opts.protocol, splits["train"].labels, val_size, opts.seed, opts.per_class)
    opts.probe = protocols.usable_probe(opts.probe, opts.protocol, splits["train"].labels, val_size, opts.per_class,
                                        log)
    got = extract(encoder, dataset, splits, cache, opts.batch_size, log=log)
    release_freed()  # the extraction's batches go back to the system before the probe reads its matrix
    if not Shard.current().lead:  # the other ranks of torchrun: their share of the probe, said by rank 0
        return source, splits, encoder, got
    if got.cached:
        log(f"{encoder.spec}: features from cache ({got.features['train'].path.name}): read and verified in "
            f"{got.read_s:.1f} s against {got.extract_s:.1f} s to extract them")
    else:
        log(f"{encoder.spec}: extracted {encoder.dim} features per image in {got.extract_s:.1f} s; "
            f"cached in {got.features['train'].path.parent}")
    return source, splits, encoder, got


def check(opts: RunOptions) -> None:
    """What can be checked before any data is read: the results file and the protocol."""
    results.check(opts.results)
    protocols.check(opts.protocol, opts.per_class, opts.draws)


def probe_config(opts: RunOptions, encoder) -> ProbeConfig:
    """The options' probe on the resolved device. No scaling given means the encoder's own for the linear
    probes and raw features for kNN (L2-normalised, as the self-supervised codebases do)."""
    default = "none" if opts.probe.kind == "knn" else encoder.probe_scale
    return ProbeConfig(**{**opts.probe.__dict__, "device": resolve_device(opts.device),
                          "scale": opts.probe.scale or default})


def run(dataset: str, spec: str, opts: RunOptions, log=print) -> list[dict]:
    """Run one encoder on one dataset under a protocol; append and return the result rows.

    Under torchrun every rank extracts its share of the images and probes its share of the rows (the sums of
    every solver pass all-reduced, kNN's neighbours merged); rank 0 alone writes the rows.
    """
    check(opts)
    source, splits, encoder, got = features(dataset, spec, opts, log)
    lead = Shard.current().lead
    probe = probe_config(opts, encoder)
    device = probe.device
    train, test = got.features["train"], got.features["test"]
    need = protocols.Placement(probe.memory).need(train.n_rows, encoder.dim) / Shard.current().world
    if probe.memory and need > probe.memory and lead:
        log(f"the training features ({need / 1e9:.1f} GB in memory) exceed the probe's budget ({probe.memory / 1e9:.1f} "
            "GB; --memory sets it): it reads them from the cache file block by block each pass")

    val_size = protocols.validation_size(opts.val_size, len(splits["train"]))
    layers = {"all": None}
    if opts.per_layer:
        layers.update(layer_slices(train))
    rows = []
    for layer, columns in layers.items():
        outcome, predictions = protocols.run(opts.protocol, train, test, val_size, opts.seed, probe, columns,
                                             opts.per_class, opts.draws)
        row = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "dataset": dataset, "data_variant": source.variant,
            "protocol": opts.protocol, "encoder": encoder.spec, "fingerprint": encoder.fingerprint(),
            "dims": (columns.stop - columns.start) if columns else encoder.dim,
            "layer": layer if opts.per_layer else "",
            "c_grid": _grid_text(probe.grid), "scale": probe.scale, **probe.recorded(),
            "val_size": val_size, "n_train": len(splits["train"]), "n_test": len(splits["test"]),
            "n_classes": len(source.classes),
            "extract_s": round(got.extract_s, 1), **extraction_work(got.features),
            "device": device_name(device), "version": __version__,
            "seed": opts.seed, "peak_rss_gb": round(peak_rss_gb(), 2), "limit": opts.limit or "", **outcome,
            "command": opts.command, "commit": provenance.code_version(),
        }
        if not lead:
            continue
        if predictions:
            row["predictions"] = results.save_predictions(opts.results, row, predictions)
        results.append(row, opts.results, warn=log)
        rows.append(row)
    return rows


def summary(row: dict) -> str:
    acc = f"test {row['test_acc']:.1f}%"
    if row.get("test_acc_std") not in (None, ""):
        acc += f" ± {row['test_acc_std']:.1f} sd over {row['draws']} draws (95% CI ± {row['test_acc_ci95']:.2f})"
    if row["protocol"] == "svhn-1000":
        acc = f"test error {100 - row['test_acc']:.2f}% ± {1.96 * row['test_acc_std']:.2f} (1.96 sd, {row['draws']} draws)"
    layer = f" | layer {row['layer']}" if row.get("layer") else ""
    protocol = row["protocol"] + (f" (--limit {row['limit']} per split)" if row.get("limit") else "")
    if row.get("k") not in (None, ""):
        setting, certificate = f"k={row['k']}, T={row['t']:g}", "exact"
    else:
        certified = "certified" if certified_gaps(row["gap"], row["search_gap"]) else f"NOT certified to {DEFAULT_GAP:g}"
        setting, certificate = f"C={row['C']:.3g}", f"gap {row['gap']:.1e} ({certified})"
    return (f"{row['dataset']} | {row['encoder']}{layer} | {protocol} | {row['probe']} | {acc} | "
            f"val {row['val_acc']:.1f}% | {setting} | {row['dims']} dims | {certificate}")


def _grid_text(grid) -> str:
    return f"{min(grid):.0e}..{max(grid):.0e} x{len(grid)}" if tuple(grid) != DEFAULT_GRID else "1e-6..1e0 x13 (half-decades)"


def compare_encoders(dataset: str, spec_a: str, spec_b: str, opts: RunOptions, log=print) -> list[str]:
    """`bench compare`: both encoders probed on the same draws (or test images); the paired difference."""
    protocols.check(opts.protocol, opts.per_class, opts.draws)
    pairs, probes = [], []
    for spec in (spec_a, spec_b):
        _, splits, encoder, got = features(dataset, spec, opts, log=log)
        pairs.append((got.features["train"], got.features["test"]))
        probes.append(probe_config(opts, encoder))
    val_size = protocols.validation_size(opts.val_size, len(splits["train"]))
    result = compare(pairs[0], pairs[1], opts.protocol, val_size, opts.seed, probes, opts.per_class, opts.draws)
    return result.lines(f"A={spec_a}", f"B={spec_b}")
