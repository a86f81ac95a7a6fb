"""Shared fixtures: small datasets written in each real format, and the optional ../shared folder."""

import os

# One thread per test process (and every process it starts): the tests' matrices are small, and OpenMP's
# spinning threads slow a run tenfold or more on a machine whose cores something else is using.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import pickle
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

from benchmark.data.datasets import CIFAR10_CLASSES

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("BENCH_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
WEIGHTS = SHARED / "pretrained" / "dcgan_code"


class Ran(NamedTuple):
    code: int
    lines: list  # stderr's non-empty lines, progress bars left out
    out: str
    err: str


def bench(*args, cwd=None, env=None, stdin=None, executable=None) -> Ran:
    """`bench ARGS` in a fresh process, as a user runs it (``executable``: another install's bench script), from
    this folder unless ``cwd`` says (so that ``conftest:Factory`` specs are found)."""
    command = [str(executable)] if executable else [sys.executable, "-m", "benchmark.cli"]
    proc = subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=cwd or HERE, env=env,
                          input=stdin)
    return Ran(proc.returncode, _lines(proc.stderr), proc.stdout, proc.stderr)


def _lines(stderr: str) -> list[str]:
    """Standard error's non-empty lines, progress bars left out."""
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]


def invoke(*args, stdin=None):
    """`bench ARGS` in this process through the click group: click's result (exit_code, output, exception)."""
    from click.testing import CliRunner

    from benchmark.cli.commands import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True, input=stdin)


def console(monkeypatch, capsys, *args, stdin: str = "") -> Ran:
    """`bench ARGS` in this process as the console script runs it (one-line errors, exit codes): what ``bench``
    returns, without a fresh interpreter's start-up (for runs that need no process of their own)."""
    import io

    from benchmark.cli import main

    monkeypatch.setattr(sys, "argv", ["bench", *map(str, args)])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return Ran(code, _lines(out.err), out.out, out.err)


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests skip cleanly where PyTorch sees no CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="no CUDA device"))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets its own cache and results file, and no inherited data or weights locations."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results" / "runs.csv"))
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("BENCH_WEIGHTS_DIR", raising=False)


@pytest.fixture
def weights_dir(monkeypatch):
    if not WEIGHTS.is_dir():
        pytest.skip(f"released DCGAN weights not found at {WEIGHTS}")
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(WEIGHTS))
    return WEIGHTS


def class_images(n_per_class, n_classes=10, seed=0, size=32):
    """Images whose mean colour depends on the class, so a linear probe can learn them."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(n_classes):
        base = np.array([(c * 37) % 256, (c * 91) % 256, (c * 53) % 256], np.float32)
        noise = rng.normal(0, 25, size=(n_per_class, size, size, 3))
        images.append(np.clip(base + noise, 0, 255).astype(np.uint8))
        labels += [c] * n_per_class
    return np.concatenate(images), np.asarray(labels)


def write_image_folder(root: Path, classes, n_per_class, seed=0, size=32, fmt="png"):
    images, labels = class_images(n_per_class, len(classes), seed, size)
    for i, (img, label) in enumerate(zip(images, labels)):
        d = root / classes[label]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:04d}.{fmt}")
    return images, labels


@pytest.fixture
def cifar_folder(tmp_path):
    """data_dir/cifar10/{train,test}/<class>/*.png, created in reverse class order."""
    root = tmp_path / "data"
    classes = list(CIFAR10_CLASSES)
    for split, n, seed in (("train", 12, 0), ("test", 4, 1)):
        for cls in reversed(classes):  # listing order must not decide labels
            (root / "cifar10" / split / cls).mkdir(parents=True, exist_ok=True)
        write_image_folder(root / "cifar10" / split, classes, n, seed)
    return root


@pytest.fixture
def cifar_batches(tmp_path):
    """data_dir/cifar10/cifar-10-batches-py/ in the original pickled layout."""
    root = tmp_path / "batches"
    d = root / "cifar10" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 20) for i in range(1, 6)] + [("test_batch", 10)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, size=n).tolist())
        with open(d / name, "wb") as f:
            pickle.dump({b"batch_label": b"x", b"labels": labels, b"data": data,
                         b"filenames": [b"f"] * n}, f, protocol=2)
    return root


def write_svhn_mat(path: Path, n: int, seed=0):
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)  # 10 means digit 0
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"X": x, "y": y})
    return x, y


@pytest.fixture
def svhn_dir(tmp_path):
    root = tmp_path / "svhndata"
    write_svhn_mat(root / "svhn" / "train_32x32.mat", 30, 0)
    write_svhn_mat(root / "svhn" / "test_32x32.mat", 12, 1)
    write_svhn_mat(root / "svhn" / "extra_32x32.mat", 8, 2)
    return root


def _declare():
    from benchmark.encoders.options import declare

    return declare()


@_declare()
class Quadrants:
    """Factory for the cheap 12-feature encoder (quadrants.py), for protocol tests."""

    def __new__(cls):
        from quadrants import MeanColour

        return MeanColour()


@_declare()
class NonFinite:
    """Factory for an encoder whose features go NaN from the 7th image on (a diverged network, say)."""

    def __new__(cls):
        from benchmark.encoders.base import Encoder

        class Diverged(Encoder):
            name = "non-finite"

            @property
            def dim(self):
                return 4

            def transform(self, images):
                out = images.reshape(len(images), -1)[:, :4].astype(np.float32)
                out[6:] = np.nan
                return out

        return Diverged()


@_declare()
class Sleepy:
    """Factory for an encoder that stops at the stage BENCH_STAGE names (fit or extract), says so (a file of that
    name in BENCH_STAGE_DIR) and waits there, so a test can interrupt a run at a known stage whatever the
    machine's speed."""

    def __new__(cls):
        import time

        from benchmark.encoders.base import Encoder

        def arrive(stage):
            if os.environ.get("BENCH_STAGE") == stage:
                (Path(os.environ["BENCH_STAGE_DIR"]) / stage).touch()
                time.sleep(60)

        class Waiting(Encoder):
            name = "sleepy"
            needs_fit = True

            @property
            def dim(self):
                return 4

            def fit(self, images, batch_size=256):
                arrive("fit")
                return self

            def transform(self, images):
                arrive("extract")
                return np.zeros((len(images), 4), np.float32)

        return Waiting()


class DiskFiller:
    """An encoder that fills the cache's disk (its folder in BENCH_FILL) before its first batch, so the
    feature file's writes fail for real with ENOSPC."""

    def __new__(cls):
        import os

        from benchmark.encoders.base import Encoder

        class Filler(Encoder):
            name = "disk-filler"

            @property
            def dim(self):
                return 3072

            def transform(self, images):
                target = Path(os.environ["BENCH_FILL"]) / "filler"
                if not target.exists():
                    with open(target, "wb") as f:
                        try:
                            while True:
                                f.write(b"\0" * 65536)
                        except OSError:
                            pass
                return (images.reshape(len(images), -1) / 255.0).astype(np.float32)

        return Filler()


DiskFiller = _declare()(DiskFiller)
