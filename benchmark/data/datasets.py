"""Datasets: each split loads as uint8 images (N, 32, 32, 3) and int64 labels.

Known datasets live in a root folder (``--data-dir`` or ``BENCH_DATA_DIR``) with one
subfolder per dataset. ``folder:PATH`` evaluates any image-folder tree (decoded once and
cached, see ``images``).

Two datasets pair CIFAR-10 copies image for image: ``cifar10-lossless`` (the original
pixels of all 50,000 training images and the first 1,000 of the test batch, as PNG sprites)
and ``cifar10-test1k`` (whatever ``cifar10/`` holds, with its test split cut to those same
1,000 images). Both list images class by class, in their original order within a class,
as the image-folder copy does, so all three share training rows, validation split and draws.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import BenchError
from ..core.files import git_blob_sha1
from .cache import default_root
from .images import SIZE, cached_folder_split, cached_split
from .split import Split

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class Source:
    """Where a dataset was found and how to read each of its splits."""

    name: str
    variant: str  # what the results call the data, e.g. "jpeg-q75-copy"
    location: Path
    classes: tuple[str, ...]
    splits: dict  # split name -> loader returning a Split (``warn=`` receives one-line notices)


# ---------------------------------------------------------------- locating data

def data_root(data_dir: str | os.PathLike | None) -> Path | None:
    root = data_dir or os.environ.get("BENCH_DATA_DIR")
    return Path(root).expanduser() if root else None


def find(name: str, data_dir=None, cache_dir: Path | None = None, download: bool = False,
         strict: bool = False) -> Source:
    """Resolve a dataset name (one of ``DATASETS`` or ``folder:PATH``); files are checked here, before any work."""
    if name.startswith("folder:"):
        return _folder_source(Path(name[len("folder:"):]).expanduser(), name, cache_dir, strict)
    root = data_root(data_dir)
    if name == "cifar10":
        return _cifar10_source(root, cache_dir, download, strict)
    if name == "cifar10-lossless":
        return _lossless_source(root, cache_dir)
    if name == "cifar10-test1k":
        return _test1k_source(root, cache_dir, download, strict)
    if name in ("svhn", "svhn-extra"):
        return _svhn_source(root, with_extra=name == "svhn-extra")
    raise BenchError(f"unknown dataset {name!r}: choose {', '.join(DATASETS)} or folder:PATH")


DATASETS = ("cifar10", "cifar10-lossless", "cifar10-test1k", "svhn", "svhn-extra")


def load(name: str, split: str, data_dir=None, cache_dir=None, download=False) -> Split:
    """One split in Python, e.g. ``load("cifar10", "train")``: decoded once into the cache (``cache_dir``, else
    ``BENCH_CACHE_DIR`` or ~/.cache/bench), read from there on every later call."""
    source = find(name, data_dir, default_root(cache_dir), download)
    if split not in source.splits:
        raise BenchError(f"{name} has no split {split!r} in {source.location}; it has {', '.join(source.splits)}")
    return source.splits[split]()


def _missing(name: str, looked_for: str, root: Path | None, fix: str) -> BenchError:
    where = f"under {root}" if root else "(no --data-dir given and BENCH_DATA_DIR is unset)"
    return BenchError(f"{name}: looked for {looked_for} {where}; fix: {fix}")


# ---------------------------------------------------------------- CIFAR-10

def _cifar10_source(root: Path | None, cache_dir, download: bool, strict: bool = False) -> Source:
    base = root / "cifar10" if root else None
    if download and base is not None and not (base / "cifar-10-batches-py").is_dir():
        _download_cifar10(base)
    if base is not None and (base / "cifar-10-batches-py").is_dir():
        batches = base / "cifar-10-batches-py"
        files = {"train": [batches / f"data_batch_{i}" for i in range(1, 6)], "test": [batches / "test_batch"]}
        splits = {s: (lambda warn=print, fs=fs: _read_cifar_batches(fs)) for s, fs in files.items()}
        return Source("cifar10", "original", batches, CIFAR10_CLASSES, splits)
    if base is not None and (base / "train").is_dir() and (base / "test").is_dir():
        splits = {s: (lambda warn=print, s=s: cached_folder_split(base / s, CIFAR10_CLASSES, cache_dir, warn, strict))
                  for s in ("train", "test")}
        variant = "jpeg-q75-copy" if _has_jpeg(base / "test") else "image-folder"
        return Source("cifar10", variant, base, CIFAR10_CLASSES, splits)
    raise _missing("cifar10", "cifar10/cifar-10-batches-py/ or cifar10/train/ and cifar10/test/", root,
                   "pass --data-dir (or set BENCH_DATA_DIR) to the folder holding cifar10/, "
                   "or add --download where there is internet")


def _download_cifar10(base: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    base.mkdir(parents=True, exist_ok=True)
    try:  # torchvision checks the archive's MD5 before extracting it
        download_and_extract_archive("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", str(base),
                                     md5="c58f30108f718f92721af3b95e74349a")
    except Exception as exc:  # no network, DNS failure, bad checksum
        raise BenchError(f"cifar10: download into {base} failed ({type(exc).__name__}: {exc}); "
                         "copy cifar-10-batches-py/ there by hand") from None


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what CIFAR-10's batch files contain: builtins, numpy arrays and dtypes, as any pickle
    protocol writes them (``_reconstruct`` up to protocol 4, ``_frombuffer`` from 5), each with its
    arguments checked before numpy sees them."""

    def find_class(self, module, name):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return _checked_reconstruct
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return _checked_frombuffer
        if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _checked_reconstruct(cls, shape, dtype_code):
    if cls is not np.ndarray or not isinstance(shape, tuple) or not isinstance(dtype_code, bytes):
        raise pickle.UnpicklingError("refusing an array reconstruction with unexpected arguments")
    return np.ndarray.__new__(cls, shape, dtype_code)


