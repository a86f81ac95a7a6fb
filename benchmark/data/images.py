"""Image folders: decoding to uint8 32x32 RGB, and the cache of decoded splits.

Decoding 60,000 JPEGs takes a while, so a decoded split is kept in the cache directory
(an HDF5 file we write ourselves), keyed by the source files' names, sizes and mtimes.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from ..core.errors import BenchError
from ..core.files import atomic_write
from ..core.progress import bar

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SIZE = 32


def list_images(folder: Path, classes: tuple[str, ...]) -> tuple[list[Path], np.ndarray]:
    """Image files under ``folder/<class>/`` and their labels in the dataset's class order."""
    present = sorted(p.name for p in folder.iterdir() if p.is_dir())
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise BenchError(f"{folder}: unexpected class folders {unknown}; expected only {list(classes)}")
    files, labels = [], []
    for label, cls in enumerate(classes):  # label order is the dataset's class order, never listing order
        if not (folder / cls).is_dir():
            continue
        names = sorted(f for f in (folder / cls).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        files += names
        labels += [label] * len(names)
    if not files:
        raise BenchError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files, np.asarray(labels, dtype=np.int64)


def decode_image(path: Path, size: int = SIZE) -> np.ndarray:
    """Read one image as ``size`` x ``size`` RGB, downsampling larger ones with an area (box) filter."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BOX)
            return np.asarray(im, dtype=np.uint8)
    except Exception as exc:
        raise BenchError(f"{path}: cannot read image ({type(exc).__name__}: {exc}); replace or remove the file") from None


def decode_all(files: list[Path], desc: str, size: int = SIZE) -> np.ndarray:
    """Decode many images in parallel threads, as (n, size, size, 3) uint8."""
    out = np.empty((len(files), size, size, 3), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL releases the GIL while decoding
        for i, img in enumerate(bar(pool.map(decode_image, files, [size] * len(files), chunksize=256), total=len(files),
                                    desc=desc, unit="img")):
            out[i] = img
    return out


def cached_folder_split(folder: Path, classes: tuple[str, ...], cache_dir: Path | None):
    """A split read from ``folder/<class>/<image>``, decoded once and then read from the cache."""
    from .datasets import Split

    files, labels = list_images(folder, classes)
    listing = hashlib.sha1()
    for f in files:
        st = f.stat()
        listing.update(f"{f.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    key = listing.hexdigest()[:16]
    cached = Path(cache_dir) / "decoded" / f"{folder.name}-{key}.h5" if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            with h5py.File(cached, "r") as f:
                return Split(f["images"][...], f["labels"][...])
        except (OSError, KeyError):
            cached.unlink(missing_ok=True)  # unreadable: decode again below
    split = Split(decode_all(files, f"decode {folder.name}"), labels)
    if cached is not None:
        with atomic_write(cached) as tmp, h5py.File(tmp, "w") as f:
            f["images"], f["labels"] = split.images, split.labels
            f.attrs["source"] = str(folder)
    return split
