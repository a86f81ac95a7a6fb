"""The pretrained-weights registry: ``pretrained/manifest.toml``, verified lookups and downloads."""

from __future__ import annotations

import json
import os
import site
import sys
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import BenchError
from ..core.files import atomic_write, git_blob_sha1, write_text
from ..core.finite import check_finite
from ..data.cache import default_root
from ..training.checkpoints import read_checkpoint
from . import published

def _registry_folder() -> Path:
    """pretrained/ of the source checkout (editable installs, tests), else the copy a wheel installs
    under <prefix>/share/bench/pretrained (the environment's prefix, or the user base for --user)."""
    checkout = Path(__file__).resolve().parents[2] / "pretrained"
    installed = [Path(base) / "share" / "bench" / "pretrained" for base in (sys.prefix, site.USER_BASE or "")]
    return next((p for p in [checkout, *installed] if (p / "manifest.toml").is_file()), checkout)


PROJECT_DIR = _registry_folder()  # weights this project trained itself: pretrained/<folder>/<file>
MANIFEST = PROJECT_DIR / "manifest.toml"


@dataclass(frozen=True)
class WeightFile:
    name: str
    role: str
    sha1: str
    size: int | None


@dataclass(frozen=True)
class Entry:
    name: str
    meta: dict

    @property
    def folder(self) -> str:
        return self.meta["folder"]

    def files(self, generator: bool = False) -> list[WeightFile]:
        key = "generator_files" if generator else "files"
        return [WeightFile(f["name"], f["role"], f["sha1"], f.get("size")) for f in self.meta.get(key, [])]


def manifest() -> dict[str, Entry]:
    try:
        with open(MANIFEST, "rb") as f:
            return {name: Entry(name, meta) for name, meta in tomllib.load(f).items()}
    except FileNotFoundError:
        raise BenchError(f"{MANIFEST}: the registry of pretrained models is missing; reinstall bench") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{MANIFEST}: not valid TOML ({exc}); restore it from the repository") from None


def provenance(entry: Entry) -> str:
    """One line: the paper's figures for released weights, the training budget for the project's own."""
    if entry.meta.get("paper"):
        return f"paper: {published.quote(entry.name)}"
    t = entry.meta.get("training", {})
    budget = ", ".join(f"{k} {t[k]:,}" if isinstance(t[k], int) else f"{k} {t[k]}"
                       for k in ("epochs", "steps", "classes", "images_seen") if k in t)
    return (f"trained here: {budget}; {t.get('wall_s', '?')} s on {t.get('machine', '?')}"
            + (f"; weights stored in {entry.meta['dtype']}" if "dtype" in entry.meta else ""))


def entry(name: str) -> Entry:
    entries = manifest()
    if name not in entries:
        raise BenchError(f"no pretrained model {name!r} in {MANIFEST}; known: {', '.join(entries)}")
    return entries[name]


def search_dirs(entry: Entry) -> list[Path]:
    dirs = []
    root = os.environ.get("BENCH_WEIGHTS_DIR")
    if root:
        root = Path(root).expanduser()
        dirs += [root / entry.folder, root / "dcgan_code" / entry.folder, root]
    dirs.append(PROJECT_DIR / entry.folder)
    dirs.append(default_root() / "weights" / entry.folder)
    return dirs


def locate(entry: Entry, f: WeightFile) -> Path | None:
    for d in search_dirs(entry):
        if (d / f.name).is_file():
            return d / f.name
    return None


def verify(path: Path, f: WeightFile) -> None:
    digest = git_blob_sha1(path.read_bytes())
    if digest != f.sha1:
        raise BenchError(f"{path}: git blob SHA-1 is {digest}, expected {f.sha1}; "
                         f"the file is corrupt or a different release: delete it and run `bench pretrained fetch`")


def load_arrays(entry: Entry, roles: list[str], generator: bool = False) -> dict[str, np.ndarray]:
    """Verified arrays for the given roles; a missing file raises naming every missing file."""
    by_role = {f.role: f for f in entry.files(generator)}
    found, missing = {}, []
    for role in roles:
        f = by_role[role]
        path = locate(entry, f)
        if path is None:
            missing.append(f)
            continue
        verify(path, f)
        found[role] = read_arrays(path)
    if missing:
        raise MissingWeights(entry, missing)
    return found


