"""torchvision:NAME and timm:NAME encoders from a checkpoint file: prefixes, layouts, bad and hostile files."""

import csv

import numpy as np
import pytest
import torch

from benchmark.core.errors import BenchError
from benchmark.encoders import registry
from conftest import console, invoke

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
    maps = registry.build("timm:vit_tiny_patch16_224:size=32,layers=3,11")  # forward_intermediates indices
    assert maps.transform(IMAGES).shape == (6, 2 * 192 * 16) and list(maps.layers()) == ["3", "11"]


@pytest.mark.parametrize("case, message", [
    ("other-architecture", "keys of another shape"),
    ("missing", "keys missing from it"),
    ("not-a-checkpoint", "a damaged or unsafe PyTorch file"),
    ("no-file", "no such file"),
    ("no-tensors", "no tensors found"),
    ("unknown-layer", "no graph node 'layer9'; its stages are conv1, bn1, relu, maxpool, layer1"),
    ("size", "cannot be built for size=33"),
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
    elif case == "size":
        spec = "torchvision:vit_b_16:size=33"
    elif case == "unknown-model":
        spec = "torchvision:resnet19"
    with pytest.raises(BenchError) as raised:
        registry.build(spec)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_bad_checkpoint_through_bench_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "w.pt").write_bytes(b"not a checkpoint")
    code, lines, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features",
                                  f"torchvision:resnet18:weights={tmp_path / 'w.pt'}", "--data-dir", tmp_path)
    assert code == 2 and len(lines) == 1 and "neither a PyTorch checkpoint" in lines[0], err


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
    result = invoke(*["run", "cifar10", "--features",
                                          f"torchvision:resnet18:weights={folder / 'module.pth'},size=32",
                                          "--data-dir", str(cifar_folder), "--results", str(out), "--val-size", "20"])
    assert result.exit_code == 0, result.output
    assert list(csv.DictReader(open(out)))[0]["dims"] == "512"
    listing = invoke(*["encoders", "--verbose"])
    assert "torchvision" in listing.output and "timm" in listing.output and "weights=" in listing.output



# ------------------------------------------------------------------ your checkpoint, every common architecture

def library_model(library: str, name: str, size: int, classes: int = 1000):
    """The model as its own library builds it, seeded, in eval mode: the reference."""
    torch.manual_seed(7)
    if library == "timm":
        import timm

        return timm.create_model(name, pretrained=False, num_classes=classes,
                                 **({"img_size": size} if "vit" in name else {})).eval()
    import torchvision

    return torchvision.models.get_model(name, weights=None, num_classes=classes,
                                        **({"image_size": size} if name.startswith("vit_") else {})).eval()


def library_embedding(library: str, net, x: torch.Tensor) -> torch.Tensor:
    """The library's own pre-logits: timm's forward_head(pre_logits=True); for torchvision, which has none, the
    input its final linear layer receives in the untouched model (SqueezeNet: its feature map, averaged)."""
    with torch.no_grad():
        if library == "timm":
            return net.forward_head(net.forward_features(x), pre_logits=True)
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        if not linears:
            return net.features(x).mean((2, 3))
        seen = []
        hook = linears[-1].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        net(x)
        hook.remove()
        return seen[0]


