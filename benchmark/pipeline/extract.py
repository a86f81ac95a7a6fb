"""Run an encoder over dataset splits into the feature cache, or reuse what is cached.

Cached files are verified (every chunk's checksum) before they are trusted. For an encoder
fitted on data, every split must come from one fit: the files' state digests must agree, a
missing split is extracted with the state stored beside the others, and files from
different fits are all rebuilt from a new one.

Under torchrun every rank extracts its contiguous share of each split's images and rank 0
writes the single cache file. An encoder that can share its fit (DCGAN batchnorm
statistics, summed over ranks) fits on every rank; any other fits on rank 0, whose state
is then sent to the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..core import distributed
from ..core.distributed import Shard
from ..core.files import ensure_free_space
from ..core.finite import check_finite
from ..core.progress import chunks
from ..data.cache import CachedFeatures, CacheKey, DamagedFile, Expected, FeatureCache
from ..data.split import Split
from ..encoders.base import Encoder


SPARE_BYTES = 64 * 2 ** 20  # beyond the features: HDF5 metadata, checksums, and room for everything else


@dataclass
class Extracted:
    features: dict[str, CachedFeatures]  # split name -> cached file (every rank's, under torchrun)
    extract_s: float  # fit + extraction seconds when the features were computed
    cached: bool  # every split came from the cache
    read_s: float  # seconds this run spent reading (and verifying) cached features (0 when computed)
    encoder_fit_s: float = 0.0  # of extract_s, the encoder's fit (k-means, batchnorm statistics)


def cache_keys(encoder: Encoder, dataset: str, splits: dict[str, Split]) -> dict[str, CacheKey]:
    fit_data = splits["train"].fingerprint() if encoder.needs_fit else ""
    fp = encoder.fingerprint()
    return {name: CacheKey(encoder.spec, fp, fit_data, dataset, name, split.fingerprint())
            for name, split in splits.items()}


def trusted(cache: FeatureCache, keys: dict[str, CacheKey], needs_fit: bool, expected: dict[str, Expected],
            log=print) -> dict[str, CachedFeatures]:
    """The cached splits that pass every check (their shape and labels against ``expected`` too), read once
    in full; all or none of a fitted encoder's splits when their states disagree."""
    found = {}
    for name, key in keys.items():
        hit = cache.lookup(key, warn=log, expect=expected[name])
        if hit is None:
            continue
        try:
            hit.verify()
        except DamagedFile as exc:
            cache.discard(hit.path, str(exc).removeprefix(f"{hit.path}: "), log)
            continue
        found[name] = hit
    if needs_fit and len({hit.attrs.get("state_digest") for hit in found.values()}) > 1:
        for hit in found.values():
            cache.discard(hit.path, "its split was extracted by another fit of the encoder", log)
        return {}
    return found


def extract(encoder: Encoder, dataset: str, splits: dict[str, Split], cache: FeatureCache,
            batch_size: int = 256, log=print) -> Extracted:
    """Features of every split (the fit, when needed, uses the ``train`` split only)."""
    shard = Shard.current()
    keys = cache_keys(encoder, dataset, splits)
    start = time.perf_counter()
    expected = {name: Expected(encoder.dim, split.labels) for name, split in splits.items()}
    found = trusted(cache, keys, encoder.needs_fit, expected, log) if shard.lead else {}
    have = distributed.broadcast_flags([name in found for name in keys])
    missing = [name for name, ok in zip(keys, have) if not ok]
    if not missing:
        read_s = time.perf_counter() - start
        return Extracted(_opened(found, cache, keys), _recorded_s(found), True, read_s, _recorded_s(found, "encoder_fit_s"))

    if shard.lead:  # the whole files, before a fit or extraction that would fill the disk
        rows = sum(len(splits[name]) for name in missing)
        ensure_free_space(cache.root / "features", int(rows * encoder.dim * 4 * 1.02) + SPARE_BYTES,
                          f"the {encoder.spec} features of {dataset} ({rows} rows x {encoder.dim})")
    fit_start = time.perf_counter()
    if encoder.needs_fit:
        _fit_or_restore(encoder, splits["train"].images, found, any(have), batch_size, shard, log)
    fit_s = time.perf_counter() - fit_start
    fit_flops, image_flops = encoder.flops(len(splits["train"]))
    for name, value in encoder.state().items():
        check_finite(value, f"{encoder.spec}: fitted state {name}", "its training images or weights make the fit "
                     "overflow; nothing was cached")
    for name in missing:
        split, t0 = splits[name], time.perf_counter()
        if shard.world == 1:
            with cache.writer(keys[name], len(split), encoder.dim, split.labels, _attrs(encoder),
                              encoder.state()) as writer:
                for features in _transform(encoder, split.images, batch_size, f"extract {name}"):
                    writer.append(features)
                _note_work(writer, time.perf_counter() - t0, fit_s, fit_flops, image_flops, name, len(split))
        else:
            mine = np.concatenate(list(_transform(encoder, split.images[shard.rows(len(split))], batch_size,
                                                  f"extract {name} (rank {shard.rank})")))
            if shard.lead:
                with cache.writer(keys[name], len(split), encoder.dim, split.labels, _attrs(encoder),
                                  encoder.state()) as writer:
                    distributed.gather_rows(mine, len(split), writer.append)
                    _note_work(writer, time.perf_counter() - t0, fit_s, fit_flops, image_flops, name, len(split))
            else:
                distributed.gather_rows(mine, len(split), None)
        if shard.lead:
            found[name] = cache.lookup(keys[name], warn=log, expect=expected[name])
    distributed.barrier()
    return Extracted(_opened(found, cache, keys), _recorded_s(found) if shard.lead else 0.0, False, 0.0,
                     _recorded_s(found, "encoder_fit_s") if shard.lead else 0.0)