def read_arrays(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    """A .npy array or a .npz file's arrays, never unpickled; damage, an object array or a non-finite value
    is one line naming the file."""
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            arrays = {k: loaded[k] for k in loaded.files} if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    except Exception as exc:  # truncated, a zip with a bad member, pickled objects: all damage
        raise BenchError(f"{path}: not a readable array file ({type(exc).__name__}: {exc}); restore it or run "
                         "`bench pretrained fetch`") from None
    for name, array in (arrays.items() if isinstance(arrays, dict) else [(path.name, arrays)]):
        if not np.issubdtype(array.dtype, np.number):
            raise BenchError(f"{path}: {name} holds {array.dtype} values, not numbers; restore the file")
        check_finite(array, f"{path}: {name}", "the file is damaged; restore it or run `bench pretrained fetch`")
    return arrays


class MissingWeights(BenchError):
    def __init__(self, entry: Entry, missing: list[WeightFile]):
        self.entry, self.missing = entry, missing
        names = ", ".join(f.name for f in missing[:2]) + (f" and {len(missing) - 2} more" if len(missing) > 2 else "")
        root = os.environ.get("BENCH_WEIGHTS_DIR")
        where = f"under --weights-dir {root}" if root else "(no --weights-dir given and BENCH_WEIGHTS_DIR is unset)"
        super().__init__(f"{entry.name}: {len(missing)} weight files missing ({names}) {where}; pass --weights-dir "
                         f"the folder holding {entry.folder}/, or run `bench pretrained fetch {entry.name}`")


def status(entry: Entry) -> list[tuple[WeightFile, str]]:
    """Each file with 'verified', 'missing' or 'BAD HASH'."""
    out = []
    for f in entry.files() + entry.files(generator=True):
        path = locate(entry, f)
        if path is None:
            out.append((f, "missing"))
            continue
        try:
            verify(path, f)
            out.append((f, "verified"))
        except BenchError:
            out.append((f, "BAD HASH"))
    return out


def fetch(entry: Entry, weights_dir=None, progress=print) -> int:
    """Download every missing file into ``weights_dir/<folder>`` (default: the cache), verifying each;
    returns how many were fetched."""
    target = (Path(weights_dir).expanduser() if weights_dir else default_root() / "weights") / entry.folder
    fetched = 0
    for f, state in status(entry):
        if state == "verified":
            continue
        url = entry.meta["url_base"] + f.name
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
        except OSError as exc:
            raise BenchError(f"cannot download {url} ({getattr(exc, 'reason', exc)}); "
                             f"copy the file into {target} or point --weights-dir at a copy") from None
        digest = git_blob_sha1(data)
        if digest != f.sha1:
            raise BenchError(f"{url}: git blob SHA-1 is {digest}, expected {f.sha1}; refusing it")
        with atomic_write(target / f.name) as tmp:
            tmp.write_bytes(data)
        progress(f"fetched {f.name} ({len(data)} bytes, verified)")
        fetched += 1
    return fetched


# ---------------------------------------------------------------- the project's own weights

def export_run(run: Path, name: str, title: str, half: bool = False) -> Entry:
    """Export a `bench train` run: its weights and a manifest entry with what it was trained on and for how long."""
    state = read_checkpoint(run)
    config = state["config"]
    training = {"data": config["data"], "seed": config["seed"], "wall_s": round(state["wall_s"], 1),
                "machine": state["device"], "batch_size": config["batch_size"]}
    if "D" in state:
        training |= {"epochs": state["epoch"], "steps_into_next_epoch": state["step"]}
        if "images" in state:  # checkpoints before it was recorded leave it out rather than guess
            per_epoch = int(state["images"]) // config["batch_size"]
            training["images_seen"] = (state["epoch"] * per_epoch + state["step"]) * config["batch_size"]
    else:
        recent = state["recent"].tolist() if "recent" in state else []
        training |= {"steps": state["step"], "classes": config["classes"],
                     "images_seen": state["step"] * config["batch_size"]}
        if recent:
            training["surrogate_acc"] = round(sum(recent) / len(recent), 3)
    return export(state, name, title, training, half)


def export(checkpoint: dict, name: str, title: str, training: dict, half: bool = False) -> Entry:
    """Save a training run's encoder weights as pretrained/<name>/weights.npz and add its manifest entry.

    ``checkpoint`` is a loaded `bench train` checkpoint: a DCGAN run keeps its discriminator,
    an Exemplar-CNN run its network without the surrogate-class head. The optimiser state is
    left out, so the file is a few MB.
    """
    if name in manifest():
        raise BenchError(f"{MANIFEST} already has an entry {name!r}; choose another --name")
    if "D" in checkpoint:
        family, arch, tensors = "dcgan", checkpoint["config"]["arch"], checkpoint["D"]
    else:
        family, arch = "exemplar-cnn", checkpoint["config"]["net"]
        tensors = {k: v for k, v in checkpoint["net"].items() if not k.startswith("head.")}
    path = PROJECT_DIR / name / "weights.npz"
    arrays = {k: (v.half() if half and v.is_floating_point() else v).cpu().numpy() for k, v in tensors.items()}
    with atomic_write(path) as tmp, open(tmp, "wb") as f:  # an interrupted export leaves nothing under the real name
        np.savez(f, **arrays)
    data = path.read_bytes()
    lines = [f"\n[{name}]", f"title = {_toml(title)}", f'encoder = "{family}"', f"architecture = {_toml(arch)}",
             f"folder = {_toml(name)}", 'source = "trained by this project (bench train); weights in pretrained/<folder>/"']
    if half:
        lines.append('dtype = "float16"')
    lines += ["training = { " + ", ".join(f"{k} = {_toml(v)}" for k, v in training.items()) + " }",
              f'files = [{{ name = "weights.npz", role = "weights", sha1 = "{git_blob_sha1(data)}", size = {len(data)} }}]']
    write_text(MANIFEST, MANIFEST.read_text() + "\n".join(lines) + "\n")
    _ship_in_wheel(name)
    return entry(name)


def _ship_in_wheel(name: str) -> None:
    """Add the model's folder to pyproject.toml's data-files, so that a wheel installs its weights too."""
    pyproject = PROJECT_DIR.parent / "pyproject.toml"
    if not pyproject.is_file():
        return
    text = pyproject.read_text()
    line = f'"share/bench/pretrained/{name}" = ["pretrained/{name}/*.npz"]'
    if line in text:
        return
    last = text.rindex('"share/bench/pretrained')
    end = text.index("\n", last) + 1
    write_text(pyproject, text[:end] + line + "\n" + text[end:])


def _toml(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def project_arrays(name: str) -> tuple[dict[str, np.ndarray], Entry, str]:
    """A project-trained model's verified arrays, its entry and the file's hash (for fingerprints)."""
    e = entry(name)
    return load_arrays(e, ["weights"])["weights"], e, e.files()[0].sha1