def _checked_frombuffer(buffer, dtype, shape, order):
    if not isinstance(buffer, (bytes, bytearray, pickle.PickleBuffer)) or not isinstance(dtype, np.dtype) \
            or dtype.hasobject or not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape) \
            or order not in ("C", "F"):
        raise pickle.UnpicklingError("refusing an array from a buffer with unexpected arguments")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def _read_cifar_batches(files: list[Path]) -> Split:
    images, labels = [], []
    for f in files:
        try:
            with open(f, "rb") as fh:
                batch = _ArrayUnpickler(fh, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, SIZE, SIZE)
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError, IndexError) as exc:
            # TypeError, IndexError: a pickle of another shape (a list, say) where a batch dict belongs
            raise BenchError(f"{f}: not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}); "
                             "re-download it with --download") from None
        images.append(data.transpose(0, 2, 3, 1))
    return Split(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels))


# ---------------------------------------------------------------- CIFAR-10, original pixels

LOSSLESS_DIR = "cifar10-lossless"
LOSSLESS_LABELS = "cifar10_labels.json"
SPRITE_ROWS = 1000  # images per PNG sprite: one per row, 1,024 pixels wide
LOSSLESS_TRAIN = 50_000  # sprites 0..49 are the training batches; sprite 50 the first 1,000 test images


LOSSLESS_MANIFEST_SHA1 = "2fde773858b1e77109cd0bed1c1fe08b9435b792"  # git blob SHA-1 of the released MANIFEST.tsv
MANIFEST_ENV = "BENCH_LOSSLESS_MANIFEST_SHA1"  # trust another manifest (a copy made on purpose, tests)


def verify_manifest(base: Path) -> list[Path]:
    """Every file ``MANIFEST.tsv`` lists, checked by size and git blob SHA-1; one line names the first bad one.

    The manifest itself is checked against the released one's hash, pinned here, so a file damaged along
    with a manifest edited to match is refused too."""
    manifest = base / "MANIFEST.tsv"
    fix = f"copy {base.name}/ again from ../shared/data/"
    try:
        digest = git_blob_sha1(manifest.read_bytes())
    except OSError as exc:
        raise BenchError(f"{manifest}: unreadable manifest ({exc.strerror or exc}); {fix}") from None
    pinned = os.environ.get(MANIFEST_ENV) or LOSSLESS_MANIFEST_SHA1
    if digest != pinned:
        raise BenchError(f"{manifest}: not the released manifest (git blob SHA-1 {digest[:12]}, expected "
                         f"{pinned[:12]}); {fix} (for a copy made on purpose, set {MANIFEST_ENV} to its manifest's hash)")
    try:
        lines = manifest.read_text().splitlines()[1:]
        listed = [(name, sha1, int(size)) for name, sha1, size in (line.split("\t") for line in lines if line)]
    except (OSError, ValueError) as exc:
        raise BenchError(f"{manifest}: unreadable manifest ({type(exc).__name__}: {exc}); {fix}") from None
    files = []
    for name, sha1, size in listed:
        path = base / name
        if not path.is_file():
            raise BenchError(f"{path}: missing (listed in {manifest.name}); {fix}")
        data = path.read_bytes()
        if len(data) != size or git_blob_sha1(data) != sha1:
            raise BenchError(f"{path}: damaged ({len(data)} bytes, git blob SHA-1 {git_blob_sha1(data)[:12]}; "
                             f"{manifest.name} says {size} bytes, {sha1[:12]}); {fix}")
        files.append(path)
    return files


