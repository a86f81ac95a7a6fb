"""Files that a reader never sees half-written: atomic replaces and locked CSV appends.

``atomic_write`` hands the caller a temporary path beside the target; only a complete,
synced file is renamed onto the target. Temporary names carry the writer's host, process
id and a random token, so concurrent writers never meet, and each writer removes only its
own (``remove_stale`` removes others' only once their process is provably gone).

``append_csv`` appends rows under an exclusive lock on ``<file>.lock`` (the ``filelock``
package): the header check, a migration to new columns, the repair of a torn last row and
the append itself happen inside one lock, so concurrent runs lose nothing and write one
header.

Every OS error (disk full, read-only folder, a parent that is a file) becomes one
``BenchError`` line naming the path.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import re
import secrets
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from .errors import BenchError

_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:20] or "host"
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<host>[A-Za-z0-9]*)-(?P<pid>\d+)-[0-9a-f]+$")
LOCK_TIMEOUT_S = 600


def git_blob_sha1(data: bytes) -> str:
    """The hash git gives a file's contents: sha1(b"blob <size>\\0" + data); released files are named by it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def temporary_path(path: Path) -> Path:
    """A hidden name beside ``path`` that only this writer uses."""
    return path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}")


def remove_stale(path: Path) -> None:
    """Delete temporaries of ``path`` left by writers on this host whose process no longer exists."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        match = _TEMPORARY.match(tmp.name)
        if match and match["host"] == _HOST and not _alive(int(match["pid"])):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_error(path: Path, exc: OSError) -> BenchError:
    """One line for a failed write: what, where, and the usual fixes. A library's message that carries an
    errno (HDF5's does, over several lines) is reduced to that errno's meaning."""
    number = exc.errno or _errno_in(str(exc))
    reason = os.strerror(number) if number else " ".join(str(exc).split())[:120]
    fix = "free disk space or choose another location" if number in (errno.ENOSPC, errno.EDQUOT) else \
        "choose a writable location, or free disk space"
    return BenchError(f"{path}: cannot write ({reason}); {fix}")


def _errno_in(message: str) -> int | None:
    found = re.search(r"errno = (\d+)", message)
    return int(found.group(1)) if found else None


def ensure_free_space(folder: Path, needed: int, what: str) -> None:
    """Refuse, before the work that would fill it, a disk without ``needed`` bytes free at ``folder``."""
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is None:
        return
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise BenchError(f"{folder}: {what} needs {needed / 1e9:.2f} GB and the disk has {free / 1e9:.2f} GB free; "
                         "free disk space, or pass --cache-dir (or BENCH_CACHE_DIR) on a larger disk")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success sync it and rename it onto ``path``.

    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is
    untouched; an OSError becomes one BenchError naming ``path``.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        _remove_quietly(tmp)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return Path(path)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (``<path>.lock``), creating its folder if needed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        open(str(path) + ".lock", "a").close()  # an unwritable place is an error now, not a lock that never frees
        lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
        with lock:
            yield
    except Timeout:
        raise BenchError(f"{path}: another process held its lock for {LOCK_TIMEOUT_S} s; "
                         f"if none is running, delete {path}.lock") from None
    except OSError as exc:
        raise write_error(path, exc) from None


def read_header(path: Path) -> tuple[str, ...] | None:
    """The CSV header of ``path`` (None when the file is absent or empty); one line if unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            first = f.readline()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise BenchError(f"{path}: is a folder; give a CSV file path") from None
    except NotADirectoryError:
        raise BenchError(f"{path}: a parent of this path is a file; give a path in a folder") from None
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not a text CSV file; move it aside or give another path") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not first.strip():
        return None
    return tuple(next(csv.reader([first])))


def check_csv(path: str | os.PathLike, columns: tuple[str, ...], kind: str = "result") -> None:
    """Refuse, in one line, a CSV whose columns are not (a subset of) ``columns``; before any work."""
    path = Path(path)
    header = read_header(path)
    if header is not None and not set(header) <= set(columns):
        unknown = sorted(set(header) - set(columns))
        raise BenchError(f"{path}: columns {unknown[:5]} are not {kind} columns; "
                         "move the file aside or give another path")
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise BenchError(f"{path}: {folder} is a file, not a folder; give a path in a folder")
    if folder is not None and not os.access(folder, os.W_OK):
        raise BenchError(f"{path}: {folder} is not writable; give a path in a writable folder")
    if folder == path.parent:  # try it for real: permissions do not tell (root, read-only mounts, /proc)
        trial = temporary_path(path)  # no lock file: a run refused now leaves nothing behind
        try:
            trial.open("x").close()
            if header is not None:
                open(path, "r+b").close()
        except OSError as exc:
            raise write_error(path, exc) from None
        finally:
            _remove_quietly(trial)


def check_folder(folder: Path, what: str) -> None:
    """Refuse, before any work, a folder that could never be created or written (a parent that is a file)."""
    folder = Path(folder)
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise BenchError(f"{folder}: {existing} is a file, not a folder; give another {what}")
    if existing is not None and not os.access(existing, os.W_OK):
        raise BenchError(f"{folder}: {existing} is not writable; give another {what}")


def _truncate_quietly(path: Path, size: int) -> None:
    try:
        os.truncate(path, size)
    except OSError:
        pass


def _remove_quietly(path: Path) -> None:
    """Cleanup that never hides the error being reported: its own failure is ignored."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def append_csv(path: str | os.PathLike, rows: list[dict], columns: tuple[str, ...], kind: str = "result",
               warn=print) -> None:
    """Append ``rows`` under the file's lock; write the header once, migrate older column sets.

    A file written with a subset of ``columns`` is rewritten with all of them (new ones
    empty) before the append. A torn last row (a writer killed mid-line) is moved to
    ``<path>.torn`` with a one-line warning, never glued to the next row.
    """
    path = Path(path)
    check_csv(path, columns, kind)
    with locked(path):
        header = read_header(path)
        if header is not None:
            _set_aside_torn_row(path, warn)
            if header != columns:
                _migrate(path, columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        if header is None:
            writer.writeheader()
        writer.writerows(rows)
        size = path.stat().st_size if path.exists() else 0
        try:
            with open(path, "a", newline="", encoding="utf-8") as f:
                f.write(buffer.getvalue())  # one write of whole lines
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            _truncate_quietly(path, size)  # a write cut short by a full disk leaves no partial row
            raise write_error(path, exc) from None


def _set_aside_torn_row(path: Path, warn) -> None:
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    with open(str(path) + ".torn", "ab") as f:
        f.write(data[cut:] + b"\n")
    with atomic_write(path) as tmp:
        tmp.write_bytes(data[:cut])
    warn(f"warning: {path}: its last row was incomplete (a run killed while writing it); "
         f"moved it to {path}.torn")


def _migrate(path: Path, columns: tuple[str, ...]) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
