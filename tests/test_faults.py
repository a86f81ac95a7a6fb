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
from PIL import Image

from benchmark.data.datasets import CIFAR10_CLASSES
from benchmark.core.errors import BenchError
from benchmark.encoders import registry
from conftest import bench, console, invoke, write_image_folder

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------ specs that would run code

@pytest.mark.parametrize("spec", ["os:system:command=touch {file}", "subprocess:getoutput:cmd=touch {file}",
                                  "builtins:exec:source=open('{file}','w')", "shutil:rmtree:path={file}"])
def test_hostile_module_factory_spec_runs_nothing(spec, tmp_path):
    target = tmp_path / "PWNED"
    code, lines, *_ = bench("run", "cifar10", "--features", spec.format(file=target), "--data-dir", tmp_path)
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
    code, lines, *_ = bench("run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--cache-dir",
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
    code, lines, *_ = bench("run", "cifar10", "--features", "conftest:DiskFiller", "--data-dir", data, "--cache-dir",
                        disk_to_fill / "cache", "--results", tmp_path / "runs.csv", env=env)
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and errors == lines[-1:], lines  # one line, the last: no crash after it
    assert "cannot write (No space left on device)" in errors[0] and "errno" not in errors[0]
    assert not [p for p in (disk_to_fill / "cache" / "features").iterdir()], "a half-written feature file remains"


def test_cache_folder_under_a_file_is_refused_before_work(cifar_folder, tmp_path, monkeypatch, capsys):
    (tmp_path / "plain").write_text("x")
    code, lines, *_ = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir",
                              cifar_folder, "--cache-dir", tmp_path / "plain" / "cache", "--results",
                              tmp_path / "runs.csv")
    assert code == 2 and len(lines) == 1 and "is a file, not a folder" in lines[0], lines
    assert not (tmp_path / "runs.csv.lock").exists()


def test_refused_runs_leave_no_lock_file(tmp_path, monkeypatch, capsys):
    code, lines, *_ = console(monkeypatch, capsys, "run", "cifar10", "--features", "nope", "--results",
                              tmp_path / "runs.csv")
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
    code, lines, *_ = bench(*args, "--resume")
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and errors == lines[-1:] and "does not fit this network" in errors[0], lines
    code, lines, *_ = bench("run", "cifar10", "--features", f"dcgan:{out}", "--data-dir", tmp_path)
    assert code == 2 and len(lines) == 1 and "does not fit this network" in lines[0], lines


# ------------------------------------------------------------------ images

def test_odd_images_are_counted_in_one_line_and_strict_refuses_them(cifar_folder, tmp_path, monkeypatch, capsys):
    Image.fromarray(np.zeros((64, 64), np.uint8), mode="L").save(cifar_folder / "cifar10" / "train" / "ship" / "odd.png")
    Image.fromarray(np.zeros((32, 32, 4), np.uint8), mode="RGBA").save(cifar_folder / "cifar10" / "train" / "cat" / "a.png")
    (cifar_folder / "cifar10" / "train" / "stray.jpg").write_bytes(b"not here")
    code, lines, *_ = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir",
                              cifar_folder, "--cache-dir", tmp_path / "cache", "--results", tmp_path / "runs.csv",
                              "--val-size", "20")
    notes = [line for line in lines if "converted 2 images" in line]
    assert code == 0 and len(notes) == 1, lines
    assert "64x64 -> 32x32" in notes[0] and "RGBA -> RGB" in notes[0] and "L -> RGB" in notes[0]
    assert any("ignored 1 file outside the class folders, e.g. stray.jpg" in line for line in lines)
    again = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder,
                    "--cache-dir", tmp_path / "cache", "--results", tmp_path / "runs.csv", "--val-size", "20")[1]
    assert any("converted 2 images" in line for line in again)  # said again when read from the cache
    code, lines, *_ = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir",
                              cifar_folder, "--cache-dir", tmp_path / "cache", "--results", tmp_path / "strict.csv",
                              "--strict")
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
def test_cache_files_that_lie_are_named_and_rebuilt(how, cifar_folder, tmp_path, monkeypatch, capsys):
    args = ["run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--cache-dir", tmp_path / "cache",
            "--results", tmp_path / "runs.csv", "--val-size", "20"]
    assert console(monkeypatch, capsys, *args).code == 0
    train = max((tmp_path / "cache" / "features").glob("*.h5"), key=lambda f: f.stat().st_size)  # 120 rows > 40
    _lie(train, how)
    code, lines, *_ = console(monkeypatch, capsys, *args)
    assert code == 0 and any(f"ignoring cache file {train}" in line for line in lines), lines
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert rows[0]["test_acc"] == rows[1]["test_acc"]  # rebuilt, not trusted
    with h5py.File(train) as f:
        assert f["features"].shape[1] == 3072 and f["features"].fletcher32


