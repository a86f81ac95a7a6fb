"""HDF5 feature cache: one file per (encoder fingerprint, fit data, split data): content, not names.

What a cached file guarantees:

- Complete or absent. A file is written under a temporary name unique to its writer and
  renamed into place only when every row is in, so an interrupted extraction, a full disk
  or a concurrent writer never leaves a file that a later run trusts.
- Checked on every read. Every dataset is stored with HDF5's Fletcher-32 checksum per chunk;
  a damaged byte makes the read fail, and the run reports the file in one line and rebuilds it.
- Tied to what made it. The key holds the encoder's fingerprint (name, options, weights and
  code version), the data's content hash and, for encoders fitted on data, the training
  images' hash; not the dataset's name, so two datasets holding the same images
  (``cifar10`` and ``cifar10-test1k`` share their training split) share its features and fit. Fitted encoder state (batchnorm statistics, k-means centroids) is stored in
  the group ``encoder_state`` with its digest (``state_digest``), so every split of a dataset
  can be checked to come from one fit.
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
from ..core.errors import BenchError
from ..core.finite import nonfinite_count
from .hdf5 import Writer, writing

FEATURES_CHUNK_ROWS = 256
READ_BLOCK_ROWS = 4096
FORMAT = 3  # cache file layout: 2 = Fletcher-32 on every dataset, state digest; 3 = keyed by content only


def default_root(cache_dir=None) -> Path:
    root = cache_dir or os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "bench"
    return Path(root).expanduser()


def state_digest(state: dict[str, np.ndarray]) -> str:
    """Hash of a fitted encoder's state: names, shapes, dtypes and bytes."""
    h = hashlib.sha1()
    for name in sorted(state):
        value = np.ascontiguousarray(state[name])
        h.update(f"{name}\0{value.shape}\0{value.dtype}\0".encode())
        h.update(value.tobytes())
    return h.hexdigest()[:16]


def _place(out: np.ndarray, where: np.ndarray, block: np.ndarray) -> None:
    """``out[where] = block``; a float16 block bound for consecutive rows is widened by torch's vectorised copy,
    3x faster than numpy's (a streamed probe converts every row on every pass)."""
    if block.dtype != out.dtype and len(where) and (np.diff(where) == 1).all():
        import torch

        torch.from_numpy(out[where[0]:where[0] + len(where)]).copy_(torch.from_numpy(np.ascontiguousarray(block)))
    else:
        out[where] = block


class DamagedFile(BenchError):
    """A cached file failed its checksum or could not be read."""


