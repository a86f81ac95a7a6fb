"""cifar10-lossless (PNG sprites verified against their manifest) and cifar10-test1k (the same 1,000 test
images from another copy), on files written here in the shared folder's exact format."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from benchmark.core.files import git_blob_sha1
from benchmark.data import datasets
from benchmark.data.datasets import CIFAR10_CLASSES
from conftest import console, invoke

TEST_COUNTS = [95, 105] * 5  # the first 1,000 test images per class: uneven, as in the real batch


def lossless_labels(seed=0):
    rng = np.random.default_rng(seed)
    train = np.repeat(np.arange(10), 5000)
    test = np.repeat(np.arange(10), TEST_COUNTS)
    return rng.permutation(train), rng.permutation(test)  # original order: classes interleaved


def coloured(labels, seed):
    """32x32 images whose colour encodes the class, plus a little noise (so PNGs stay small)."""
    rng = np.random.default_rng(seed)
    base = np.stack([(labels * 37) % 256, (labels * 91) % 256, (labels * 53) % 256], 1).astype(np.int16)
    noise = rng.integers(-3, 4, size=(len(labels), 1, 1, 3))
    return np.clip(base[:, None, None, :] + noise, 0, 255).astype(np.uint8).repeat(32, 1).repeat(32, 2)


def write_lossless(root):
    """root/cifar10-lossless/: 51 sprites (1024 x 1000 RGB), labels json, MANIFEST.tsv with git blob SHA-1s."""
    base = root / "cifar10-lossless"
    base.mkdir(parents=True)
    train, test = lossless_labels()
    images = np.concatenate([coloured(train, 1), coloured(test, 2)])
    for b in range(51):
        Image.fromarray(images[1000 * b:1000 * (b + 1)].reshape(1000, 1024, 3)).save(base / f"cifar10_batch_{b}.png")
    (base / "cifar10_labels.json").write_text(json.dumps({"labels": np.concatenate([train, test]).tolist()}))
    lines = ["file\tgit_blob_sha1\tbytes"]
    for f in sorted(base.iterdir()):
        lines.append(f"{f.name}\t{git_blob_sha1(f.read_bytes())}\t{f.stat().st_size}")
    (base / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    return base, images, np.concatenate([train, test])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("lossless")
    _, images, labels = write_lossless(root)
    return root, images, labels


@pytest.fixture
def lossless_root(written):
    return written[0]


@pytest.fixture(autouse=True)
def trusted_manifest(written, monkeypatch):
    """The written copy's manifest stands in for the released one, whose hash the code pins."""
    manifest = written[0] / "cifar10-lossless" / "MANIFEST.tsv"
    monkeypatch.setenv(datasets.MANIFEST_ENV, git_blob_sha1(manifest.read_bytes()))


def rewrite_manifest(base):
    lines = ["file\tgit_blob_sha1\tbytes"]
    for f in sorted(base.iterdir()):
        if f.name != "MANIFEST.tsv":
            lines.append(f"{f.name}\t{git_blob_sha1(f.read_bytes())}\t{f.stat().st_size}")
    (base / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    return git_blob_sha1((base / "MANIFEST.tsv").read_bytes())


def test_lossless_splits_are_class_major_and_exact(written, tmp_path):
    lossless_root, images, labels = written
    source = datasets.find("cifar10-lossless", lossless_root, tmp_path / "cache")
    train, test = source.splits["train"](), source.splits["test"]()
    assert (len(train), len(test)) == (50_000, 1_000) and source.variant == "original-lossless"
    order = np.argsort(labels[:50_000], kind="stable")  # class by class, original order within a class
    assert (train.labels == labels[:50_000][order]).all() and (train.images == images[:50_000][order]).all()
    assert np.bincount(test.labels).tolist() == TEST_COUNTS
    again = datasets.find("cifar10-lossless", lossless_root, tmp_path / "cache").splits["train"]()
    assert (again.images == train.images).all()  # read back from the decoded-image cache
    assert list((tmp_path / "cache" / "decoded").glob("cifar10-lossless-train-*.h5"))


@pytest.mark.parametrize("damage", ["flip", "missing", "truncate", "forged", "forged-trusted"])
def test_damaged_or_missing_sprite_is_one_line_before_work(damage, lossless_root, tmp_path, monkeypatch, capsys):
    """A damaged sprite is refused by its hash; with the manifest edited to match, by the manifest's pinned
    hash; with that pin moved too (a copy trusted on purpose), by the decoder: one line naming a file each time."""
    import shutil

    base = tmp_path / "data" / "cifar10-lossless"
    shutil.copytree(lossless_root / "cifar10-lossless", base)
    victim = base / "cifar10_batch_17.png"
    if damage == "flip":
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:1000])
    if damage.startswith("forged"):
        forged = rewrite_manifest(base)
        if damage == "forged-trusted":
            monkeypatch.setenv(datasets.MANIFEST_ENV, forged)
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10-lossless", "--features", "pixels", "--data-dir",
                           tmp_path / "data", "--results", tmp_path / "runs.csv")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    named, word = {"missing": ("cifar10_batch_17.png", "missing"), "forged": ("MANIFEST.tsv", "not the released"),
                   "forged-trusted": ("cifar10_batch_17.png", "cannot decode")}.get(damage, ("cifar10_batch_17.png",
                                                                                            "damaged"))
    assert named in lines[0] and word in lines[0], lines[0]
    assert not (tmp_path / "runs.csv").exists() and not list((tmp_path / "cache").glob("**/*.h5"))


