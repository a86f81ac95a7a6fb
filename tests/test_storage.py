"""Storage that can be trusted: checksummed caches, one fit per encoder, locked rows, clean failures."""

import csv
import errno
import multiprocessing
import os
from pathlib import Path
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from benchmark.core.errors import BenchError
from benchmark.data import datasets
from benchmark.data.cache import CachedFeatures, FeatureCache, state_digest
from benchmark.data.split import Split
from benchmark.encoders import registry
from benchmark.pipeline.extract import extract
from benchmark.report import results
from conftest import class_images, console, write_image_folder


def splits():
    x, y = class_images(12, seed=0)
    xt, yt = class_images(4, seed=1)
    return {"train": Split(x, y), "test": Split(xt, yt)}


def flip_a_byte(path, dataset):
    """Damage one byte in the middle of a dataset's first chunk, as a failing disk would."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x5A]))


def test_a_flipped_byte_in_cached_features_is_reported_and_rebuilt(tmp_path):
    cache = FeatureCache(tmp_path)
    first = extract(registry.build("pixels"), "toy", splits(), cache, batch_size=64)
    clean = {name: hit.read() for name, hit in first.features.items()}
    flip_a_byte(first.features["train"].path, "features")
    notes = []
    again = extract(registry.build("pixels"), "toy", splits(), cache, batch_size=64, log=notes.append)
    assert not again.cached and any("failed its checksum" in n and "rebuilding" in n for n in notes), notes
    for name, features in clean.items():
        np.testing.assert_array_equal(again.features[name].read(), features)


def test_a_flipped_byte_in_decoded_images_is_reported_and_decoded_again(cifar_folder, tmp_path):
    cache = tmp_path / "c"
    clean = datasets.load("cifar10", "test", cifar_folder, cache)
    decoded = next((cache / "decoded").glob("test-*.h5"))
    flip_a_byte(decoded, "images")
    notes = []
    again = datasets.find("cifar10", cifar_folder, cache).splits["test"](warn=notes.append)
    assert any("decoded-image cache" in n and "decoding again" in n for n in notes), notes
    np.testing.assert_array_equal(again.images, clean.images)


def test_an_image_rewritten_in_place_is_decoded_again(tmp_path):
    """Same name, size and time stamp, other pixels: the content key sees it."""
    root = tmp_path / "imgs"
    write_image_folder(root / "train", ["a", "b"], 3, fmt="bmp")  # uncompressed: same size whatever the pixels
    first = datasets.load("folder:" + str(root), "train", None, tmp_path / "c")
    image = sorted((root / "train" / "a").iterdir())[0]
    stat = image.stat()
    Image.fromarray(255 - first.images[0]).save(image)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert image.stat().st_size == stat.st_size and image.stat().st_mtime_ns == stat.st_mtime_ns
    again = datasets.load("folder:" + str(root), "train", None, tmp_path / "c")
    np.testing.assert_array_equal(again.images[0], 255 - first.images[0])


def test_every_split_of_a_fitted_encoder_comes_from_one_fit(tmp_path):
    spec = "kmeans:k=4,patches=500,iters=2,compile=false"
    cache = FeatureCache(tmp_path)
    first = extract(registry.build(spec), "toy", splits(), cache, batch_size=64).features
    digest = first["test"].attrs["state_digest"]
    train = first["train"].read()

    first["train"].path.unlink()  # only the train file lost: it is extracted with the test file's state, no refit
    notes = []
    again = extract(registry.build(spec), "toy", splits(), cache, batch_size=64, log=notes.append).features
    assert not any("fitting" in n for n in notes), notes
    assert again["train"].attrs["state_digest"] == digest
    np.testing.assert_array_equal(again["train"].read(), train)

    with h5py.File(again["test"].path, "r+") as f:  # a test file from another fit: other centroids, their digest
        state = {k: v[...] for k, v in f["encoder_state"].items()}
        state["centroids"] = state["centroids"] + 1.0
        f["encoder_state"]["centroids"][...] = state["centroids"]
        f.attrs["state_digest"] = state_digest(state)
    notes.clear()
    rebuilt = extract(registry.build(spec), "toy", splits(), cache, batch_size=64, log=notes.append).features
    assert any("another fit" in n for n in notes) and any("fitting" in n for n in notes), notes
    assert rebuilt["train"].attrs["state_digest"] == rebuilt["test"].attrs["state_digest"]


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    def full(self, key, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(h5py.Dataset, "__setitem__", full)
    cache = FeatureCache(tmp_path)
    with pytest.raises(BenchError, match=r"pixels-[0-9a-f]+\.h5: cannot write \(No space left on device\)"):
        extract(registry.build("pixels"), "toy", splits(), cache, batch_size=64)
    assert not [p for p in (tmp_path / "features").iterdir()]  # no temporary, no half-written file


def test_a_row_append_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "runs.csv"
    results.append({"time": "t1", "encoder": "pixels", "test_acc": 40.0}, path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(BenchError, match="runs.csv: cannot write"):
        results.append({"time": "t2", "encoder": "pixels", "test_acc": 41.0}, path)


def test_a_torn_last_row_is_set_aside_not_glued(tmp_path):
    path = tmp_path / "runs.csv"
    results.append({"time": "t1", "encoder": "pixels", "val_acc": 40.0, "test_acc": 40.0}, path)
    with open(path, "a") as f:
        f.write("2026-01-01T00:00:00,cifar10,jpeg-q75-co")  # a run killed while writing its row
    notes = []
    results.append({"time": "t2", "encoder": "kmeans", "val_acc": 70.0, "test_acc": 70.0}, path, warn=notes.append)
    assert any("incomplete" in n and ".torn" in n for n in notes), notes
    rows = list(csv.DictReader(open(path)))
    assert [r["encoder"] for r in rows] == ["pixels", "kmeans"]
    assert "jpeg-q75-co" in (tmp_path / "runs.csv.torn").read_text()
    from benchmark.report import rows as leaderboard

    assert list(leaderboard.load_rows(path).encoder) == ["pixels", "kmeans"]


def test_malformed_lines_are_named_and_skipped_by_the_leaderboard(tmp_path):
    from benchmark.report import rows as leaderboard

    path = tmp_path / "runs.csv"
    results.append({"time": "t1", "encoder": "pixels", "val_acc": 40.0, "test_acc": 40.0}, path)
    header = path.read_text().splitlines()[0]
    with open(path, "a") as f:
        f.write(header + "\n" + "a,b,c\n")
    notes = []
    rows = leaderboard.load_rows(path, warn=notes.append)
    assert list(rows.encoder) == ["pixels"]
    assert any("line 3: a repeated header" in n for n in notes) and any("line 4: 3 fields" in n for n in notes)


def _append_after(barrier, path, i):
    barrier.wait()
    results.append({"time": f"t{i}", "encoder": f"enc{i}", "val_acc": 1.0, "test_acc": float(i)}, path,
                   warn=lambda *_: None)


@pytest.mark.parametrize("migration", [False, True])
def test_eight_processes_appending_at_once_lose_nothing(tmp_path, migration):
    path = tmp_path / "runs.csv"
    if migration:  # written with an older column set: the first writer migrates it, under the lock
        path.write_text("time,dataset,encoder,test_acc\n2026-01-01T00:00:00,cifar10,old,1.0\n")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(8)
    workers = [context.Process(target=_append_after, args=(barrier, path, i)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert all(w.exitcode == 0 for w in workers)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(results.COLUMNS) and lines.count(lines[0]) == 1
    encoders = sorted(r["encoder"] for r in csv.DictReader(open(path)))
    assert encoders == sorted([f"enc{i}" for i in range(8)] + (["old"] if migration else []))


def test_four_runs_at_once_share_one_cache_and_one_results_file(cifar_folder, tmp_path):
    """Four writers racing for an empty cache, then four readers of what they left."""
    out, cache = tmp_path / "runs.csv", tmp_path / "cache"
    command = [sys.executable, "-m", "benchmark.cli", "run", "cifar10", "--features", "pixels", "--data-dir",
               str(cifar_folder), "--cache-dir", str(cache), "--results", str(out), "--val-size", "20"]
    for _ in range(2):
        procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
    assert len(list(csv.DictReader(open(out)))) == 8
    files = sorted(p.name for p in (cache / "features").iterdir())
    assert len(files) == 2 and all(name.endswith(".h5") for name in files)  # one per split, no temporaries
    for path in (cache / "features").iterdir():
        CachedFeatures.open(path).verify()


def test_a_bad_results_file_is_refused_before_any_work(cifar_folder, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "runs.csv"
    bad.write_bytes(b"\xff\xfe garbage")
    code, lines, *_ = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir",
                              cifar_folder, "--cache-dir", tmp_path / "cache", "--results", bad)
    assert code == 2 and lines == [
        f"error: {bad}: not a text CSV file; move it aside or give another path"]
    assert not (tmp_path / "cache").exists()  # nothing was decoded or extracted


@pytest.mark.parametrize("stage", ["fit", "extract"])
def test_ctrl_c_is_one_line_exit_130_and_leaves_no_temporary_file(cifar_folder, tmp_path, stage):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, at a known stage of a run:
    during the encoder's fit, and during extraction with the feature file open (the encoder waits there)."""
    import time

    stages = tmp_path / "stages"
    stages.mkdir()
    cache, out = tmp_path / "cache", tmp_path / "runs.csv"
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "run", "cifar10", "--features", "conftest:Sleepy",
                             "--data-dir", str(cifar_folder), "--cache-dir", str(cache), "--results", str(out),
                             "--val-size", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, cwd=Path(__file__).parent, env={**os.environ,
                                                                                    "BENCH_STAGE_DIR": str(stages),
                                                                                    "BENCH_STAGE": stage})
    deadline = time.monotonic() + 120
    while not (stages / stage).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    # 130, or killed by SIGINT itself (Python does that when the signal lands before its handler is set, or inside
    # an import of torch's): a shell reports both as 130
    assert proc.returncode in (130, -signal.SIGINT), (stage, err)
    assert proc.returncode != 130 or lines[-1] == "interrupted", (stage, err)
    assert "Traceback" not in err and "failed" not in err, (stage, err)
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name], stage
    assert not out.exists() and not list(cache.glob("features/*.h5"))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowing, on purpose
def test_a_ctrl_c_swallowed_on_its_way_still_stops_the_next_step():
    """Python swallows a KeyboardInterrupt raised inside __del__ or a weakref callback; the run must not."""
    from benchmark.core import interrupts
    from benchmark.core.progress import bar

    class FreedWhileInterrupted:
        def __del__(self):
            interrupts.handler(signal.SIGINT, None)  # as if Ctrl-C landed here: printed, then ignored

    saved = sys.unraisablehook
    interrupts.install()
    try:
        FreedWhileInterrupted()
        with pytest.raises(KeyboardInterrupt):
            for _ in bar(range(3)):
                pass
    finally:
        interrupts.install()  # clear the pending interrupt
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = saved