# ------------------------------------------------------------------ impossible rows

def test_rows_with_impossible_accuracies_are_named_and_skipped(tmp_path):
    from benchmark.report import document, results, rows as leaderboard
    from benchmark.report.sections import leaderboard as board

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
        assert "e1" not in board.render(document.Report(out, out.parent / "B.md", lambda _: None), fmt)


# ------------------------------------------------------------------ every write site, failed in turn

def capped(limit: int):
    """A child process whose files cannot grow past ``limit`` bytes: the write that would, fails with EFBIG
    (SIGXFSZ is ignored, as Python itself sets it), wherever in the program and in whichever library it is."""
    import resource
    import signal

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def leftovers(*folders) -> list[Path]:
    """Temporary files a writer failed to remove."""
    return [p for folder in folders for p in Path(folder).rglob(".*.tmp-*")]


def capped_bench(args, limit, env, cwd=HERE):
    """`bench ARGS` with files capped at ``limit`` bytes: (exit code, stderr lines, the one error line or "")."""
    proc = subprocess.run([sys.executable, "-m", "benchmark.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, preexec_fn=capped(limit))
    lines = [line for line in proc.stderr.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 2), (args[0], limit, proc.stderr)
    if proc.returncode == 0:
        return ""
    assert lines[-1].startswith("error:") and [l for l in lines if l.startswith("error:")] == lines[-1:], lines
    assert "File too large" in lines[-1], lines
    return lines[-1]


@pytest.mark.slow
def test_every_write_site_fails_in_one_line_and_leaves_nothing(cifar_folder, tmp_path):
    """Every file the project writes, failed in turn by capping file size in a child process (the write that
    would pass the cap fails with EFBIG, in Python or inside HDF5, torch or PIL): each outcome is success or
    one line naming that file (exit 2), never a traceback or a crash, and nothing half-written remains.
    Files fail in the order they are written and by size, so each site is reached from the state before it."""
    import shutil

    env = dict(os.environ, MPLCONFIGDIR=str(tmp_path / "mpl"))
    named = set()

    def run_in(folder, limit):
        runs, cache = folder / "results" / "runs.csv", folder / "cache"
        return capped_bench(["run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--cache-dir", cache,
                             "--results", runs, "--val-size", "20"], limit, env)

    # a cold run: decoded images (HDF5) first, then the training features (HDF5)
    for limit in (0, 600_000):
        folder = tmp_path / f"cold-{limit}"
        named.add(run_in(folder, limit))
        assert not leftovers(folder)
        for h5 in (folder / "cache").rglob("*.h5"):  # whatever stayed in the cache is complete
            with h5py.File(h5, "r") as f:
                assert "images" in f or f.attrs["complete"]
        assert not (folder / "results").exists()
    # a warm cache: the predictions file, then the result row appended to a file already near the cap
    warm = tmp_path / "warm"
    assert run_in(warm, 10 ** 9) == ""
    size = (warm / "results" / "runs.csv").stat().st_size
    for limit in (50, size + 100):
        folder = tmp_path / f"warm-{limit}"
        shutil.copytree(warm, folder)
        before = (folder / "results" / "runs.csv").read_bytes()
        named.add(run_in(folder, limit))
        assert not leftovers(folder) and (folder / "results" / "runs.csv").read_bytes() == before
    # a training run (its images decoded by an uncapped one first): sample grids, then checkpoint and config
    def train(out, limit):
        return capped_bench(["train", "dcgan", "--data", f"folder:{cifar_folder / 'cifar10' / 'train'}", "--arch",
                             "small", "--epochs", "1", "--batch-size", "40", "--device", "cpu", "--out", out], limit, env)

    assert train(tmp_path / "train-full", 10 ** 9) == ""
    grids = max(p.stat().st_size for p in (tmp_path / "train-full").rglob("*.png"))
    for limit in (100, grids + 1):  # 100: torch's own temporary-folder probe (4 bytes) still works
        out = tmp_path / f"train-{limit}"
        named.add(train(out, limit))
        assert not leftovers(tmp_path) and not (out / "checkpoint.pt").exists()
    # the leaderboard's document
    named.add(capped_bench(["leaderboard", "--results", warm / "results" / "runs.csv", "--format", "csv", "--out",
                            tmp_path / "board.csv"], 0, env))
    sites = {site for site in ("decoded/", "features/", "predictions/", "runs.csv", "config.json", "samples",
                               "checkpoint.pt", "board.csv") if any(site in line for line in named)}
    assert sites >= {"decoded/", "features/", "predictions/", "runs.csv", "checkpoint.pt", "board.csv"}, named
    assert not leftovers(tmp_path)


# ------------------------------------------------------------------ numbers: nothing non-finite reaches a row

def checkpoint_with(tmp_path, change) -> Path:
    net = registry.build("torchvision:resnet18:size=32").net
    state = {k: v.clone() for k, v in net.state_dict().items()}
    change(state)
    torch.save(state, tmp_path / "w.pt")
    return tmp_path / "w.pt"


@pytest.mark.parametrize("change, message", [
    (lambda s: s["layer1.0.conv1.weight"].view(-1)[:3].fill_(float("nan")), "layer1.0.conv1.weight: 3 of"),
    (lambda s: s["bn1.running_var"].fill_(float("inf")), "bn1.running_var: 64 of 64 values are NaN or infinite"),
    (lambda s: s.__setitem__("conv1.weight", s["conv1.weight"] > 0), "conv1.weight is bool where the model holds "
                                                                     "floating-point"),
    (lambda s: s.__setitem__("layer4.1.bn2.bias", s["layer4.1.bn2.bias"].int()), "layer4.1.bn2.bias is int32"),
])
def test_weights_that_break_the_rules_are_one_line(change, message, tmp_path):
    path = checkpoint_with(tmp_path, change)
    with pytest.raises(BenchError, match=message.replace("(", r"\(")):
        registry.build(f"torchvision:resnet18:size=32,weights={path}")


@pytest.mark.parametrize("target", ["folder", "/dev/zero", "text", "empty"])
def test_a_checkpoint_that_is_not_a_file_of_tensors_is_named(target, tmp_path):
    path = {"folder": tmp_path, "/dev/zero": Path("/dev/zero"), "text": tmp_path / "notes.pt",
            "empty": tmp_path / "empty.pt"}[target]
    if target == "text":
        path.write_text("epoch 3, loss 0.12\n")
    if target == "empty":
        path.write_bytes(b"")
    expected = {"folder": "is a folder", "/dev/zero": "not a regular file", "text": "starts with b'epoch 3,'",
                "empty": "it is empty"}[target]
    for spec in [f"torchvision:resnet18:weights={path}"] + ([f"dcgan:{path}"] if target != "folder" else []):
        with pytest.raises(BenchError, match=expected) as raised:
            registry.build(spec)
        assert "\n" not in str(raised.value) and str(path) in str(raised.value)


def test_non_finite_features_are_refused_before_the_cache(cifar_folder, tmp_path, monkeypatch, capsys):
    code, lines, *_ = console(monkeypatch, capsys, "run", "cifar10", "--features", "conftest:NonFinite", "--data-dir",
                              cifar_folder, "--cache-dir", tmp_path / "cache", "--results", tmp_path / "runs.csv")
    assert code == 2 and len([l for l in lines if l.startswith("error:")]) == 1, lines
    assert "features of images 0..119" in lines[-1] and "NaN or infinite" in lines[-1], lines
    assert not list((tmp_path / "cache" / "features").glob("*")) and not (tmp_path / "runs.csv").exists()


def test_knn_settings_mean_the_same_everywhere(cifar_folder, tmp_path, monkeypatch, capsys):
    """A temperature of 1e-4 votes as the nearest neighbour does (no overflow); a k the training rows cannot
    supply is one line before extraction on the command line and an error in Python, never a clamp."""
    from benchmark.probe import KNN

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 16)), rng.integers(0, 3, 300)
    cold, nearest = KNN(k=20, t=1e-4).fit(X, y), KNN(k=1).fit(X, y)
    assert np.isfinite(cold.predict_proba(X)).all() and (cold.predict(X) == nearest.predict(X)).all()
    for bad in (KNN(k=1000), KNN(t=float("inf")), KNN(t=0), KNN(k=0)):
        with pytest.raises(ValueError, match="k=1000 neighbours asked for|must be a positive"):
            bad.fit(X, y)
    code, lines, *_ = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir",
                              cifar_folder, "--cache-dir", tmp_path / "cache", "--results", tmp_path / "runs.csv",
                              "--probe", "knn:k=100000")
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and errors == lines[-1:] and "k=100000 neighbours asked for" in errors[0], lines
    assert not (tmp_path / "cache" / "features").exists() and not (tmp_path / "runs.csv").exists()
    code, lines, *_ = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir",
                              cifar_folder, "--cache-dir", tmp_path / "cache", "--results", tmp_path / "runs.csv",
                              "--probe", "knn:t=1e-4", "--val-size", "20")
    assert code == 0 and any("searching k in 10, 20, 50" in line for line in lines), lines
    row = list(csv.DictReader(open(tmp_path / "runs.csv")))[0]
    assert float(row["test_acc"]) > 20 and row["t"] == "0.0001"