def _note_work(writer, transform_s: float, fit_s: float, fit_flops: float, image_flops: float, split: str,
               n: int) -> None:
    """Seconds and work of making a split's features, kept with them (the encoder's fit counts with train)."""
    fit = split == "train"
    writer.note("extract_s", transform_s + (fit_s if fit else 0.0))
    writer.note("encoder_fit_s", fit_s if fit else 0.0)
    writer.note("encoder_fit_gflop", fit_flops / 1e9 if fit else 0.0)
    writer.note("transform_gflop", image_flops * n / 1e9)


def work(features: dict[str, CachedFeatures]) -> dict[str, float | str]:
    """The row columns of extraction work, from the cached files ("" for files written before they were kept)."""
    attrs = [hit.attrs for hit in features.values()]
    if not all("transform_gflop" in a for a in attrs):
        return {"encoder_fit_s": "", "encoder_fit_gflop": "", "extract_gflop": ""}
    return {"encoder_fit_s": round(sum(float(a["encoder_fit_s"]) for a in attrs), 1),
            "encoder_fit_gflop": round(sum(float(a["encoder_fit_gflop"]) for a in attrs), 1),
            "extract_gflop": round(sum(float(a["transform_gflop"]) for a in attrs), 1)}


def _opened(found: dict[str, CachedFeatures], cache: FeatureCache, keys: dict[str, CacheKey]):
    """Rank 0's verified files; the other ranks of torchrun open the same files (rank 0 checked them), once
    every rank has reached this point, so that each can read its share of the rows."""
    if Shard.current().world == 1:
        return found
    distributed.barrier()
    return found if Shard.current().lead else {name: CachedFeatures.open(cache.path(key)) for name, key in keys.items()}


def _fit_or_restore(encoder: Encoder, images: np.ndarray, found: dict[str, CachedFeatures], restorable: bool,
                    batch_size: int, shard: Shard, log) -> None:
    """Give the encoder its fitted state: from a cached split of the same fit, else by fitting it."""
    if restorable:  # another split of this fit is cached: extract the missing ones with the same state
        encoder.load_state(distributed.broadcast_arrays(next(iter(found.values())).encoder_state()
                                                        if shard.lead else None))
        return
    log(f"fitting {encoder.spec} on {len(images)} unlabeled training images"
        + (f" ({shard.world} processes)" if shard.world > 1 else ""))
    if shard.world == 1 or encoder.fit_distributed:
        encoder.fit(images, batch_size=batch_size)
        return
    if shard.lead:
        encoder.fit(images, batch_size=batch_size)
    encoder.load_state(distributed.broadcast_arrays(encoder.state() if shard.lead else None))


def _transform(encoder: Encoder, images: np.ndarray, batch_size: int, desc: str):
    """Feature batches, each checked finite before it goes anywhere near the cache."""
    with torch.inference_mode():
        for part in chunks(len(images), batch_size, desc, unit="img"):
            features = encoder.transform(images[part])
            check_finite(features, f"{encoder.spec}: features of images {part.start}..{part.stop - 1} ({desc})",
                         "nothing was cached; its weights, its fitted state or its arithmetic (precision=) are "
                         "at fault, not the probe")
            yield features


def _recorded_s(found: dict[str, CachedFeatures], what: str = "extract_s") -> float:
    return sum(float(hit.attrs.get(what, 0.0)) for hit in found.values())


def _attrs(encoder: Encoder) -> dict:
    layers = encoder.layers() or {}
    return {"spec": encoder.spec, "layers": ";".join(f"{name}={s.start}:{s.stop}" for name, s in layers.items())}


def layer_slices(features: CachedFeatures) -> dict[str, slice]:
    """Column ranges per layer, as recorded in the cache file ({} for encoders without layers)."""
    text = str(features.attrs.get("layers", ""))
    out = {}
    for item in filter(None, text.split(";")):
        name, _, span = item.partition("=")
        lo, _, hi = span.partition(":")
        out[name] = slice(int(lo), int(hi))
    return out
