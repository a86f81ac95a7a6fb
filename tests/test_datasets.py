import pickle

import numpy as np
import pytest
from PIL import Image

from benchmark.data import datasets
from benchmark.data.datasets import CIFAR10_CLASSES
from benchmark.core.errors import BenchError
from conftest import write_image_folder, write_svhn_mat


def test_cifar_image_folder_uses_canonical_label_order(cifar_folder, tmp_path):
    split = datasets.load("cifar10", "train", cifar_folder, tmp_path / "c")
    assert split.images.shape == (120, 32, 32, 3) and split.images.dtype == np.uint8
    assert split.labels.dtype == np.int64
    # the first image of each class folder holds that class's colour (class_images), so
    # labels must follow CIFAR10_CLASSES, not the reversed creation order of the folders
    first = Image.open(cifar_folder / "cifar10" / "train" / "truck" / "0108.png")
    index = np.flatnonzero(split.labels == CIFAR10_CLASSES.index("truck"))[0]
    np.testing.assert_array_equal(split.images[index], np.asarray(first))


def test_decoded_split_is_cached_and_identical(cifar_folder, tmp_path):
    first = datasets.load("cifar10", "test", cifar_folder, tmp_path / "c")
    assert list((tmp_path / "c" / "decoded").glob("*.h5"))
    second = datasets.load("cifar10", "test", cifar_folder, tmp_path / "c")
    assert first.fingerprint() == second.fingerprint()


def test_cifar_batches(cifar_batches):
    source = datasets.find("cifar10", cifar_batches)
    train, test = source.splits["train"](), source.splits["test"]()
    assert train.images.shape == (100, 32, 32, 3) and len(test) == 10
    with open(cifar_batches / "cifar10" / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(f)  # a file this test wrote itself
    np.testing.assert_array_equal(train.images[0], raw[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0))


def test_cifar_batches_refuse_foreign_objects(cifar_batches):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = cifar_batches / "cifar10" / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(BenchError, match="data_batch_1.*refusing to load builtins.print"):
        datasets.load("cifar10", "train", cifar_batches)


def test_svhn_mat_labels_and_layout(svhn_dir):
    x, y = write_svhn_mat(svhn_dir / "svhn" / "train_32x32.mat", 30, 0)
    split = datasets.load("svhn", "train", svhn_dir)
    assert split.images.shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(split.images[5], x[:, :, :, 5])
    np.testing.assert_array_equal(split.labels, y.ravel() % 10)
    assert split.labels.min() >= 0 and split.labels.max() <= 9
    assert len(datasets.load("svhn-extra", "train", svhn_dir)) == 38


def test_svhn_bad_labels(svhn_dir):
    from scipy.io import savemat

    savemat(svhn_dir / "svhn" / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0], [11]])})
    with pytest.raises(BenchError, match="test_32x32.mat: labels span 0..11"):
        datasets.load("svhn", "test", svhn_dir)


def test_folder_dataset_downsamples_with_area_filter(tmp_path):
    write_image_folder(tmp_path / "mine" / "train", ["a", "b"], 3, size=64, fmt="jpg")
    write_image_folder(tmp_path / "mine" / "test", ["a", "b"], 2, size=64, fmt="jpg")
    source = datasets.find(f"folder:{tmp_path / 'mine'}", cache_dir=tmp_path / "c")
    train = source.splits["train"]()
    assert source.classes == ("a", "b") and train.images.shape == (6, 32, 32, 3)
    big = np.asarray(Image.open(sorted((tmp_path / "mine" / "train" / "a").iterdir())[0]).convert("RGB"), np.float64)
    box = big.reshape(32, 2, 32, 2, 3).mean((1, 3))
    assert np.abs(train.images[0].astype(float) - box).max() <= 1.0


def test_missing_dataset_is_one_line(tmp_path):
    with pytest.raises(BenchError) as err:
        datasets.load("cifar10", "train", tmp_path)
    message = str(err.value)
    assert "\n" not in message and "--data-dir" in message and "--download" in message and str(tmp_path) in message
    with pytest.raises(BenchError, match="BENCH_DATA_DIR is unset"):
        datasets.load("svhn", "train", None)


def test_bad_image_names_its_file(cifar_folder, tmp_path):
    bad = cifar_folder / "cifar10" / "test" / "cat" / "0001.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(BenchError, match=r"0001\.png: cannot read image"):
        datasets.load("cifar10", "test", cifar_folder, tmp_path / "c")
