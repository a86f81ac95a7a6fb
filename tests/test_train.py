import csv
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from benchmark.encoders import registry
from benchmark.core.errors import BenchError
from benchmark.training.checkpoints import CHECKPOINT
from benchmark.training.dcgan import TrainConfig, Trainer
from conftest import class_images, invoke, write_image_folder

IMAGES = class_images(8)[0]  # 80 images, 32x32


def config(**kw):
    return TrainConfig(**{"arch": "small", "epochs": 2, "batch_size": 16, "seed": 3, **kw})


def params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_steps_keep_losses_finite_and_change_weights(tmp_path):
    trainer = Trainer(config(), IMAGES, tmp_path)
    before = params(trainer.D), params(trainer.G)
    losses = trainer.fit(max_steps=3)
    assert all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(before[0][k], v) for k, v in trainer.D.state_dict().items())
    assert any(not torch.equal(before[1][k], v) for k, v in trainer.G.state_dict().items())


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path):
    straight = Trainer(config(), IMAGES, tmp_path / "a")
    straight.fit()
    first = Trainer(config(), IMAGES, tmp_path / "b")
    first.fit(epochs=1)
    resumed = Trainer(config(), IMAGES, tmp_path / "b")
    resumed.load(tmp_path / "b" / CHECKPOINT)
    assert resumed.epoch == 1
    resumed.fit()
    for a, b in ((straight.G, resumed.G), (straight.D, resumed.D)):
        for k, v in a.state_dict().items():
            assert torch.equal(v, b.state_dict()[k]), k
    assert (tmp_path / "b" / "samples" / "epoch-002.png").is_file()


def test_interrupt_writes_a_checkpoint(tmp_path, monkeypatch):
    trainer = Trainer(config(), IMAGES, tmp_path)
    calls = {"n": 0}
    step = trainer.train_step

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return step(*args)

    monkeypatch.setattr(trainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["epoch"] == 0 and state["step"] == 2


def test_resume_with_other_options_is_refused(tmp_path):
    Trainer(config(), IMAGES, tmp_path).fit(epochs=1)
    other = Trainer(config(lr=1e-3), IMAGES, tmp_path)
    with pytest.raises(BenchError, match="resume with the same options"):
        other.load(tmp_path / CHECKPOINT)


def _rank(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    trainer = Trainer(config(), IMAGES, out)
    trainer.fit(max_steps=3)
    if rank == 0:
        torch.save({"G": trainer.G.state_dict(), "D": trainer.D.state_dict()}, out / "ddp.pt")
    torch.distributed.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_rank, args=(2, port, tmp_path), nprocs=2, start_method="spawn")
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single = Trainer(config(), IMAGES, tmp_path / "single")
    single.fit(max_steps=3)
    # equal up to float summation order: Adam's first steps are about lr * sign(grad), so a
    # near-zero gradient whose sign flips moves one entry by up to 2 lr; all else agrees closely
    for name, module in (("G", single.G), ("D", single.D)):
        for k, v in module.state_dict().items():
            diff = (ddp[name][k] - v).abs()
            assert diff.mean() < 1e-6 and diff.max() <= 2 * config().lr, (name, k, float(diff.max()))


def test_checkpoint_loads_as_an_encoder(tmp_path):
    Trainer(config(), IMAGES, tmp_path / "run").fit(epochs=1)
    enc = registry.build(f"dcgan:{tmp_path / 'run'}")
    assert enc.dim == (64 + 128 + 256) * 16
    enc.fit(IMAGES[:32], batch_size=16)
    assert enc.transform(IMAGES[:4]).shape == (4, enc.dim)
    assert registry.build(f"dcgan:{tmp_path / 'run'},layers=3").dim == 256 * 16
    with pytest.raises(BenchError, match="no DCGAN checkpoint"):
        registry.build(f"dcgan:{tmp_path / 'nowhere'}")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match="neither a PyTorch checkpoint nor a safetensors file"):
        registry.build(f"dcgan:{tmp_path / 'junk.pt'}")


def test_cli_train_and_resume(tmp_path):
    write_image_folder(tmp_path / "imgs" / "train", ["a", "b"], 16, size=64, fmt="jpg")
    out = tmp_path / "run"
    args = ["train", "dcgan", "--data", f"folder:{tmp_path / 'imgs'}", "--out", str(out), "--epochs", "1",
            "--batch-size", "8", "--device", "cpu"]
    result = invoke(*args)
    assert result.exception is None, result.output
    assert (out / CHECKPOINT).is_file() and (out / "samples.png").is_file()
    again = invoke(*args)
    assert isinstance(again.exception, BenchError) and "--resume" in str(again.exception)
    more = invoke(*args[:-4], "--epochs", "2", "--batch-size", "8", "--resume")
    assert isinstance(more.exception, BenchError)  # epochs differ from the checkpoint's config


def test_export_adds_a_verified_registry_entry(tmp_path, monkeypatch):
    from benchmark.encoders import pretrained

    manifest = tmp_path / "pretrained" / "manifest.toml"
    manifest.parent.mkdir()
    manifest.write_text(pretrained.MANIFEST.read_text())
    monkeypatch.setattr(pretrained, "MANIFEST", manifest)
    monkeypatch.setattr(pretrained, "PROJECT_DIR", manifest.parent)
    Trainer(config(), IMAGES, tmp_path / "run").fit(epochs=1)
    result = invoke("pretrained", "export", tmp_path / "run", "--name", "toy-small", "--title", "a toy")
    assert result.exception is None, result.output
    meta = pretrained.entry("toy-small").meta
    assert meta["encoder"] == "dcgan" and meta["training"]["epochs"] == 1 and "cpu" in meta["training"]["machine"]
    by_name, by_run = registry.build("toy-small"), registry.build(f"dcgan:{tmp_path / 'run'}")
    by_name.fit(IMAGES[:32], batch_size=16)
    by_run.fit(IMAGES[:32], batch_size=16)
    np.testing.assert_allclose(by_name.transform(IMAGES[:4]), by_run.transform(IMAGES[:4]), rtol=1e-6)
    weights = manifest.parent / "toy-small" / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-1] + b"x")
    with pytest.raises(BenchError, match="git blob SHA-1"):
        registry.build("toy-small")


def test_throughput_command_appends_rows(tmp_path):
    out = tmp_path / "speed.csv"
    for _ in range(2):
        result = invoke("train", "throughput", "--arch", "small", "--steps", "1", "--rounds", "1", "--device", "cpu",
                        "--out", out)
        assert result.exception is None, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and float(rows[0]["trainer_img_s"]) > 0 and float(rows[0]["plain_img_s"]) > 0
