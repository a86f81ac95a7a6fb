import numpy as np
import pytest
import torch

from benchmark.encoders import registry
from benchmark.encoders import kmeans
from benchmark.encoders.kmeans import KMeansNetwork
from conftest import class_images


def small(**kw):
    return KMeansNetwork(**{"k": "8", "patches": "3000", "iters": "5", "compile": "false", **kw})


def test_patch_normalisation():
    p = torch.tensor(np.random.default_rng(0).uniform(0, 255, size=(5, 108)), dtype=torch.float32)
    got = kmeans.normalise(p, 10.0).numpy()
    x = p.numpy().astype(np.float64)
    want = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, ddof=1, keepdims=True) + 10)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_whitening_gives_identity_covariance():
    enc = small(whiten_eps="0")
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(108, 108))
    p = torch.tensor(rng.normal(size=(20000, 108)) @ mixing, dtype=torch.float32)
    enc.fit_whitening(p)
    white = ((p - enc.patch_mean) @ enc.whitening).double()
    np.testing.assert_allclose(torch.cov(white.T).numpy(), np.eye(108), atol=2e-3)
    np.testing.assert_allclose(enc.whitening.numpy(), enc.whitening.numpy().T, atol=1e-5)  # ZCA is symmetric


def test_triangle_activation():
    dist = torch.tensor([[1.0, 2.0, 6.0], [3.0, 3.0, 3.0]])
    np.testing.assert_allclose(kmeans.triangle(dist).numpy(), [[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("side", [27, 28, 5])
def test_quadrant_sums_split_at_the_rounded_half(side):
    a = np.arange(2 * side * side * 3, dtype=np.float64).reshape(2, side, side, 3)
    pooled = kmeans.quadrant_sums(torch.from_numpy(a).reshape(2, side * side, 3), side).numpy()
    h = int(side / 2 + 0.5)
    want = np.concatenate([a[:, :h, :h].sum((1, 2)), a[:, :h, h:].sum((1, 2)), a[:, h:, :h].sum((1, 2)),
                           a[:, h:, h:].sum((1, 2))], 1)
    np.testing.assert_allclose(pooled, want)


@pytest.mark.parametrize("compiled", ["false", "true"])
def test_transform_matches_direct_computation(compiled):
    images, _ = class_images(3)
    enc = small(compile=compiled).fit(images)
    got = enc.transform(images[:2])
    c = enc.centroids.double().numpy()
    for i in range(2):
        patches = np.stack([images[i, r:r + 6, q:q + 6].transpose(2, 0, 1).ravel()
                            for r in range(27) for q in range(27)]).astype(np.float64)
        patches = (patches - patches.mean(1, keepdims=True)) / np.sqrt(patches.var(1, ddof=1, keepdims=True) + 10)
        white = (patches - enc.patch_mean.double().numpy()) @ enc.whitening.double().numpy()
        z = np.sqrt(((white[:, None, :] - c[None]) ** 2).sum(-1))
        f = np.maximum(0, z.mean(1, keepdims=True) - z).reshape(27, 27, -1)
        want = np.concatenate([f[:14, :14].sum((0, 1)), f[:14, 14:].sum((0, 1)),
                               f[14:, :14].sum((0, 1)), f[14:, 14:].sum((0, 1))])
        np.testing.assert_allclose(got[i], want, rtol=2e-3, atol=2e-3)


def test_sampled_patches_match_unfold_layout():
    enc = small(patches="50")
    images = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    rng = np.random.default_rng(5)
    sampled = enc.sample_patches(images, rng)
    rng = np.random.default_rng(5)
    which, rows, cols = rng.integers(0, 3, 50), rng.integers(0, 27, 50), rng.integers(0, 27, 50)
    every = kmeans.patches(torch.from_numpy(images), 6, 1)  # (3, 729, 108)
    np.testing.assert_array_equal(sampled.numpy(), every[which, rows * 27 + cols].numpy())


def test_fit_transform_width_and_state_roundtrip():
    images, _ = class_images(20)
    enc = registry.build("kmeans:k=8,patches=3000,iters=5,compile=false")
    enc.fit(images)
    feats = enc.transform(images[:5])
    assert feats.shape == (5, 32) and feats.dtype == np.float32 and (feats >= 0).all() and feats.any()
    again = registry.build("kmeans:k=8,patches=3000,iters=5,compile=false")
    again.load_state(enc.state())
    np.testing.assert_allclose(again.transform(images[:5]), feats, rtol=1e-5)
    assert registry.build("kmeans:k=4000").dim == 16000


def test_a_few_images_at_small_k_are_encoded_without_padding():
    """A step holds at most the call's images: at k = 8 a step's budget would pad 5 images to about 1,000."""
    images, _ = class_images(5)
    enc = registry.build("kmeans:k=8,patches=3000,iters=2,compile=false").fit(images)
    steps, encode = [], enc.encode
    enc.encode = lambda x, *args: (steps.append(len(x)), encode(x, *args))[1]
    assert enc.transform(images[:5]).shape == (5, 32) and steps == [5]


def test_kmeans_reduces_distortion():
    images, _ = class_images(10)
    enc = small(k="16", iters="1").fit(images)
    p = kmeans.whiten(kmeans.normalise(enc.sample_patches(images, np.random.default_rng(0)), enc.norm_eps),
                      enc.patch_mean, enc.whitening)

    def distortion(e):
        return kmeans.distances(p, e.centroids, e.centroids.pow(2).sum(1)).min(1).values.mean()

    one = distortion(enc)
    enc10 = small(k="16", iters="10").fit(images)
    ten = distortion(enc10)
    assert ten < one


@pytest.mark.parametrize("empty", ["zero", "reseed"])
def test_an_empty_cluster_is_zeroed_by_default_or_reseeded(empty):
    """The reference code's rule (the default) zeroes a centroid no patch chose; reseed moves it to a patch."""
    images, _ = class_images(10)
    enc = small(k="100", patches="200", iters="1", empty=empty).fit(images)
    empties = enc.cluster_sizes == 0
    assert empties.any() and torch.isfinite(enc.centroids).all()
    zeroed = enc.centroids.abs().sum(1) == 0
    assert torch.equal(zeroed, empties) if empty == "zero" else not zeroed.any()