def wrap(layout: str, state: dict, other: dict) -> dict:
    """A state dict saved the way a training codebase saves it."""
    if layout == "ddp":
        return {f"module.{k}": v for k, v in state.items()}
    if layout == "lightning":
        return {"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3, "global_step": 30}
    if layout == "dino":  # the teacher is evaluated; the student sits beside it under DDP
        return {"teacher": {f"backbone.{k}": v for k, v in state.items()} | {"head.mlp.0.weight": torch.zeros(4, 4)},
                "student": {f"module.backbone.{k}": v for k, v in other.items()}, "epoch": 100}
    if layout == "moco":  # the query encoder, its momentum copy beside it
        return {"state_dict": {f"module.encoder_q.{k}": v for k, v in state.items()}
                | {f"module.encoder_k.{k}": v for k, v in other.items()}, "arch": "x"}
    if layout == "timm-train":
        return {"epoch": 9, "arch": "x", "state_dict": state, "optimizer": {"state": {}}}
    if layout == "ema":  # key=state_dict_ema chooses the EMA copy
        return {"state_dict": other, "state_dict_ema": state}
    if layout in ("float16", "bfloat16"):
        return {k: v.to(getattr(torch, layout)) if v.is_floating_point() else v for k, v in state.items()}
    if layout == "encoder":
        return {f"encoder.{k}": v for k, v in state.items()}
    return state


MODELS = [  # library, model, size, wrapped layout, classes in the checkpoint's head
    ("torchvision", "resnet18", 32, "ddp", 1000),
    ("torchvision", "resnet50", 32, "lightning", 10),
    ("torchvision", "convnext_tiny", 32, "dino", 1000),
    ("torchvision", "vit_b_16", 32, "safetensors", 1000),
    ("torchvision", "efficientnet_b0", 32, "moco", 10),
    ("torchvision", "mobilenet_v3_small", 32, "ema", 1000),
    ("torchvision", "densenet121", 32, "float16", 1000),
    ("torchvision", "regnet_y_400mf", 32, "encoder", 10),
    ("torchvision", "swin_t", 32, "bfloat16", 1000),
    ("torchvision", "squeezenet1_1", 64, "ddp", 10),
    ("timm", "resnet18", 32, "timm-train", 1000),
    ("timm", "convnext_atto", 32, "lightning", 10),
    ("timm", "vit_tiny_patch16_224", 32, "dino", 10),
    ("timm", "efficientnet_b0", 32, "safetensors", 1000),
]


@pytest.mark.slow
@pytest.mark.parametrize("library, name, size, layout, classes", MODELS, ids=[f"{m[0]}-{m[1]}" for m in MODELS])
def test_a_checkpoint_with_its_head_loads_and_matches_the_library(library, name, size, layout, classes, tmp_path):
    """Saved with its head (1,000 or 10 classes), plain and as its codebase wraps it: the features have the width
    `bench encoders --verbose` documents and equal the library's own pre-logits on the same input."""
    if library == "timm":
        pytest.importorskip("timm")
    net = library_model(library, name, size, classes)
    state = net.state_dict()
    if layout in ("float16", "bfloat16"):  # the reference holds the values the checkpoint can hold
        net.load_state_dict({k: v.to(getattr(torch, layout)).to(v.dtype) for k, v in state.items()})
        state = net.state_dict()
    other = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}  # a student, an online copy...
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    expected = library_embedding(library, net, x)
    for wrapped in ("plain", layout):
        path = tmp_path / f"{wrapped}.{'safetensors' if wrapped == 'safetensors' else 'pt'}"
        if wrapped == "safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        else:
            torch.save(wrap(wrapped, state, other), path)
        key = ",key=state_dict_ema" if wrapped == "ema" else ""
        encoder = registry.build(f"{library}:{name}:weights={path},size={size},precision=float32{key}")
        got = encoder.features(x)
        width = net.num_features if library == "timm" else expected.shape[1]
        assert got.shape == (1, encoder.dim) == (1, width), (wrapped, got.shape)
        torch.testing.assert_close(got, expected.float(), rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
        assert (classes == 1000) == (encoder.notice == ""), encoder.notice  # another head is said in one line


def test_layers_are_graph_nodes_probed_layer_by_layer(cifar_folder, tmp_path):
    """layers= names graph nodes (a module stands for its last node), 4x4 max-pooled; --per-layer probes each."""
    encoder = registry.build("torchvision:resnet18:size=32,layers=layer2,layer3.1.relu_1")
    assert encoder.dim == (128 + 256) * 16 and list(encoder.layers()) == ["layer2", "layer3.1.relu_1"]
    out = tmp_path / "runs.csv"
    result = invoke(*["run", "cifar10", "--features", "torchvision:resnet18:size=32,layers=layer2,"
                                          "layer3", "--per-layer", "--data-dir", str(cifar_folder), "--results",
                                          str(out), "--val-size", "20"])
    assert result.exit_code == 0, result.output
    assert [r["layer"] for r in csv.DictReader(open(out))] == ["all", "layer2", "layer3"]


def test_building_leaves_the_random_state_alone_and_takes_tagged_names():
    torch.manual_seed(11)
    before = torch.rand(3)
    torch.manual_seed(11)
    registry.build("torchvision:resnet18:size=32,seed=4")
    assert torch.equal(torch.rand(3), before)
    pytest.importorskip("timm")
    assert registry.build("timm:resnet18.a1_in1k:size=32").dim == 512
    assert registry.build("timm:vit_small_patch16_224.augreg_in21k:size=32").dim == 384


def _moved(state):
    """Another model's tensors of the same names (a momentum copy, a student): loading them changes features."""
    return {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}


README_LAYOUTS = {  # the README's table of checkpoint layouts, row by row: what each training codebase saves
    "torchvision's reference scripts, plain PyTorch": lambda s: {f"module.{k}": v for k, v in s.items()},
    "timm's `train.py`": lambda s: {"state_dict": s, "state_dict_ema": _moved(s), "epoch": 9},
    "Lightning": lambda s: {"state_dict": {f"model.{k}": v for k, v in s.items()}, "global_step": 100},
    "DINO": lambda s: {"teacher": {f"backbone.{k}": v for k, v in s.items()},
                       "student": {f"module.backbone.{k}": v for k, v in _moved(s).items()}, "epoch": 99},
    "MoCo, SimCLR ports": lambda s: {"state_dict": {
        **{f"module.encoder_q.{k}": v for k, v in s.items() if not k.startswith("fc.")},
        **{f"module.encoder_k.{k}": v for k, v in _moved(s).items() if not k.startswith("fc.")},
        "module.encoder_q.fc.0.weight": torch.zeros(512, 512), "module.encoder_q.fc.2.weight": torch.zeros(128, 512)}},
    "safetensors": None,
}


def test_every_layout_in_the_readme_table_loads_to_the_same_features(resnet, tmp_path):
    """The README's table names the layouts users bring; each, built as its codebase saves it, gives the features of
    the model it holds (a momentum copy, a student or an EMA beside it left alone)."""
    from itertools import takewhile
    from pathlib import Path

    from safetensors.torch import save_file

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("| your training code |"):]
    rows = [line.split("|")[1].strip() for line in takewhile(lambda l: l.startswith("|"), table.splitlines()[2:])]
    assert rows == list(README_LAYOUTS)
    folder, expected = resnet
    state = {k.removeprefix("module."): v for k, v in torch.load(folder / "module.pth", weights_only=True).items()}
    for name, layout in README_LAYOUTS.items():
        if layout is None:
            path = tmp_path / "model.safetensors"
            save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        else:
            path = tmp_path / "checkpoint.pth"
            torch.save(layout(state), path)
        assert np.array_equal(features(f"torchvision:resnet18:size=32,weights={path}"), expected), name
