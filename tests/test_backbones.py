"""torchvision:NAME and timm:NAME encoders from a checkpoint file: prefixes, layouts, bad and hostile files."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import commands as cli
from benchmark.core.errors import BenchError
from benchmark.encoders import registry

IMAGES = np.random.default_rng(0).integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)


def features(spec):
    return registry.build(spec).transform(IMAGES)


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """A seeded ResNet-18 at 32 px, its features, and its state dict saved with a DataParallel prefix."""
    folder = tmp_path_factory.mktemp("ckpt")
    encoder = registry.build("torchvision:resnet18:size=32,seed=3")
    torch.save({f"module.{k}": v for k, v in encoder.net.state_dict().items()}, folder / "module.pth")
    return folder, encoder.transform(IMAGES)


def test_module_prefix_round_trips_to_identical_features(resnet):
    folder, expected = resnet
    got = registry.build(f"torchvision:resnet18:size=32,weights={folder / 'module.pth'}")
    assert np.array_equal(got.transform(IMAGES), expected)
    assert got.spec == f"torchvision:resnet18:weights={folder / 'module.pth'},size=32"
    assert got.fingerprint() != registry.build("torchvision:resnet18:size=32").fingerprint()


@pytest.mark.parametrize("layout", ["backbone-safetensors", "nested-state_dict", "nested-teacher-encoder", "bare"])
def test_other_prefixes_and_layouts(layout, resnet, tmp_path):
    from safetensors.torch import save_file

    folder, expected = resnet
    state = {k.removeprefix("module."): v for k, v in torch.load(folder / "module.pth", weights_only=True).items()}
    if layout == "backbone-safetensors":
        path = tmp_path / "w.safetensors"
        save_file({f"backbone.{k}": v.contiguous() for k, v in state.items()}
                  | {"projector.0.weight": torch.zeros(8, 512)}, str(path))  # a projection head beside: ignored
    elif layout == "nested-state_dict":
        path = tmp_path / "w.pt"
        torch.save({"state_dict": state, "epoch": 3}, path)
    elif layout == "nested-teacher-encoder":
        path = tmp_path / "w.pt"
        torch.save({"teacher": {f"encoder.{k}": v for k, v in state.items()}, "step": 10}, path)
    else:
        path = tmp_path / "w.pt"
        torch.save(state, path)
    assert np.array_equal(features(f"torchvision:resnet18:size=32,weights={path}"), expected)


def test_timm_vit_from_safetensors(tmp_path):
    pytest.importorskip("timm")
    from safetensors.torch import save_file

    original = registry.build("timm:vit_tiny_patch16_224:size=32,seed=1")
    save_file({f"module.{k}": v.contiguous() for k, v in original.net.state_dict().items()},
              str(tmp_path / "vit.safetensors"))
    loaded = registry.build(f"timm:vit_tiny_patch16_224:size=32,weights={tmp_path / 'vit.safetensors'}")
    assert np.array_equal(loaded.transform(IMAGES), original.transform(IMAGES))
    token = registry.build("timm:vit_tiny_patch16_224:size=32,layers=blocks.11,pool=token")
    assert token.transform(IMAGES).shape == (6, 192)


@pytest.mark.parametrize("case, message", [
    ("other-architecture", "keys of another shape"),
    ("missing", "keys missing from it"),
    ("not-a-checkpoint", "a damaged or unsafe PyTorch file"),
    ("no-file", "no such file"),
    ("no-tensors", "no tensors found"),
    ("unknown-layer", "no module named 'layer9'"),
    ("unknown-model", "unknown classification model 'resnet19'"),
])
def test_bad_checkpoints_and_options_are_one_line(case, message, tmp_path):
    path = tmp_path / "w.pt"
    spec = f"torchvision:resnet18:size=32,weights={path}"
    if case == "other-architecture":
        torch.save(registry.build("torchvision:resnet34:size=32").net.state_dict(), path)
        spec = f"torchvision:resnet18:size=32,weights={path}"
        message = "keys unknown to the model"  # resnet34 has more blocks
    elif case == "missing":
        state = registry.build("torchvision:resnet18:size=32").net.state_dict()
        torch.save({k: v for k, v in state.items() if not k.startswith("layer4")}, path)
    elif case == "not-a-checkpoint":
        path.write_bytes(b"PK\x03\x04 definitely not torch")
    elif case == "no-tensors":
        torch.save({"epoch": 3, "note": "x"}, path)
    elif case == "unknown-layer":
        spec = "torchvision:resnet18:size=32,layers=layer9"
    elif case == "unknown-model":
        spec = "torchvision:resnet19"
    with pytest.raises(BenchError) as raised:
        registry.build(spec)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_bad_checkpoint_through_bench_is_one_line(tmp_path):
    (tmp_path / "w.pt").write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "benchmark.cli", "run", "cifar10", "--features",
                           f"torchvision:resnet18:weights={tmp_path / 'w.pt'}", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "neither a PyTorch checkpoint" in lines[0], proc.stderr


def test_a_pickle_payload_in_a_pth_never_runs(tmp_path, capfd):
    class Payload:
        def __reduce__(self):
            return (print, ("PAYLOAD RAN",))

    torch.save({"conv1.weight": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(BenchError, match="could run code on loading"):
        registry.build(f"torchvision:resnet18:size=32,weights={tmp_path / 'evil.pth'}")
    assert "PAYLOAD RAN" not in capfd.readouterr().out


def test_timm_missing_is_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else real(name, *a))
    with pytest.raises(BenchError, match=r'pip install -e "\.\[timm\]"'):
        registry.build("timm:resnet18")


def test_bench_run_and_encoders_listing(resnet, cifar_folder, tmp_path):
    folder, _ = resnet
    out = tmp_path / "runs.csv"
    result = CliRunner().invoke(cli.cli, ["run", "cifar10", "--features",
                                          f"torchvision:resnet18:weights={folder / 'module.pth'},size=32",
                                          "--data-dir", str(cifar_folder), "--results", str(out), "--val-size", "20"])
    assert result.exit_code == 0, result.output
    assert list(csv.DictReader(open(out)))[0]["dims"] == "512"
    listing = CliRunner().invoke(cli.cli, ["encoders", "--verbose"])
    assert "torchvision" in listing.output and "timm" in listing.output and "weights=" in listing.output
