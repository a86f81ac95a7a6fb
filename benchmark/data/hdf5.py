"""The one way the project writes an HDF5 file (feature caches, decoded images).

``writing(path)`` opens a file under a temporary name unique to the writer, hands out a
``Writer`` whose every call into HDF5 is checked, and renames the file into place only when
the block completes. Any failure inside HDF5 (a full disk surfaces as an ``OSError`` or a
``RuntimeError``, sometimes only when the file is flushed at close) becomes one
``NativeWriteFailed`` line naming the file and the errno's meaning; the temporary file is
removed. The command line then ends the process at once: HDF5 would crash at exit flushing a
half-closed file. Every dataset is stored with a Fletcher-32 checksum per chunk, which every
read verifies.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from ..core.errors import NativeWriteFailed
from ..core.files import atomic_write, remove_stale, write_error


def checked(path: Path, action):
    """Run one HDF5 write; a failure is one line naming ``path``."""
    try:
        return action()
    except (OSError, RuntimeError, ValueError) as exc:  # ValueError: h5py on a file HDF5 could no longer write
        error = write_error(path, exc if isinstance(exc, OSError) else OSError(0, str(exc)))
        raise NativeWriteFailed(str(error)) from None


class Writer:
    """The open file of ``writing``: datasets, attributes and row blocks, each write checked."""

    def __init__(self, file: h5py.File, path: Path):
        self.file, self.path = file, path

    def array(self, name: str, data: np.ndarray, group: str = "") -> None:
        """Store a whole array with a Fletcher-32 checksum per chunk (scalars and empty arrays as they are)."""
        data = np.asarray(data)

        def store():
            where = self.file.require_group(group) if group else self.file
            if data.ndim == 0 or data.size == 0:
                where[name] = data
            else:
                where.create_dataset(name, data=data, chunks=True, fletcher32=True)

        checked(self.path, store)

    def group(self, name: str) -> None:
        checked(self.path, lambda: self.file.require_group(name))

    def rows(self, name: str, shape: tuple[int, int], dtype, chunk_rows: int) -> "Rows":
        """A dataset filled block by block (``Rows.append``), checksummed per chunk of ``chunk_rows`` rows."""
        n = shape[0]
        dataset = checked(self.path, lambda: self.file.create_dataset(
            name, shape=shape, dtype=dtype, fletcher32=bool(n), chunks=(min(chunk_rows, n), shape[1]) if n else None))
        return Rows(dataset, self.path)

    def attrs(self, values: dict) -> None:
        checked(self.path, lambda: self.file.attrs.update(values))


class Rows:
    def __init__(self, dataset, path: Path):
        self.dataset, self.path, self.filled = dataset, path, 0

    def append(self, block: np.ndarray) -> None:
        checked(self.path, lambda: self.dataset.__setitem__(slice(self.filled, self.filled + len(block)), block))
        self.filled += len(block)


@contextmanager
def writing(path: Path) -> Iterator[Writer]:
    """Write the HDF5 file ``path`` whole or not at all (see the module docstring)."""
    path = Path(path)
    remove_stale(path)  # left by a killed writer
    with atomic_write(path) as tmp:
        file = checked(path, lambda: h5py.File(tmp, "w"))
        completed = False
        try:
            yield Writer(file, path)
            completed = True
        finally:
            try:
                checked(path, file.close)  # HDF5 flushes here: a full disk can surface now
            except NativeWriteFailed:
                if completed:
                    raise
