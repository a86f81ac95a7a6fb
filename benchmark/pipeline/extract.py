"""Run an encoder over dataset splits into the feature cache, or reuse what is cached."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..core.progress import bar
from ..data.cache import CachedFeatures, CacheKey, FeatureCache
from ..data.datasets import Split
from ..encoders.base import Encoder


@dataclass
class Extracted:
    features: dict[str, CachedFeatures]  # split name -> cached file
    extract_s: float  # fit + extraction seconds when the features were computed
    cached: bool  # every split came from the cache
    read_s: float  # seconds this run spent reading cached features (0 when computed)


def cache_keys(encoder: Encoder, dataset: str, splits: dict[str, Split]) -> dict[str, CacheKey]:
    fit_data = splits["train"].fingerprint() if encoder.needs_fit else ""
    fp = encoder.fingerprint()
    return {name: CacheKey(encoder.spec, fp, fit_data, dataset, name, split.fingerprint())
            for name, split in splits.items()}


def extract(encoder: Encoder, dataset: str, splits: dict[str, Split], cache: FeatureCache,
            batch_size: int = 256, log=print) -> Extracted:
    """Features of every split (the fit, when needed, uses the ``train`` split only)."""
    keys = cache_keys(encoder, dataset, splits)
    found = {name: cache.lookup(key, warn=log) for name, key in keys.items()}
    missing = [name for name, hit in found.items() if hit is None]
    if not missing:
        start = time.perf_counter()
        for hit in found.values():
            hit.read()  # time an actual full read, so the comparison below is honest
        read_s = time.perf_counter() - start
        extract_s = sum(float(hit.attrs.get("extract_s", 0.0)) for hit in found.values())
        return Extracted(found, extract_s, True, read_s)

    start = time.perf_counter()
    if encoder.needs_fit:
        if found.get("train") is not None:
            encoder.load_state(found["train"].encoder_state())
        else:
            log(f"fitting {encoder.spec} on {len(splits['train'])} unlabeled training images")
            encoder.fit(splits["train"].images, batch_size=batch_size)
    fit_s = time.perf_counter() - start
    for name in missing:
        split = splits[name]
        t0 = time.perf_counter()
        with cache.writer(keys[name], len(split), encoder.dim, split.labels,
                          {"spec": encoder.spec, "layers": _layers_attr(encoder)},
                          encoder.state()) as writer:
            with torch.inference_mode():
                for i in bar(range(0, len(split), batch_size), desc=f"extract {name}",
                             unit_scale=batch_size, unit="img"):
                    writer.append(encoder.transform(split.images[i:i + batch_size]))
            writer.attrs["extract_s"] = time.perf_counter() - t0 + (fit_s if name == "train" else 0.0)
        found[name] = cache.lookup(keys[name], warn=log)
    extract_s = sum(float(hit.attrs.get("extract_s", 0.0)) for hit in found.values())
    return Extracted(found, extract_s, False, 0.0)


def _layers_attr(encoder: Encoder) -> str:
    layers = encoder.layers() or {}
    return ";".join(f"{name}={s.start}:{s.stop}" for name, s in layers.items())


def layer_slices(features: CachedFeatures) -> dict[str, slice]:
    """Column ranges per layer, as recorded in the cache file ({} for encoders without layers)."""
    text = str(features.attrs.get("layers", ""))
    out = {}
    for item in filter(None, text.split(";")):
        name, _, span = item.partition("=")
        lo, _, hi = span.partition(":")
        out[name] = slice(int(lo), int(hi))
    return out