@pytest.mark.parametrize("make", [
    lambda X: X * 1e40,  # float64 beyond float32's range
    lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X),
])
def test_probe_input_and_parameters_outside_float32_are_refused(make):
    from benchmark.probe import KNN, L2SVM, LogReg

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 8)), np.arange(60) % 3
    for probe in (L2SVM(), LogReg(), KNN(k=5)):
        with pytest.raises(ValueError):
            probe.fit(make(X), y)
    for probe in (L2SVM(C=float("nan")), L2SVM(C=float("inf")), LogReg(C=0.0), L2SVM(device="gpu")):
        with pytest.raises(ValueError, match="C must be a positive finite number|device='gpu'"):
            probe.fit(X, y)
    assert KNN(k=5).fit(X * 1e20, y).score(X * 1e20, y) == KNN(k=5).fit(X, y).score(X, y)  # norms never overflow


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "elsewhere"])
def test_damaged_predictions_are_one_line_in_compare_data(damage, tmp_path, monkeypatch, capsys):
    from benchmark.report import results

    out = tmp_path / "results" / "runs.csv"
    rng = np.random.default_rng(0)
    for i, dataset in enumerate(("cifar10-lossless", "cifar10-test1k")):
        row = {"time": f"2026-12-04T10:00:0{i}", "dataset": dataset, "data_variant": dataset, "protocol": "full",
               "encoder": "pixels", "probe": "svm", "val_acc": 50.0, "test_acc": 50.0, "C": 1e-4, "gap": 1e-4,
               "search_gap": 1e-4, "seed": 0, "val_size": 10_000, "n_train": 50_000, "n_test": 1000, "dims": 3072,
               "draws": 1, "layer": ""}
        row["predictions"] = results.save_predictions(out, row, {"test_correct": rng.random(1000) < 0.5,
                                                                 "val_correct": rng.random(10_000) < 0.5})
        results.append(row, out)
    victim = out.parent / row["predictions"]
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        victim.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "flip":
        data[len(data) // 3] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "empty":
        victim.write_bytes(b"")
    else:
        rows = list(csv.DictReader(open(out)))
        rows[-1]["predictions"] = "../../../etc/passwd"
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    code, _, _, err = console(monkeypatch, capsys, "compare-data", "--features", "pixels", "--results", out)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), lines
    assert ("damaged predictions file" in lines[0] and victim.name in lines[0]) or "not a file of its" in lines[0]


