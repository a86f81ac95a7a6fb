"""Image folders: decoding to uint8 32x32 RGB, and the cache of decoded splits.

Decoding 60,000 JPEGs takes a while, so a decoded split is kept in the cache directory (an
HDF5 file we write ourselves, Fletcher-32 checksummed), keyed by the content of the source
files (xxHash over their names and bytes: half a second for 50,000 small JPEGs), so an image
rewritten in place is decoded again even when its size and time stamp did not change.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import xxhash
from PIL import Image

from ..core.errors import BenchError
from ..core.progress import bar
from .hdf5 import writing
from .split import Split

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SIZE = 32


def list_images(folder: Path, classes: tuple[str, ...], warn=print) -> tuple[list[Path], np.ndarray]:
    """Image files under ``folder/<class>/`` and their labels in the dataset's class order.

    Every class needs a folder with at least one image; other files are skipped and counted.
    """
    present = sorted(p.name for p in folder.iterdir() if p.is_dir())
    outside = sorted(p.name for p in folder.iterdir() if not p.is_dir())
    if outside:
        warn(f"{folder}: ignored {len(outside)} {'file' if len(outside) == 1 else 'files'} outside the class "
             f"folders, e.g. {outside[0]}; images belong in <class>/ subfolders")
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise BenchError(f"{folder}: unexpected class folders {unknown}; expected only {list(classes)}")
    missing = [c for c in classes if c not in present]
    if missing:
        raise BenchError(f"{folder}: class folders {missing} are missing; every split needs one folder per class "
                         f"({', '.join(classes)})")
    files, labels, skipped = [], [], []
    for label, cls in enumerate(classes):  # label order is the dataset's class order, never listing order
        entries = sorted(f for f in (folder / cls).iterdir() if f.is_file())
        names = [f for f in entries if f.suffix.lower() in IMAGE_SUFFIXES]
        if not names:
            raise BenchError(f"{folder / cls}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))}); "
                             "every class needs at least one")
        skipped += [f for f in entries if f.suffix.lower() not in IMAGE_SUFFIXES]
        files += names
        labels += [label] * len(names)
    if skipped:
        kinds = sorted({f.suffix.lower() or "(no suffix)" for f in skipped})
        files_are = "file that is" if len(skipped) == 1 else "files that are"
        warn(f"{folder}: skipped {len(skipped)} {files_are} not an image ({', '.join(kinds[:5])}), "
             f"e.g. {skipped[0].relative_to(folder)}")
    return files, np.asarray(labels, dtype=np.int64)


def decode_image(path: Path, size: int = SIZE) -> tuple[np.ndarray, str]:
    """One image as ``size`` x ``size`` RGB (larger ones downsampled with an area filter), and what was
    converted to get there ("" when nothing was)."""
    try:
        with Image.open(path) as im:
            converted = []
            if im.mode != "RGB":
                converted.append(f"{im.mode} -> RGB")
                im = im.convert("RGB")
            if im.size != (size, size):
                converted.append(f"{im.size[0]}x{im.size[1]} -> {size}x{size}")
                im = im.resize((size, size), Image.Resampling.BOX)
            return np.asarray(im, dtype=np.uint8), ", ".join(converted)
    except Exception as exc:
        raise BenchError(f"{path}: cannot read image ({type(exc).__name__}: {exc}); replace or remove the file") from None


def decode_all(files: list[Path], desc: str, size: int = SIZE, converted: list | None = None) -> np.ndarray:
    """Decode many images in parallel threads, as (n, size, size, 3) uint8; ``converted`` collects
    (file, conversion) for every image that was not already ``size`` x ``size`` RGB."""
    out = np.empty((len(files), size, size, 3), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL releases the GIL while decoding
        for i, (img, note) in enumerate(bar(pool.map(decode_image, files, [size] * len(files), chunksize=256),
                                            total=len(files), desc=desc, unit="img")):
            out[i] = img
            if note and converted is not None:
                converted.append((files[i], note))
    return out


def conversion_notice(folder: Path, converted: list[tuple[Path, str]]) -> str:
    """One line: how many images were converted, which conversions, the first file ("" for none)."""
    if not converted:
        return ""
    kinds = Counter(note for _, note in converted)
    listed = "; ".join(f"{note}: {n}" for note, n in kinds.most_common(3))
    return (f"{folder}: converted {len(converted)} {'image' if len(converted) == 1 else 'images'} that "
            f"{'was' if len(converted) == 1 else 'were'} not {SIZE}x{SIZE} RGB ({listed}), e.g. "
            f"{converted[0][0].relative_to(folder)}")


def content_key(folder: Path, files: list[Path], labels: np.ndarray) -> str:
    """xxHash over every file's relative name and bytes, and the labels."""
    h = xxhash.xxh3_128()
    for f in files:
        h.update(str(f.relative_to(folder)).encode() + b"\0")
        h.update(f.read_bytes())
    h.update(labels.tobytes())
    return h.hexdigest()[:20]


def cached_folder_split(folder: Path, classes: tuple[str, ...], cache_dir: Path | None, warn=print,
                        strict: bool = False):
    """A split read from ``folder/<class>/<image>``, decoded once and then read from the cache.

    Images that are not already 32x32 RGB are converted and reported in one line (when read
    from the cache too), or refused with ``strict``.
    """
    files, labels = list_images(folder, classes, warn)
    cached = Path(cache_dir) / "decoded" / f"{folder.name}-{content_key(folder, files, labels)}.h5" if cache_dir else None
    refuse = "; --strict refuses them: replace them with {SIZE}x{SIZE} RGB images"

    def decode():
        converted = []
        images = decode_all(files, f"decode {folder.name}", converted=converted)
        notice = conversion_notice(folder, converted)
        if notice and strict:
            raise BenchError(notice + refuse.format(SIZE=SIZE))
        return Split(images, labels), notice

    split, notice = cached_split(cached, len(files), decode, str(folder), warn)
    if notice and strict:
        raise BenchError(notice + refuse.format(SIZE=SIZE))
    if notice:
        warn(f"warning: {notice}; --strict refuses such images")
    return split


def cached_split(cached: Path | None, n_images: int, decode, source: str, warn=print):
    """(split, notice) stored at ``cached`` (a content-keyed name), or ``decode()``'s, then stored there
    atomically; the notice says what decoding had to convert ("" for nothing)."""
    if cached is not None and cached.is_file():
        try:
            with h5py.File(cached, "r") as f:  # reading every chunk checks its Fletcher-32 checksum
                split = Split(f["images"][...], f["labels"][...])
                notice = str(f.attrs.get("notice", ""))
            if len(split) == n_images:
                return split, notice
            problem = f"holds {len(split)} images, not {n_images}"
        except (OSError, KeyError) as exc:
            problem = f"damaged ({type(exc).__name__}: {exc})"
        warn(f"ignoring decoded-image cache {cached}: {problem}; decoding again")
        cached.unlink(missing_ok=True)
    split, notice = decode()
    if cached is not None:
        with writing(cached) as out:
            out.array("images", split.images)
            out.array("labels", split.labels)
            out.attrs({"source": source, "notice": notice})
    return split, notice
