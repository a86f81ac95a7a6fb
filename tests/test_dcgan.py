import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.encoders import pretrained
from benchmark.training import samples
from benchmark.models.dcgan import BN_EPS, architecture
from benchmark.encoders import dcgan as dcgan_encoders
from benchmark.encoders import registry
from benchmark.core.errors import BenchError
from conftest import invoke

SVHN = "svhn_unsup_all_conv_dcgan_100z_gaussian_lr_0.0005_64mb"


def test_git_blob_sha1_matches_git():
    assert pretrained.git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert pretrained.git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_corrupted_weight_file_is_refused(weights_dir, tmp_path, monkeypatch):
    copy = tmp_path / "w" / SVHN
    shutil.copytree(weights_dir / SVHN, copy)
    target = copy / "200_discrim_params.jl_02.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "w"))
    with pytest.raises(BenchError) as err:
        registry.build("dcgan-svhn")
    expected = next(f.sha1 for f in pretrained.entry("dcgan-svhn").files() if f.name == target.name)
    message = str(err.value)
    assert str(target) in message and expected in message and pretrained.git_blob_sha1(bytes(data)) in message


def test_missing_files_name_files_and_layers(weights_dir):
    with pytest.raises(BenchError) as err:
        registry.build("dcgan-imagenet")
    message = str(err.value)
    assert "30_discrim_params.jl_11.npy" in message and "30_discrim_params.jl_14.npy" in message
    assert "layers 5,6" in message and "\n" not in message
    assert "layers 5,6" in message and "layers=1-4 works without them" in message and "\n" not in message
    assert registry.build("dcgan-imagenet:layers=1-4").dim == (128 + 128 + 256 + 256) * 16


def test_missing_everything_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(BenchError, match="bench pretrained fetch dcgan-svhn"):
        registry.build("dcgan-svhn")


@pytest.mark.parametrize("layers", ["1", "2", "3", "4", "5", "6", "1-4", "1,3,5", "5-6", "all"])
def test_feature_width_for_every_layer_choice(layers):
    enc = registry.build(f"dcgan-random:layers={layers}")
    chosen = dcgan_encoders.parse_layers(layers, 6)
    widths = [128, 128, 256, 256, 512, 512]
    assert enc.dim == sum(widths[i - 1] * 16 for i in chosen)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    feats = enc.fit(images).transform(images[:2])
    assert feats.shape == (2, enc.dim) and feats.dtype == np.float32
    assert sum(s.stop - s.start for s in enc.layers().values()) == enc.dim
    assert registry.build("dcgan-random").dim == 28672
    assert registry.build("dcgan-random:arch=svhn32").dim == 7168


def test_bad_layer_choice():
    with pytest.raises(BenchError, match="layers 1-3"):
        registry.build("dcgan-random:arch=small,layers=1-4")
    with pytest.raises(BenchError, match="range like 1-4"):
        registry.build("dcgan-random:layers=x")


def test_batchnorm_estimate_matches_direct_computation():
    enc = registry.build("dcgan-random:arch=small,layers=1-3,seed=1,precision=float32")  # the estimate, exactly
    images = np.random.default_rng(0).integers(0, 256, size=(10, 32, 32, 3), dtype=np.uint8)
    enc.fit(images, batch_size=3)  # uneven batches must not matter
    disc = enc.disc
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        h = F.leaky_relu(disc.convs[0](x), 0.2)
        for k in (1, 2):
            a = disc.convs[k](h).double()
            mean, var = a.mean((0, 2, 3)), a.var((0, 2, 3), unbiased=False)
            torch.testing.assert_close(disc.norms[k].mean.double(), mean, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(disc.norms[k].var.double(), var, rtol=1e-4, atol=1e-7)
            norm = (a - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + BN_EPS)
            norm = norm * disc.norms[k].weight.double().view(1, -1, 1, 1) + disc.norms[k].bias.double().view(1, -1, 1, 1)
            h = F.leaky_relu(norm.float(), 0.2)
    state = enc.state()
    assert set(state) == {"bn2_mean", "bn2_var", "bn3_mean", "bn3_var"}
    again = registry.build("dcgan-random:arch=small,layers=1-3,seed=1,precision=float32")
    again.load_state(state)
    np.testing.assert_allclose(again.transform(images), enc.transform(images), rtol=1e-5, atol=1e-6)


def test_bn_sample_is_part_of_fingerprint():
    a = registry.build("dcgan-random:arch=small")
    b = registry.build("dcgan-random:arch=small,bn_images=1000")
    c = registry.build("dcgan-random:arch=small,seed=1")
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3


def _svhn_scores(label):
    """Mean logits of the released D on its G's samples and on uniform noise."""
    gen = dcgan_encoders.load_released_generator()
    disc, _ = dcgan_encoders.load_released_discriminator("dcgan-svhn", (1, 2, 3), with_output=True)
    fake = samples.generate(gen, 128, seed=0)
    noise = torch.rand(128, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        return float(disc(fake).mean()), float(disc(noise).mean())


def test_kernel_orientation(weights_dir, monkeypatch):
    """With Theano's kernels flipped, the released D scores its G's samples far above noise,
    and above the samples of an unflipped G; with the wrong orientation neither holds."""
    fake, noise = _svhn_scores("flipped")
    assert fake - noise > 5.0
    with monkeypatch.context() as m:
        m.setattr(dcgan_encoders, "theano_kernel", lambda w: torch.from_numpy(w.copy()))
        gen_wrong = samples.generate(dcgan_encoders.load_released_generator(), 128, seed=0)
        wrong_fake, wrong_noise = _svhn_scores("unflipped")
    assert wrong_fake - wrong_noise < 5.0  # the first assertion fails if the flip is lost
    disc, _ = dcgan_encoders.load_released_discriminator("dcgan-svhn", (1, 2, 3), with_output=True)
    with torch.no_grad():
        assert fake > float(disc(gen_wrong).mean()) + 1.0


def test_samples_grid(weights_dir, tmp_path):
    out = tmp_path / "grid.png"
    result = invoke("samples", "dcgan-svhn", "--out", out)
    assert result.exception is None, result.output
    from PIL import Image

    assert Image.open(out).size == (795, 795)  # 8 cells of 32 px + 1 px borders, scaled 3x


def test_architectures_have_paper_shapes():
    assert architecture("imagenet32").feature_width(range(1, 7)) == 28672
    assert architecture("svhn32").feature_width(range(1, 4)) == 7168
