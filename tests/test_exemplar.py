import math

import numpy as np
import pytest
import torch

from benchmark.training import augment
from benchmark.encoders import registry
from benchmark.core.errors import BenchError
from benchmark.models.exemplar import build_net, parse_net
from benchmark.training.checkpoints import CHECKPOINT
from benchmark.training.exemplar import ExemplarConfig, ExemplarTrainer
from conftest import class_images, invoke, write_image_folder

IMAGE = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
CORNER = torch.tensor([[10, 20]])


def one(**changes) -> augment.Params:
    p = augment.Params.neutral(1)
    for k, v in changes.items():
        setattr(p, k, torch.tensor(v, dtype=torch.float32).reshape(getattr(p, k).shape))
    return p


def test_neutral_parameters_return_the_plain_crop():
    mean, axes = augment.principal_components(IMAGE)
    out = augment.transform(IMAGE, CORNER, 32, one(), mean, axes)
    assert out.shape == (1, 3, 32, 32)
    torch.testing.assert_close(out, IMAGE[..., 20:52, 10:42], atol=1e-5, rtol=0)


def test_translation_moves_the_window_by_a_fraction_of_the_patch():
    out = augment.crop(IMAGE, CORNER, 32, one(shift=[0.25, -0.125]))  # 8 px right, 4 px up
    torch.testing.assert_close(out, IMAGE[..., 16:48, 18:50], atol=1e-5, rtol=0)


def test_scaling_and_rotation_resample_about_the_centre():
    zoom = augment.crop(IMAGE, torch.tensor([[16, 16]]), 32, one(scale=2.0))  # the central 16x16, magnified
    torch.testing.assert_close(zoom[..., 8:24:2, 8:24:2].mean(), IMAGE[..., 24:40, 24:40][..., 4:12, 4:12].mean(),
                               atol=0.05, rtol=0)
    turned = augment.crop(IMAGE, torch.tensor([[16, 16]]), 32, one(angle=math.pi / 2))  # a quarter turn is exact
    torch.testing.assert_close(turned, torch.rot90(IMAGE[..., 16:48, 16:48], 1, (2, 3)), atol=1e-5, rtol=0)


def test_colour_round_trip_and_range():
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(augment.hsv_to_rgb(augment.rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    hsv = augment.rgb_to_hsv(torch.tensor([[1.0, 0.5, 0.0]]).view(1, 3, 1, 1)).flatten()
    torch.testing.assert_close(hsv, torch.tensor([30 / 360, 1.0, 1.0]))  # orange
    p = augment.Params.draw(4, torch.Generator().manual_seed(2))
    out = augment.colour(x, p)
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, x)


def test_principal_component_contrast():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    mean, axes = augment.principal_components(x)
    torch.testing.assert_close(axes.T @ axes, torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(augment.pca_contrast(x, torch.ones(2, 3), mean, axes), x, atol=1e-5, rtol=0)
    doubled = augment.pca_contrast(x, torch.full((2, 3), 2.0), mean, axes)  # all axes x2 = twice the deviation
    torch.testing.assert_close(doubled - mean.view(1, 3, 1, 1), 2 * (x - mean.view(1, 3, 1, 1)), atol=1e-5, rtol=0)


def test_two_draws_of_one_patch_differ_and_stay_in_range():
    g = torch.Generator().manual_seed(4)
    mean, axes = augment.principal_components(IMAGE)
    a, b = (augment.transform(IMAGE, CORNER, 32, augment.Params.draw(1, g), mean, axes) for _ in range(2))
    assert not torch.allclose(a, b)
    assert a.min() >= 0 and a.max() <= 1


@pytest.mark.parametrize("name,width", [("64c5-64c5-128f", 1024), ("64c5-128c5-256c5-512f", 3840)])
def test_feature_width_for_each_network(name, width):
    encoder = registry.build(f"exemplar-cnn:net={name},weights=random,fit_images=8")
    images = class_images(2)[0][:6]
    features = encoder.fit(images).transform(images)
    assert encoder.dim == width and features.shape == (6, width) and np.isfinite(features).all()
    assert sum(s.stop - s.start for s in encoder.layers().values()) == width


def test_bad_network_name_is_one_line():
    with pytest.raises(BenchError, match="64c5-64c5-128f"):
        parse_net("64x5-128f")


@pytest.fixture
def patches_folder(tmp_path):
    write_image_folder(tmp_path / "unlabeled", ["a", "b"], 10, size=64, fmt="jpg")
    return tmp_path / "unlabeled"


def trainer(folder, out, **kw):
    config = ExemplarConfig(**{"classes": 12, "steps": 4, "batch_size": 8, "checkpoint_every": 2, "seed": 5, **kw})
    return ExemplarTrainer(config, folder, out)


def test_training_changes_weights_and_resume_is_exact(patches_folder, tmp_path):
    straight = trainer(patches_folder, tmp_path / "a")
    before = {k: v.clone() for k, v in straight.net.state_dict().items()}
    stats = straight.fit()
    assert np.isfinite(stats["loss"])
    assert any(not torch.equal(before[k], v) for k, v in straight.net.state_dict().items())
    first = trainer(patches_folder, tmp_path / "b")
    first.fit(max_steps=2)
    resumed = trainer(patches_folder, tmp_path / "b")
    resumed.load(tmp_path / "b" / CHECKPOINT)
    resumed.fit()
    for k, v in straight.net.state_dict().items():
        assert torch.equal(v, resumed.net.state_dict()[k]), k


def test_a_checkpoint_loads_as_an_encoder(patches_folder, tmp_path):
    result = invoke(*["train", "exemplar-cnn", "--data", str(patches_folder), "--classes", "12",
                                          "--steps", "2", "--batch-size", "8", "--out", str(tmp_path / "run"),
                                          "--device", "cpu"])
    assert result.exit_code == 0, result.output
    encoder = registry.build(f"exemplar-cnn:{tmp_path / 'run'},fit_images=8")
    images = class_images(2)[0][:5]
    features = encoder.fit(images).transform(images)
    assert features.shape == (5, 1024)
    random = registry.build("exemplar-cnn:weights=random")
    assert random.fingerprint() != encoder.fingerprint()


def test_random_weights_are_seeded():
    a, b, c = build_net("64c5-64c5-128f", seed=1), build_net("64c5-64c5-128f", seed=1), build_net("64c5-64c5-128f")
    assert torch.equal(a.convs[0].weight, b.convs[0].weight) and not torch.equal(a.convs[0].weight, c.convs[0].weight)
