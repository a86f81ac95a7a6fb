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

import sys
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
        raise _failed(path, exc) from None


def _failed(path: Path, exc: BaseException) -> NativeWriteFailed:
    error = write_error(path, exc if isinstance(exc, OSError) else OSError(0, str(exc)))
    return NativeWriteFailed(str(error))


class _FreedObjects:
    """A write can fail while h5py frees an object (a dataset flushing its chunks as it closes): h5py reports
    that through ``sys.excepthook`` and ``sys.unraisablehook`` as printed tracebacks, not as an exception.
    While a file is written those reports are collected instead, and one of them fails the write. After a
    failure the process is ending, so the hooks stay: objects freed later would only report it again."""

    def __enter__(self):
        self.errors, self.saved = [], (sys.excepthook, sys.unraisablehook)
        excepthook, unraisablehook = self.saved

        def on_exception(kind, value, tb):
            self.errors.append(value) if _in_h5py(tb) else excepthook(kind, value, tb)

        def on_unraisable(info):
            self.errors.append(info.exc_value) if _in_h5py(info.exc_traceback) else unraisablehook(info)

        sys.excepthook, sys.unraisablehook = on_exception, on_unraisable
        return self

    def __exit__(self, kind, value, tb):
        if kind is None and not self.errors:
            sys.excepthook, sys.unraisablehook = self.saved


def _in_h5py(tb) -> bool:
    while tb is not None:
        if "h5py" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


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
    with atomic_write(path) as tmp, _FreedObjects() as freed:
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
        if freed.errors:
            raise _failed(path, freed.errors[0])