def _lossless_source(root: Path | None, cache_dir) -> Source:
    base = root / LOSSLESS_DIR if root else None
    if base is None or not (base / "MANIFEST.tsv").is_file():
        raise _missing("cifar10-lossless", f"{LOSSLESS_DIR}/MANIFEST.tsv", root,
                       "pass --data-dir (or set BENCH_DATA_DIR) to the folder holding cifar10-lossless/")
    files = verify_manifest(base)
    sprites = sorted((f for f in files if f.suffix == ".png"), key=lambda f: int(f.stem.rsplit("_", 1)[1]))
    if len(sprites) * SPRITE_ROWS != LOSSLESS_TRAIN + SPRITE_ROWS or base / LOSSLESS_LABELS not in files:
        raise BenchError(f"{base / 'MANIFEST.tsv'}: lists {len(sprites)} sprites; expected 51 PNG files and "
                         f"{LOSSLESS_LABELS}; copy {base.name}/ again from ../shared/data/")
    key = git_blob_sha1((base / "MANIFEST.tsv").read_bytes())[:20]  # the manifest names every byte verified above

    def split(name, warn=print):
        cached = Path(cache_dir) / "decoded" / f"{LOSSLESS_DIR}-{name}-{key}.h5" if cache_dir else None
        n = LOSSLESS_TRAIN if name == "train" else SPRITE_ROWS
        return cached_split(cached, n, lambda: (_decode_sprites(base, sprites, name), ""), str(base), warn)[0]

    splits = {s: (lambda warn=print, s=s: split(s, warn)) for s in ("train", "test")}
    return Source("cifar10-lossless", "original-lossless", base, CIFAR10_CLASSES, splits)


def _decode_sprites(base: Path, sprites: list[Path], split: str) -> Split:
    from PIL import Image

    chosen = sprites[:-1] if split == "train" else sprites[-1:]
    fix = f"copy {base.name}/ again from ../shared/data/"
    images = []
    for path in chosen:
        try:
            with Image.open(path) as im:
                if im.size != (SIZE * SIZE, SPRITE_ROWS) or im.mode not in ("RGB", "RGBA"):
                    raise BenchError(f"{path}: {im.size[0]}x{im.size[1]} {im.mode}; a sprite is 1024x1000 RGB; {fix}")
                images.append(np.asarray(im.convert("RGB"), dtype=np.uint8).reshape(SPRITE_ROWS, SIZE, SIZE, 3))
        except BenchError:
            raise
        except Exception as exc:  # a damaged PNG: PIL raises OSError, SyntaxError, ValueError... all damage
            raise BenchError(f"{path}: cannot decode the sprite ({type(exc).__name__}: {exc}); {fix}") from None
    labels = lossless_labels(base / LOSSLESS_LABELS)
    labels = labels[:LOSSLESS_TRAIN] if split == "train" else labels[LOSSLESS_TRAIN:]
    return class_major(Split(np.concatenate(images), labels))


def lossless_labels(path: Path) -> np.ndarray:
    """The 51,000 labels of the lossless copy (0..9); anything else in the file is one line naming it."""
    try:
        labels = np.asarray(json.loads(path.read_text())["labels"])
        if labels.shape != (LOSSLESS_TRAIN + SPRITE_ROWS,) or labels.dtype.kind not in "iu" \
                or labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES):
            raise ValueError(f"expected {LOSSLESS_TRAIN + SPRITE_ROWS} integers 0..9, got shape {labels.shape} "
                             f"of {labels.dtype}")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: unreadable labels ({type(exc).__name__}: {exc}); pass --data-dir the folder "
                         "holding cifar10-lossless/ as copied from ../shared/data/") from None
    return labels.astype(np.int64)


def class_major(split: Split) -> Split:
    """Images class by class, original order within a class: the image-folder copy's order."""
    return split.subset(np.argsort(split.labels, kind="stable"))


