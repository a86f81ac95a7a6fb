"""HDF5 feature cache: one file per (encoder fingerprint, dataset, split, data).

A file is written under a temporary name and renamed into place only when every row is
in, so an interrupted extraction never leaves a file that a later run trusts. On
lookup a file is checked (opens, complete, fingerprint and row count match); one that
fails is reported, deleted and rebuilt. Fitted encoder state (batchnorm statistics,
k-means centroids) is stored in the group ``encoder_state`` beside the features.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..core.files import atomic_write, remove_stale

FEATURES_CHUNK_ROWS = 256
READ_BLOCK_ROWS = 4096


def default_root(cache_dir=None) -> Path:
    root = cache_dir or os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "bench"
    return Path(root).expanduser()


@dataclass(frozen=True)
class CacheKey:
    encoder: str  # spec string, for people
    fingerprint: str  # encoder config and weights
    fit_data: str  # fingerprint of the images the encoder was fitted on ("" if it needs no fit)
    dataset: str
    split: str
    data: str  # fingerprint of this split's images and labels

    def digest(self) -> str:
        blob = json.dumps({k: v for k, v in asdict(self).items() if k != "encoder"}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def filename(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.encoder.split(":")[0])
        dataset = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.dataset)[:40]
        return f"{dataset}-{self.split}-{safe}-{self.digest()}.h5"


@dataclass
class CachedFeatures:
    path: Path
    n_rows: int
    dim: int
    attrs: dict

    def read(self, rows: np.ndarray | None = None, columns: slice | None = None) -> np.ndarray:
        """Float32 features, optionally only ``rows`` (in that order) and ``columns``, read in blocks."""
        columns = columns or slice(0, self.dim)
        width = len(range(self.dim)[columns])
        if rows is None:
            rows = np.arange(self.n_rows)
        out = np.empty((len(rows), width), np.float32)
        position = np.full(self.n_rows, -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        with h5py.File(self.path, "r") as f:
            ds = f["features"]
            for start in range(0, self.n_rows, READ_BLOCK_ROWS):
                where = position[start:start + READ_BLOCK_ROWS]
                keep = where >= 0
                if keep.all():
                    out[where] = ds[start:start + READ_BLOCK_ROWS, columns]
                elif keep.any():
                    out[where[keep]] = ds[start:start + READ_BLOCK_ROWS, columns][keep]
        return out

    @classmethod
    def open(cls, path: Path) -> "CachedFeatures":
        with h5py.File(path, "r") as f:
            return cls(Path(path), int(f.attrs["n_rows"]), int(f.attrs["dim"]), dict(f.attrs))

    def labels(self) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            return f["labels"][...]

    def encoder_state(self) -> dict[str, np.ndarray]:
        with h5py.File(self.path, "r") as f:
            return {k: v[...] for k, v in f["encoder_state"].items()} if "encoder_state" in f else {}


class FeatureCache:
    def __init__(self, root=None):
        self.root = default_root(root)

    def path(self, key: CacheKey) -> Path:
        return self.root / "features" / key.filename()

    def lookup(self, key: CacheKey, warn=print) -> CachedFeatures | None:
        path = self.path(key)
        if not path.exists():
            return None
        problem = _validate(path, key)
        if problem:
            warn(f"ignoring cache file {path}: {problem}; rebuilding it")
            path.unlink(missing_ok=True)
            return None
        return CachedFeatures.open(path)

    @contextmanager
    def writer(self, key: CacheKey, n_rows: int, dim: int, labels: np.ndarray, attrs: dict,
               encoder_state: dict[str, np.ndarray]):
        """Stream feature batches into a temporary file (``append``); it is renamed into place when complete."""
        path = self.path(key)
        remove_stale(path)  # left by a killed run
        with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
            rows = _Rows(f, key, n_rows, dim, labels, attrs, encoder_state)
            yield rows
            if rows.filled != n_rows:
                raise RuntimeError(f"wrote {rows.filled} of {n_rows} rows")
            f.attrs["complete"] = True

    def entries(self) -> list[tuple[Path, dict]]:
        out = []
        for path in sorted((self.root / "features").glob("*.h5")):
            try:
                with h5py.File(path, "r") as f:
                    out.append((path, dict(f.attrs)))
            except OSError:
                out.append((path, {"error": "unreadable"}))
        return out

    def clear(self) -> int:
        files = list((self.root / "features").glob("*.h5*")) + list((self.root / "decoded").glob("*.h5*"))
        for path in files:
            path.unlink(missing_ok=True)
        return len(files)


def _validate(path: Path, key: CacheKey) -> str:
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            if not a.get("complete", False):
                return "incomplete"
            if a.get("fingerprint") != key.fingerprint or a.get("data") != key.data:
                return "fingerprint mismatch"
            n = int(a["n_rows"])
            if f["features"].shape != (n, int(a["dim"])) or f["labels"].shape != (n,):
                return f"row count mismatch (attrs say {n}, features {f['features'].shape})"
    except (OSError, KeyError, ValueError) as exc:
        return f"unreadable ({exc.__class__.__name__}: {exc})"
    return ""


class _Rows:
    """The open file of a cache writer: features are appended batch by batch."""

    def __init__(self, file: h5py.File, key: CacheKey, n_rows: int, dim: int, labels: np.ndarray,
                 attrs: dict, encoder_state: dict[str, np.ndarray]):
        self.attrs, self.n_rows, self.filled = file.attrs, n_rows, 0
        self.features = file.create_dataset(
            "features", shape=(n_rows, dim), dtype=np.float32,
            chunks=(min(FEATURES_CHUNK_ROWS, max(n_rows, 1)), dim) if n_rows else None)
        file["labels"] = labels
        group = file.create_group("encoder_state")
        for name, value in encoder_state.items():
            group[name] = value
        file.attrs.update({**asdict(key), **attrs, "n_rows": n_rows, "dim": dim, "version": __version__,
                           "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "complete": False})

    def append(self, batch: np.ndarray) -> None:
        self.features[self.filled:self.filled + len(batch)] = batch
        self.filled += len(batch)
