"""Faults injected and hostile inputs: each is one line and a clean exit (odd images: one line and the run
goes on), and nothing half-written or misleading is left behind."""

import csv
import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from benchmark.cli import commands as cli
from benchmark.data.datasets import CIFAR10_CLASSES
from benchmark.core.errors import BenchError
from benchmark.encoders import registry
from conftest import write_image_folder

HERE = Path(__file__).resolve().parent


def bench(*args, cwd=HERE, env=None):
    """`bench ARGS` in a fresh process: (exit code, non-empty stderr lines)."""
    proc = subprocess.run([sys.executable, "-m", "benchmark.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)
    return proc.returncode, [line for line in proc.stderr.replace("\r", "\n").splitlines()
                             if line.strip() and "%|" not in line]


def invoke(*args):
    return CliRunner().invoke(cli.cli, list(map(str, args)), standalone_mode=False, catch_exceptions=True)


# ------------------------------------------------------------------ specs that would run code

@pytest.mark.parametrize("spec", ["os:system:command=touch {file}", "subprocess:getoutput:cmd=touch {file}",
                                  "builtins:exec:source=open('{file}','w')", "shutil:rmtree:path={file}"])
def test_hostile_module_factory_spec_runs_nothing(spec, tmp_path):
    target = tmp_path / "PWNED"
    code, lines = bench("run", "cifar10", "--features", spec.format(file=target), "--data-dir", tmp_path)
    assert code == 2 and len(lines) == 1 and ("refused without" in lines[0] or "no Python module" in lines[0]), lines
    assert not target.exists()
    with pytest.raises(BenchError, match="refused without importing it|no Python module"):
        registry.build(spec.format(file=target))
    assert not target.exists()


def test_declared_factories_and_encoder_classes_still_load():
    assert registry.build("conftest:Quadrants").dim == 12


# ------------------------------------------------------------------ a full disk

def test_injected_enospc_from_the_writer_is_one_line_and_leaves_nothing(cifar_folder, tmp_path, monkeypatch):
    from benchmark.data import hdf5

    def full(self, batch):
        hdf5.checked(self.path, lambda: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))

    monkeypatch.setattr(hdf5.Rows, "append", full)
    result = invoke("run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--results",
                    tmp_path / "runs.csv", "--cache-dir", tmp_path / "cache")
    assert isinstance(result.exception, BenchError)
    assert "cannot write (No space left on device)" in str(result.exception) and "\n" not in str(result.exception)
    assert not list((tmp_path / "cache" / "features").iterdir()) and not (tmp_path / "runs.csv").exists()


def tmpfs(tmp_path, size: str):
    """A tmpfs of ``size`` (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    return mount


@pytest.fixture
def small_disk(tmp_path):
    mount = tmpfs(tmp_path, "3M")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.fixture
def disk_to_fill(tmp_path):
    """Room enough for the free-space check, filled by the encoder once extraction starts."""
    mount = tmpfs(tmp_path, "80M")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_disk_too_small_is_refused_before_extraction(small_disk, cifar_folder, tmp_path):
    code, lines = bench("run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--cache-dir",
                        small_disk, "--results", tmp_path / "runs.csv")
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and errors == lines[-1:] and "GB free" in errors[0] and "--cache-dir" in errors[0], lines
    assert not list((small_disk / "features").glob("*")) and not (tmp_path / "runs.csv").exists()


def test_disk_filling_during_extraction_is_one_line_without_a_crash(disk_to_fill, tmp_path):
    """The disk fills after the free-space check passes (another process, say): HDF5's own write fails."""
    data = tmp_path / "data"
    for split, n in (("train", 30), ("test", 10)):
        write_image_folder(data / "cifar10" / split, list(CIFAR10_CLASSES), n)
    env = dict(os.environ, BENCH_FILL=str(disk_to_fill))
    code, lines = bench("run", "cifar10", "--features", "conftest:DiskFiller", "--data-dir", data, "--cache-dir",
                        disk_to_fill / "cache", "--results", tmp_path / "runs.csv", env=env)
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and errors == lines[-1:], lines  # one line, the last: no crash after it
    assert "cannot write (No space left on device)" in errors[0] and "errno" not in errors[0]
    assert not [p for p in (disk_to_fill / "cache" / "features").iterdir()], "a half-written feature file remains"


def test_cache_folder_under_a_file_is_refused_before_work(cifar_folder, tmp_path):
    (tmp_path / "plain").write_text("x")
    code, lines = bench("run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--cache-dir",
                        tmp_path / "plain" / "cache", "--results", tmp_path / "runs.csv")
    assert code == 2 and len(lines) == 1 and "is a file, not a folder" in lines[0], lines
    assert not (tmp_path / "runs.csv.lock").exists()


def test_refused_runs_leave_no_lock_file(tmp_path):
    code, lines = bench("run", "cifar10", "--features", "nope", "--results", tmp_path / "runs.csv")
    assert code == 2 and not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob(".*tmp*"))