def write_jpeg_folder(root, labels_test):
    """root/cifar10/{train,test}/<class>/NNNN.png: test holds 110 images per class, numbered within the class."""
    for split, n in (("train", 5000), ("test", 110)):
        for c, name in enumerate(CIFAR10_CLASSES):
            d = root / "cifar10" / split / name
            d.mkdir(parents=True)
            if split == "test":
                for i in range(n):
                    Image.fromarray(np.full((32, 32, 3), (c * 20 + i) % 256, np.uint8)).save(d / f"{i:04d}.png")


def test_test1k_names_the_same_test_images(lossless_root, tmp_path, monkeypatch):
    """The folder copy's test/<class>/NNNN for NNNN < the class's count among the first 1,000 test images."""
    root = tmp_path / "data"
    (root).mkdir()
    (root / "cifar10-lossless").symlink_to(lossless_root / "cifar10-lossless")
    write_jpeg_folder(root, None)
    source = datasets.find("cifar10-test1k", root, tmp_path / "cache")
    test = source.splits["test"]()
    assert len(test) == 1000 and np.bincount(test.labels).tolist() == TEST_COUNTS
    first_of_class1 = np.flatnonzero(test.labels == 1)
    assert (test.images[first_of_class1, 0, 0, 0] == [(20 + i) % 256 for i in range(105)]).all()


def test_full_rows_store_their_predictions(lossless_root, tmp_path):
    out = tmp_path / "results" / "runs.csv"
    result = invoke(*["run", "cifar10-lossless", "--features", "pixels", "--data-dir",
                                          str(lossless_root), "--results", str(out), "--limit", "3000"])
    assert result.exit_code == 0, result.output
    row = list(csv.DictReader(open(out)))[-1]
    assert row["data_variant"] == "original-lossless" and row["predictions"].startswith("predictions/")
    from benchmark.report import results
    stored = results.load_predictions(out, row["predictions"])
    assert len(stored["test_correct"]) == 1000 and len(stored["val_correct"]) == 600
    assert stored["test_correct"].mean() * 100 == pytest.approx(float(row["test_acc"]))


def test_compare_data_pairs_stored_predictions(tmp_path):
    """Two full rows (one per copy) with stored predictions: compare-data and the penalty table pair them."""
    from benchmark.report import pairs, results, rows as leaderboard

    out = tmp_path / "results" / "runs.csv"
    rng = np.random.default_rng(0)
    truth = {"cifar10-lossless": (rng.random(1000) < 0.8, rng.random(10_000) < 0.8),
             "cifar10-test1k": (rng.random(1000) < 0.7, rng.random(10_000) < 0.7)}
    for i, (dataset, (test, val)) in enumerate(truth.items()):
        row = {"time": f"2026-12-04T10:00:0{i}", "dataset": dataset, "data_variant": dataset, "protocol": "full",
               "encoder": "pixels", "probe": "svm", "val_acc": val.mean() * 100, "test_acc": test.mean() * 100,
               "C": 1e-4, "gap": 1e-4, "search_gap": 1e-4, "seed": 0, "val_size": 10_000, "n_train": 50_000,
               "n_test": 1000, "dims": 3072, "draws": 1, "layer": ""}
        row["predictions"] = results.save_predictions(out, row, {"test_correct": test, "val_correct": val})
        results.append(row, out)
    result = invoke(*["compare-data", "--features", "pixels", "--results", str(out)])
    assert result.exit_code == 0, result.output
    expected = (truth["cifar10-lossless"][1].mean() - truth["cifar10-test1k"][1].mean()) * 100
    assert f"difference {expected:+.2f}" in result.output
    rows = leaderboard.whole_dataset(leaderboard.load_rows(out))
    table = pairs.penalty_table(rows, out)
    assert "`pixels`" in table and f"{expected:+.2f} [" in table
    missing = invoke(*["compare-data", "--features", "kmeans", "--results", str(out)])
    assert missing.exit_code != 0 and "no full-protocol svm row of kmeans" in str(missing.exception or missing.output)