def _test1k_source(root: Path | None, cache_dir, download: bool, strict: bool) -> Source:
    """``cifar10`` with its test split cut to the first 1,000 images of the original test batch."""
    full = _cifar10_source(root, cache_dir, download, strict)
    first = lossless_labels((root or Path(".")) / LOSSLESS_DIR / LOSSLESS_LABELS)[LOSSLESS_TRAIN:]
    counts = np.bincount(first, minlength=len(CIFAR10_CLASSES))

    def test(warn=print):
        split = full.splits["test"](warn=warn)
        if full.variant == "original":  # the batch itself: its first 1,000, class by class
            return class_major(split.subset(np.arange(SPRITE_ROWS)))
        # an image-folder copy lists class by class, NNNN = the image's rank within its class: keep the first
        starts = np.searchsorted(split.labels, np.arange(len(counts)))
        return split.subset(np.concatenate([start + np.arange(n) for start, n in zip(starts, counts)]))

    def train(warn=print):
        split = full.splits["train"](warn=warn)
        return class_major(split) if full.variant == "original" else split

    return Source("cifar10-test1k", full.variant, full.location, CIFAR10_CLASSES, {"train": train, "test": test})


# ---------------------------------------------------------------- SVHN

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}


def _svhn_source(root: Path | None, with_extra: bool) -> Source:
    base = root / "svhn" if root else None
    needed = ["train", "test"] + (["extra"] if with_extra else [])
    if base is None or any(not (base / SVHN_FILES[s]).is_file() for s in needed):
        names = ", ".join(SVHN_FILES[s] for s in needed)
        raise _missing("svhn", f"svhn/{{{names}}}", root,
                       "pass --data-dir (or set BENCH_DATA_DIR) to the folder holding svhn/ with the .mat files "
                       "from http://ufldl.stanford.edu/housenumbers/")
    splits = {s: (lambda warn=print, s=s: read_svhn_mat(base / SVHN_FILES[s])) for s in ("train", "test")}
    if with_extra:
        splits["train"] = lambda warn=print: _concat(read_svhn_mat(base / SVHN_FILES["train"]),
                                                     read_svhn_mat(base / SVHN_FILES["extra"]))
    name = "svhn-extra" if with_extra else "svhn"
    return Source(name, "original", base, tuple(str(d) for d in range(10)), splits)


def read_svhn_mat(path: Path) -> Split:
    """SVHN's MATLAB v5 files: X is 32x32x3xN uint8, y is Nx1 in 1..10 where 10 means digit 0."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=["X", "y"])
        x, y = mat["X"], mat["y"]
    except Exception as exc:
        raise BenchError(f"{path}: not a readable SVHN .mat file ({exc}); re-download it") from None
    if x.ndim != 4 or x.shape[:3] != (SIZE, SIZE, 3) or y.size != x.shape[3]:
        raise BenchError(f"{path}: X has shape {x.shape} and y {y.shape}; expected 32x32x3xN and Nx1")
    labels = y.reshape(-1).astype(np.int64)
    if labels.min() < 1 or labels.max() > 10:
        raise BenchError(f"{path}: labels span {labels.min()}..{labels.max()}; SVHN labels are 1..10")
    return Split(np.ascontiguousarray(x.transpose(3, 0, 1, 2).astype(np.uint8)), labels % 10)


def _concat(a: Split, b: Split) -> Split:
    return Split(np.concatenate([a.images, b.images]), np.concatenate([a.labels, b.labels]))


# ---------------------------------------------------------------- image folders

def _folder_source(path: Path, name: str, cache_dir, strict: bool) -> Source:
    if not path.is_dir():
        raise BenchError(f"{name}: {path} is not a folder; give an image-folder tree <class>/<image>")
    if (path / "train").is_dir():
        split_dirs = {s: path / s for s in ("train", "test") if (path / s).is_dir()}
    else:
        split_dirs = {"train": path}
    classes = tuple(sorted(p.name for p in split_dirs["train"].iterdir() if p.is_dir()))
    if not classes:
        raise BenchError(f"{name}: {split_dirs['train']} has no class subfolders; expected <class>/<image>")
    splits = {s: (lambda warn=print, d=d: cached_folder_split(d, classes, cache_dir, warn, strict))
              for s, d in split_dirs.items()}
    return Source(name, "image-folder", path, classes, splits)


def _has_jpeg(folder: Path) -> bool:
    return any(f.suffix.lower() in (".jpg", ".jpeg") for d in folder.iterdir() if d.is_dir() for f in d.iterdir())