@dataclass(frozen=True)
class CacheKey:
    encoder: str  # spec string, for people
    fingerprint: str  # encoder config, weights and code version
    fit_data: str  # fingerprint of the images the encoder was fitted on ("" if it needs no fit)
    dataset: str  # the name it was first made for, for people (not part of the key)
    split: str  # for people too: the content is in ``data``
    data: str  # fingerprint of this split's images and labels

    def digest(self) -> str:
        blob = json.dumps({"fingerprint": self.fingerprint, "fit_data": self.fit_data, "data": self.data,
                           "format": FORMAT}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def filename(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.encoder.split(":")[0])
        return f"{safe}-{self.digest()}.h5"


@dataclass
class CachedFeatures:
    path: Path
    n_rows: int
    dim: int
    attrs: dict

    def read(self, rows: np.ndarray | None = None, columns: slice | None = None) -> np.ndarray:
        """Float32 features, optionally only ``rows`` (in that order) and ``columns``, read in blocks.

        Raises ``DamagedFile`` when a chunk fails its checksum.
        """
        columns = columns or slice(0, self.dim)
        width = len(range(self.dim)[columns])
        if rows is None:
            rows = np.arange(self.n_rows)
        out = np.empty((len(rows), width), np.float32)
        position = np.full(self.n_rows, -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        with self._open() as f:
            ds = f["features"]
            for start in range(0, self.n_rows, READ_BLOCK_ROWS):
                where = position[start:start + READ_BLOCK_ROWS]
                keep = where >= 0
                if keep.all():
                    _place(out, where, self._checked(lambda: ds[start:start + READ_BLOCK_ROWS, columns]))
                elif keep.any():
                    _place(out, where[keep], self._checked(lambda: ds[start:start + READ_BLOCK_ROWS, columns])[keep])
        return out

    @classmethod
    def open(cls, path: Path) -> "CachedFeatures":
        with h5py.File(path, "r") as f:
            return cls(Path(path), int(f.attrs["n_rows"]), int(f.attrs["dim"]), dict(f.attrs))

    def labels(self) -> np.ndarray:
        with self._open() as f:
            return self._checked(lambda: f["labels"][...])

    def encoder_state(self) -> dict[str, np.ndarray]:
        with self._open() as f:
            if "encoder_state" not in f:
                return {}
            return self._checked(lambda: {k: v[...] for k, v in f["encoder_state"].items()})

    def verify(self) -> None:
        """Read every chunk once (checksums checked), raising ``DamagedFile`` on any failure."""
        self.labels()
        state = self.encoder_state()
        if state_digest(state) != self.attrs.get("state_digest"):
            raise DamagedFile(f"{self.path}: its encoder state does not match its recorded digest")
        bad = 0
        with self._open() as f:  # block by block: checking a file never holds it whole in memory
            ds = f["features"]
            for start in range(0, self.n_rows, READ_BLOCK_ROWS):
                bad += nonfinite_count(self._checked(lambda: ds[start:start + READ_BLOCK_ROWS]))
        if bad:
            raise DamagedFile(f"{self.path}: {bad} of its features are NaN or infinite (written by an older version)")

    @contextmanager
    def _open(self):
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise DamagedFile(f"{self.path}: unreadable ({exc})") from None
        with f:
            yield f

    def _checked(self, read):
        try:
            return read()
        except OSError as exc:  # HDF5 reports a failed Fletcher-32 check as a failed read
            raise DamagedFile(f"{self.path}: a chunk failed its checksum or could not be read ({exc})") from None


class FeatureCache:
    def __init__(self, root=None):
        self.root = default_root(root)

    def path(self, key: CacheKey) -> Path:
        return self.root / "features" / key.filename()

    def lookup(self, key: CacheKey, warn=print, expect: "Expected | None" = None) -> CachedFeatures | None:
        """The complete, matching file of ``key``; a file that fails the checks (against ``expect`` too: the
        encoder's width, the split's rows and labels) is reported and removed."""
        path = self.path(key)
        try:
            seen = path.stat()
        except FileNotFoundError:
            return None
        problem = _validate(path, key, expect)
        if problem:
            self.discard(path, problem, warn, seen)
            return None
        return CachedFeatures.open(path)

    def discard(self, path: Path, problem: str, warn=print, seen: os.stat_result | None = None) -> None:
        """Report a bad cache file in one line and remove it, unless another run has just replaced it."""
        warn(f"ignoring cache file {path}: {problem}; rebuilding it")
        try:
            now = path.stat()
        except FileNotFoundError:
            return
        if seen is None or (now.st_ino, now.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns):
            path.unlink(missing_ok=True)

    @contextmanager
    def writer(self, key: CacheKey, n_rows: int, dim: int, labels: np.ndarray, attrs: dict,
               encoder_state: dict[str, np.ndarray], dtype=np.float32):
        """Stream feature batches into the file (``append``); it is renamed into place when complete. Features are
        stored as ``dtype`` (float16 halves a large file) and always read back as float32.

        A failed write (a full disk, say) is one line naming the file; nothing is left behind.
        """
        path = self.path(key)
        with writing(path) as out:
            rows = _Rows(out, key, n_rows, dim, labels, attrs, encoder_state, dtype)
            yield rows
            if rows.features.filled != n_rows:
                raise ValueError(f"{path}: wrote {rows.features.filled} of {n_rows} rows")
            out.attrs({"complete": True})

    def entries(self) -> list[tuple[Path, dict]]:
        out = []
        for path in sorted((self.root / "features").glob("*.h5")):
            try:
                with h5py.File(path, "r") as f:
                    out.append((path, dict(f.attrs)))
            except OSError:
                out.append((path, {"error": "unreadable"}))
        return out

    def files(self) -> list[Path]:
        """Every file of the cache: features, decoded images, and temporaries of killed runs."""
        return sorted(p for folder in ("features", "decoded") for p in (self.root / folder).glob("*") if p.is_file())

    def clear(self) -> int:
        files = self.files()
        for path in files:
            path.unlink(missing_ok=True)
        return len(files)


@dataclass(frozen=True)
class Expected:
    """What a split's cache file must hold: the encoder's width, the split's rows and labels."""

    dim: int
    labels: np.ndarray


def _validate(path: Path, key: CacheKey, expect: Expected | None = None) -> str:
    """Why the file at ``path`` cannot be trusted ("" when everything about it agrees)."""
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            if not a.get("complete", False):
                return "incomplete"
            if a.get("fingerprint") != key.fingerprint or a.get("data") != key.data:
                return "fingerprint mismatch"
            if int(a.get("format", 0)) != FORMAT:
                return f"written in cache format {a.get('format', 1)}, not {FORMAT}"
            n = int(a["n_rows"])
            if f["features"].shape != (n, int(a["dim"])) or f["labels"].shape != (n,):
                return f"row count mismatch (attrs say {n}, features {f['features'].shape})"
            unchecked = [name for name in ("features", "labels") if f[name].size and not f[name].fletcher32]
            if unchecked:
                return f"{' and '.join(unchecked)} stored without the Fletcher-32 checksum this cache writes"
            if expect is not None:
                if f["features"].shape != (len(expect.labels), expect.dim):
                    return (f"holds features of shape {f['features'].shape}; this encoder and split make "
                            f"({len(expect.labels)}, {expect.dim})")
                if not np.array_equal(f["labels"][...], expect.labels):
                    return "its labels are not the split's"
    except (OSError, KeyError, ValueError, TypeError) as exc:
        return f"unreadable ({exc.__class__.__name__}: {exc})"
    return ""


class _Rows:
    """The open file of a cache writer: features are appended batch by batch."""

    def __init__(self, out: Writer, key: CacheKey, n_rows: int, dim: int, labels: np.ndarray, attrs: dict,
                 encoder_state: dict[str, np.ndarray], dtype=np.float32):
        self.out = out
        self.features = out.rows("features", (n_rows, dim), dtype, FEATURES_CHUNK_ROWS)
        out.array("labels", labels)
        out.group("encoder_state")
        for name, value in encoder_state.items():
            out.array(name, value, group="encoder_state")
        out.attrs({**asdict(key), **attrs, "n_rows": n_rows, "dim": dim, "version": __version__, "format": FORMAT,
                   "state_digest": state_digest(encoder_state), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "complete": False})

    def append(self, batch: np.ndarray) -> None:
        self.features.append(batch)

    def note(self, name: str, value) -> None:
        """Record an attribute (a timing, say) in the file being written."""
        self.out.attrs({name: value})