# ------------------------------------------------------------------ checkpoints

def test_resume_from_a_reshaped_checkpoint_is_one_line(tmp_path):
    write_image_folder(tmp_path / "imgs" / "train", ["a", "b"], 16, size=64, fmt="jpg")
    out = tmp_path / "run"
    args = ["train", "dcgan", "--data", f"folder:{tmp_path / 'imgs'}", "--out", out, "--epochs", "1",
            "--batch-size", "8", "--device", "cpu", "--arch", "small"]
    assert invoke(*args).exception is None
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    name = next(k for k in state["D"] if k.endswith("weight"))
    state["D"][name] = torch.zeros(3, 3)  # the same config, a tensor of another shape
    torch.save(state, out / "checkpoint.pt")
    code, lines = bench(*args, "--resume")
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and errors == lines[-1:] and "does not fit this network" in errors[0], lines
    code, lines = bench("run", "cifar10", "--features", f"dcgan:{out}", "--data-dir", tmp_path)
    assert code == 2 and len(lines) == 1 and "does not fit this network" in lines[0], lines


# ------------------------------------------------------------------ images

def test_odd_images_are_counted_in_one_line_and_strict_refuses_them(cifar_folder, tmp_path):
    Image.fromarray(np.zeros((64, 64), np.uint8), mode="L").save(cifar_folder / "cifar10" / "train" / "ship" / "odd.png")
    Image.fromarray(np.zeros((32, 32, 4), np.uint8), mode="RGBA").save(cifar_folder / "cifar10" / "train" / "cat" / "a.png")
    (cifar_folder / "cifar10" / "train" / "stray.jpg").write_bytes(b"not here")
    code, lines = bench("run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--cache-dir",
                        tmp_path / "cache", "--results", tmp_path / "runs.csv", "--val-size", "20")
    notes = [line for line in lines if "converted 2 images" in line]
    assert code == 0 and len(notes) == 1, lines
    assert "64x64 -> 32x32" in notes[0] and "RGBA -> RGB" in notes[0] and "L -> RGB" in notes[0]
    assert any("ignored 1 file outside the class folders, e.g. stray.jpg" in line for line in lines)
    again = bench("run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--cache-dir",
                  tmp_path / "cache", "--results", tmp_path / "runs.csv", "--val-size", "20")[1]
    assert any("converted 2 images" in line for line in again)  # said again when read from the cache
    code, lines = bench("run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--cache-dir",
                        tmp_path / "cache", "--results", tmp_path / "strict.csv", "--strict")
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "--strict refuses them" in errors[0]
    assert not (tmp_path / "strict.csv").exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cifar_batches_of_every_pickle_protocol_load(protocol, cifar_batches):
    from benchmark.data import datasets

    folder = cifar_batches / "cifar10" / "cifar-10-batches-py"
    for f in folder.iterdir():
        with open(f, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        with open(f, "wb") as fh:
            pickle.dump(batch, fh, protocol=protocol)
    split = datasets.load("cifar10", "train", cifar_batches)
    assert split.images.shape == (100, 32, 32, 3)


class Hostile:
    def __reduce__(self):
        return (print, ("HACKED",))


@pytest.mark.parametrize("payload", [Hostile(), {b"data": Hostile(), b"labels": [1]}])
def test_cifar_batch_with_a_hostile_pickle_is_refused(payload, cifar_batches, capfd):
    from benchmark.data import datasets

    with open(cifar_batches / "cifar10" / "cifar-10-batches-py" / "data_batch_1", "wb") as fh:
        pickle.dump(payload, fh, protocol=5)
    with pytest.raises(BenchError, match="refusing to load builtins.print"):
        datasets.load("cifar10", "train", cifar_batches)
    assert "HACKED" not in capfd.readouterr().out


# ------------------------------------------------------------------ cache files that lie

def _lie(path: Path, how: str) -> None:
    with h5py.File(path, "r") as f:
        attrs, labels, state = dict(f.attrs), f["labels"][...], {k: v[...] for k, v in f["encoder_state"].items()}
    path.unlink()
    with h5py.File(path, "w") as f:
        n = len(labels)
        if how == "narrow":  # consistent attributes: 100 dims, features (n, 100)
            f.create_dataset("features", data=np.zeros((n, 100), np.float32), fletcher32=True, chunks=True)
            attrs["dim"] = 100
        else:  # the right shape, all zeros, no checksum filter
            f.create_dataset("features", data=np.zeros((n, int(attrs["dim"])), np.float32))
        f.create_dataset("labels", data=labels, fletcher32=True, chunks=True)
        group = f.create_group("encoder_state")
        for k, v in state.items():
            group[k] = v
        f.attrs.update(attrs)


@pytest.mark.parametrize("how", ["narrow", "unchecked"])
def test_cache_files_that_lie_are_named_and_rebuilt(how, cifar_folder, tmp_path):
    args = ["run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--cache-dir", tmp_path / "cache",
            "--results", tmp_path / "runs.csv", "--val-size", "20"]
    assert bench(*args)[0] == 0
    train = next((tmp_path / "cache" / "features").glob("cifar10-train-*.h5"))
    _lie(train, how)
    code, lines = bench(*args)
    assert code == 0 and any(f"ignoring cache file {train}" in line for line in lines), lines
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert rows[0]["test_acc"] == rows[1]["test_acc"]  # rebuilt, not trusted
    with h5py.File(train) as f:
        assert f["features"].shape[1] == 3072 and f["features"].fletcher32


# ------------------------------------------------------------------ impossible rows

def test_rows_with_impossible_accuracies_are_named_and_skipped(tmp_path):
    from benchmark.report import leaderboard, results

    out = tmp_path / "runs.csv"
    for i, acc in enumerate([-5, 250, "nan", 70.0]):  # "nan": a file written by hand or by another tool
        results.append({"time": f"2026-12-04T10:00:0{i}", "dataset": "cifar10", "data_variant": "x",
                        "protocol": "full", "encoder": f"e{i}", "val_acc": acc, "test_acc": acc, "dims": 1,
                        "C": 1.0, "draws": 1, "n_train": 1, "n_test": 1, "extract_s": 0, "fit_s": 0}, out)
    with pytest.raises(BenchError, match="non-finite val_acc, test_acc; it was not written"):
        results.append({"encoder": "e4", "val_acc": float("nan"), "test_acc": float("inf")}, out)
    warnings = []
    rows = leaderboard.load_rows(out, warn=warnings.append)
    assert list(rows.encoder) == ["e3"] and len(warnings) == 3
    assert all("not percentages within 0..100" in w for w in warnings)
    for fmt in ("csv", "html"):
        assert "e1" not in leaderboard.render(out, fmt, warn=lambda _: None)
