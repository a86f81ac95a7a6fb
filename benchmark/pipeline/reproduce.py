"""`bench reproduce`: rerun a recorded row's command and set the new figures beside the recorded ones.

A row's ``command`` is pasted back through the same command line, in a fresh process, with
its results (and, unless told otherwise, its cache) in a scratch folder, so the record is
never touched. Only ``bench run`` commands are rerun. A results file is data: an encoder spec
read from it that names a Python module (``module:factory``) is refused before anything is
imported, unless the caller names that module (``--allow-module``). Options
that name places (``--results``, ``--cache-dir``) are replaced; data and weights come from
this machine's ``--data-dir``/``--weights-dir`` or environment.
"""

from __future__ import annotations

import csv
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core import provenance
from ..core.errors import BenchError

PLACES = ("--results", "--cache-dir", "--data-dir", "--weights-dir")  # options whose values are this machine's
COMPARED = ("dims", "n_train", "n_test", "data_variant", "fingerprint")


def read_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise BenchError(f"{path}: cannot read the results ({exc.strerror or exc})") from None


def select(rows: list[dict], position: int | None, filters: dict[str, str], path: Path) -> dict:
    """The row at ``position`` (1-based, as `bench reproduce --list` numbers them) or the latest row matching
    every filter (the probe by its name, e.g. knn for knn:k=20)."""
    if position is not None:
        if not 1 <= position <= len(rows):
            raise BenchError(f"{path}: has rows 1..{len(rows)}; --row {position} is not one of them")
        return rows[position - 1]
    found = [row for row in rows if all(_value(row, k) == v for k, v in filters.items() if v)]
    if not found:
        wanted = ", ".join(f"{k}={v}" for k, v in filters.items() if v)
        raise BenchError(f"{path}: no row with {wanted}; `bench reproduce --list` shows the rows")
    return found[-1]


def _value(row: dict, key: str) -> str:
    value = row.get(key) or ""
    return (value or "svm").split(":")[0] if key == "probe" else value


def command_args(row: dict) -> list[str]:
    """The row's `bench run` arguments without the options that name places."""
    text = row.get("command") or ""
    if not text:
        raise BenchError(f"the row of {row.get('time')} ({row.get('encoder')}) records no command; it predates "
                         "recorded commands: rerun it by hand")
    try:
        words = shlex.split(text)
    except ValueError:
        raise BenchError(f"the row of {row.get('time')}: its command is not a shell command line: {text!r}") from None
    if words[:2] != ["bench", "run"]:
        raise BenchError(f"the row of {row.get('time')}: only `bench run` commands are rerun, not {text!r}")
    args, skip = [], False
    for word in words[1:]:
        if skip:
            skip = False
            continue
        name = word.split("=", 1)[0]
        if name in PLACES:
            skip = "=" not in word
            continue
        args.append(word)
    return args


@dataclass
class Reproduction:
    recorded: dict
    new: dict
    tolerance: float

    def lines(self) -> list[str]:
        r, n = self.recorded, self.new
        out = [f"command: {r['command']}",
               f"recorded: test {float(r['test_acc']):.2f}%  val {float(r['val_acc']):.2f}%  "
               f"{_setting(r)}  ({r.get('commit') or 'code version unrecorded'}, {r.get('device')})",
               f"now:      test {float(n['test_acc']):.2f}%  val {float(n['val_acc']):.2f}%  "
               f"{_setting(n)}  ({n.get('commit')}, {n.get('device')})"]
        worst = max(abs(float(r[k]) - float(n[k])) for k in ("test_acc", "val_acc"))
        if worst <= self.tolerance:
            out.append(f"reproduced: accuracies within {self.tolerance:g} points (largest difference {worst:.2f})")
        else:
            out.append(f"NOT reproduced: accuracies differ by up to {worst:.2f} points (tolerance {self.tolerance:g}); "
                       + self.why())
        return out

    def why(self) -> str:
        r, n = self.recorded, self.new
        differs = [k for k in COMPARED if (r.get(k) or "") != (n.get(k) or "")]
        reasons = []
        if "fingerprint" in differs:
            reasons.append(f"the encoder's fingerprint differs ({r.get('fingerprint')} -> {n.get('fingerprint')}: "
                           "other weights or encoder code)")
        if any(k in differs for k in ("n_train", "n_test", "data_variant")):
            reasons.append("the data differ (" + ", ".join(f"{k} {r.get(k)} -> {n.get(k)}" for k in differs
                                                         if k in ("n_train", "n_test", "data_variant")) + ")")
        if (r.get("commit") or "") != (n.get("commit") or ""):
            reasons.append(f"the code differs ({r.get('commit') or 'unrecorded'} -> {n.get('commit')})")
        if (r.get("device") or "") != (n.get("device") or ""):
            reasons.append(f"the device differs ({r.get('device')} -> {n.get('device')})")
        return "; ".join(reasons) or "same code, data and weights: the run is not deterministic here"


def _setting(row: dict) -> str:
    return f"k={row['k']}, T={row['t']}" if row.get("k") else f"C={float(row['C']):.3g}"


def check_modules(args: list[str], allowed: tuple[str, ...], row: dict) -> None:
    """Refuse a recorded ``--features`` that would import a Python module the caller did not name."""
    from ..encoders.registry import module_of

    specs = [word.split("=", 1)[1] for word in args if word.startswith("--features=")]
    specs += [args[i + 1] for i, word in enumerate(args[:-1]) if word == "--features"]
    for spec in specs:
        module = module_of(spec)
        if module is not None and module not in allowed:
            raise BenchError(f"the row of {row.get('time')}: its encoder {spec!r} names the Python module {module!r}; "
                             f"a results file is data, so it is not imported; if you trust that module, rerun with "
                             f"--allow-module {module}")


def reproduce(path: Path, position: int | None, filters: dict[str, str], tolerance: float,
              cache_dir: str | None = None, log=print, allow_modules: tuple[str, ...] = ()) -> Reproduction:
    """Rerun the chosen row's command into a scratch results file (and cache, unless ``cache_dir``)."""
    recorded = select(read_rows(path), position, filters, path)
    args = command_args(recorded)
    check_modules(args, allow_modules, recorded)
    with tempfile.TemporaryDirectory(prefix="bench-reproduce-") as scratch:
        results = Path(scratch) / "runs.csv"
        extra = ["--results", str(results), "--cache-dir", cache_dir or str(Path(scratch) / "cache")]
        log(f"rerunning: {shlex.join(['bench', *args])} (results and cache in {scratch})")
        proc = subprocess.run([sys.executable, "-m", "benchmark.cli", *args, *extra])
        if proc.returncode != 0:
            raise BenchError(f"the rerun of {recorded['command']!r} failed (exit {proc.returncode}); see above")
        new = read_rows(results)[-1]
    new["commit"] = new.get("commit") or provenance.code_version()
    return Reproduction(recorded, new, tolerance)


def listing(path: Path) -> list[str]:
    """Every row, numbered as --row takes them."""
    return [f"{i:>4}  {r.get('dataset')}  {r.get('protocol')}  {r.get('probe') or 'svm'}  {r.get('encoder')}  "
            f"test {r.get('test_acc')}  {r.get('command') or '(no command recorded)'}"
            for i, r in enumerate(read_rows(path), 1)]
