"""The pretrained-weights registry: ``pretrained/manifest.toml``, verified lookups and downloads."""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import BenchError
from ..core.files import atomic_write, write_text
from ..data.cache import default_root
from ..training.checkpoints import read_checkpoint

MANIFEST = Path(__file__).resolve().parents[2] / "pretrained" / "manifest.toml"
PROJECT_DIR = MANIFEST.parent  # weights this project trained itself: pretrained/<folder>/<file>


def git_blob_sha1(data: bytes) -> str:
    """The hash git gives a file's contents: sha1(b"blob <size>\\0" + data)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


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
    with open(MANIFEST, "rb") as f:
        return {name: Entry(name, meta) for name, meta in tomllib.load(f).items()}


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
        arrays = np.load(path, allow_pickle=False)
        found[role] = dict(arrays) if path.suffix == ".npz" else arrays
    if missing:
        raise MissingWeights(entry, missing)
    return found


class MissingWeights(BenchError):
    def __init__(self, entry: Entry, missing: list[WeightFile]):
        self.entry, self.missing = entry, missing
        names = ", ".join(f"{f.name} ({f.role})" for f in missing)
        where = " or ".join(str(d) for d in search_dirs(entry)[:2])
        super().__init__(f"{entry.name}: missing {names}, looked in {where}; "
                         f"pass --weights-dir or run `bench pretrained fetch {entry.name}`")


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


def fetch(entry: Entry, progress=print) -> int:
    """Download every missing file into the cache, verifying each; returns how many were fetched."""
    target = default_root() / "weights" / entry.folder
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

def export_run(run: Path, name: str, title: str) -> Entry:
    """Export a `bench train` run: its weights and a manifest entry with what it was trained on and for how long."""
    state = read_checkpoint(run)
    config = state["config"]
    training = {"data": config["data"], "seed": config["seed"], "wall_s": round(state["wall_s"], 1),
                "machine": state["device"], "batch_size": config["batch_size"]}
    if "D" in state:
        training |= {"epochs": state["epoch"], "steps_into_next_epoch": state["step"]}
    else:
        training |= {"steps": state["step"], "classes": config["classes"]}
    return export(state, name, title, training)


def export(checkpoint: dict, name: str, title: str, training: dict) -> Entry:
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
    with atomic_write(path) as tmp, open(tmp, "wb") as f:  # an interrupted export leaves nothing under the real name
        np.savez(f, **{k: v.cpu().numpy() for k, v in tensors.items()})
    data = path.read_bytes()
    lines = [f"\n[{name}]", f"title = {_toml(title)}", f'encoder = "{family}"', f"architecture = {_toml(arch)}",
             f"folder = {_toml(name)}", 'source = "trained by this project (bench train); weights in pretrained/<folder>/"',
             "training = { " + ", ".join(f"{k} = {_toml(v)}" for k, v in training.items()) + " }",
             f'files = [{{ name = "weights.npz", role = "weights", sha1 = "{git_blob_sha1(data)}", size = {len(data)} }}]']
    write_text(MANIFEST, MANIFEST.read_text() + "\n".join(lines) + "\n")
    return entry(name)


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