def test_pretrained_list_fails_on_a_bad_hash(tmp_path, monkeypatch, capsys):
    from benchmark.encoders import pretrained

    entry = pretrained.entry("dcgan-tinyimagenet-small")
    folder = tmp_path / entry.folder
    folder.mkdir()
    (folder / entry.files()[0].name).write_bytes(b"not the weights")
    code, _, _, err = console(monkeypatch, capsys, "pretrained", "list", "--weights-dir", tmp_path)
    lines = err.splitlines()
    assert code == 2 and "fails its hash" in lines[-1] and entry.files()[0].name in lines[-1], lines


# ------------------------------------------------------------------ the Python objects refuse what they cannot use

@pytest.mark.parametrize("spec", ["pixels", "dcgan-random:arch=small", "kmeans:k=20,patches=2000,iters=5,compile=false",
                                  "exemplar-cnn:weights=random", "conftest:Quadrants"])
def test_encoders_refuse_images_they_cannot_use(spec):
    from benchmark.core.errors import InputError

    encoder = registry.build(spec)
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    if encoder.needs_fit:
        with pytest.raises(InputError, match=r"call fit\(train_images\) first"):
            encoder.transform(images)
    for bad, message in ((images / 255.0, r"values in \[0, 1\]: pass \(images \* 255\)"),
                         (images.transpose(0, 3, 1, 2), r"channels first: pass images.transpose\(0, 2, 3, 1\)"),
                         (np.zeros((2, 64, 64, 3), np.uint8), "expects 32x32 images, got 64x64"),
                         (torch.from_numpy(images), r"pass images.cpu\(\).numpy\(\)"),
                         (images[0], r"one image needs images\[None\]")):
        with pytest.raises(InputError, match=message):
            (encoder.fit if encoder.needs_fit else encoder.transform)(bad)
        with pytest.raises(ValueError):  # to Python code an InputError is a ValueError
            (encoder.fit if encoder.needs_fit else encoder.transform)(bad)
    if encoder.needs_fit:
        encoder.fit(images)
    assert encoder.transform(images[:3]).shape == (3, encoder.dim)


def test_estimators_warn_when_a_limit_stops_them_short():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from benchmark.probe import L2SVM, LogReg

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 30)) * 50, np.arange(400) % 4
    for probe in (L2SVM(C=10.0, max_iter=1), LogReg(C=10.0, max_iter=1), L2SVM(C=10.0, time_limit=1e-9)):
        with pytest.warns(ConvergenceWarning, match="short of tol=0.001"):
            probe.fit(X, y)
        assert not probe.certified_
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert L2SVM().fit(X, y).certified_ and LogReg().fit(X, y).certified_  # the defaults finish
