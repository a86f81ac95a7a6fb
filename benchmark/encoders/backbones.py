"""Any torchvision or timm classification model as an encoder: ``torchvision:NAME`` and ``timm:NAME``.

The model is built by its library (``torchvision.models.get_model``, ``timm.create_model``)
with a seeded random initialisation, then given the weights of ``weights=PATH`` if named:
safetensors, or a PyTorch state dict read with ``torch.load(weights_only=True)`` (a pickle
payload can never run). Wrapped checkpoints are unwrapped: a nested ``state_dict``/``model``/
``teacher``... entry, and a key prefix (``module.``, ``backbone.``, ``encoder.``...) found by
which one matches the model's keys (``prefix=`` names it when the checkpoint is ambiguous).
Every model key must be filled except the classifier head; anything else is one line.

Features: by default the model's pooled pre-logits features; ``layers=`` names modules whose
outputs become features instead, each pooled by ``pool=`` (``max4``: the paper's 4x4 max-pool,
``avg``: global average, ``token``: a transformer's class token), concatenated. Inputs are
resized to ``size=`` (default: the model's pretrained resolution, with its interpolation) and
normalised with the model's mean and std.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import xxhash

from ..core.devices import bfloat16_is_fast
from ..core.errors import BenchError
from .base import Encoder
from ..training.checkpoints import check_weights, read_tensor_file
from .options import Option, declare

PREFIXES = ("module.", "backbone.", "encoder.", "model.", "net.", "student.", "teacher.", "base_encoder.",
            "online_network.", "momentum_encoder.")
NESTED = ("state_dict", "model", "model_state_dict", "module", "net", "network", "encoder", "backbone", "teacher",
          "student", "params")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

OPTIONS = (
    Option("path", "text", "", "the model's name in its library, e.g. resnet18 or vit_small_patch16_224"),
    Option("weights", "text", "", "a checkpoint: .safetensors, or a PyTorch state dict (.pt/.pth, read without "
           "unpickling code); none: seeded random weights, a control"),
    Option("prefix", "text", "", "strip this key prefix from the checkpoint (default: found automatically, e.g. "
           "module., backbone., encoder.)"),
    Option("layers", "text", "", "named modules whose outputs become features, comma-separated (default: the "
           "model's pooled pre-logits features)"),
    Option("pool", "choice", "max4", "how each of layers= is pooled: max4 (4x4 max-pool, flattened), avg (global "
           "average) or token (a transformer's class token)", choices=("max4", "avg", "token")),
    Option("size", "int", 0, "input resolution in pixels (0: the model's pretrained resolution)", min=0, max=1024),
    Option("precision", "choice", "auto", "float32 or bfloat16; auto: bfloat16 where native",
           choices=("auto", "float32", "bfloat16")),
    Option("seed", "int", 0, "seeds the random initialisation", min=0),
)


class Backbone(Encoder):
    """A library model's features (see the module docstring)."""

    name = "backbone"
    probe_scale = "standard"
    input_size = None  # any: resized to size= (the model's resolution) in transform

    def __init__(self, library: str, model: str, weights: str = "", prefix: str = "", layers: str = "",
                 pool: str = "max4", size: int = 0, precision: str = "auto", seed: int = 0):
        super().__init__()
        self.name, self.library, self.model_name = library, library, model
        self.weights, self.prefix, self.pool, self.precision, self.seed = weights, prefix, pool, precision, seed
        self.layer_names = [n.strip() for n in layers.split(",") if n.strip()]
        torch.manual_seed(seed)
        self.net, config = _build(library, model, size)
        self.size = size or config["size"]
        self.mean, self.std, self.interpolation = config["mean"], config["std"], config["interpolation"]
        self._digest = ""
        if weights:
            self._digest = load_checkpoint(self.net, Path(weights).expanduser(), prefix, _head_keys(self.net))
        self.net.eval()
        missing = [n for n in self.layer_names if n not in dict(self.net.named_modules())]
        if missing:
            names = [n for n, _ in self.net.named_modules() if n and "." not in n]
            raise BenchError(f"{library}:{model}: no module named {missing[0]!r}; top-level modules: "
                             f"{', '.join(names[:12])} (nested ones as layer4.1)")
        self._dim = self._features(torch.zeros(1, 3, self.size, self.size)).shape[1]

    # --- identity
    def config(self) -> dict:
        return {"library": self.library, "model": self.model_name, "prefix": self.prefix, "layers": self.layer_names,
                "pool": self.pool, "size": self.size, "precision": str(self.dtype), "seed": self.seed,
                "mean": self.mean, "std": self.std, "interpolation": self.interpolation}

    def weights_digest(self) -> str:
        return self._digest

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def dtype(self) -> torch.dtype:
        native = self.precision == "auto" and bfloat16_is_fast(self.device)
        return torch.bfloat16 if self.precision == "bfloat16" or native else torch.float32

    def to(self, device) -> "Backbone":
        super().to(device)
        self.net.to(self.device)
        return self

    # --- work
    def transform(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode=self.interpolation, antialias=True,
                              align_corners=False if self.interpolation != "nearest" else None)
        mean = torch.tensor(self.mean, device=self.device)[:, None, None]
        std = torch.tensor(self.std, device=self.device)[:, None, None]
        with torch.inference_mode():
            return self._features((x - mean) / std).float().cpu().numpy()

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16), \
                torch.inference_mode():
            if not self.layer_names:
                return _pre_logits(self.library, self.net, x).flatten(1).float()
            outputs = {}
            modules = dict(self.net.named_modules())
            hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: outputs.__setitem__(n, o))
                     for n in self.layer_names]
            try:
                self.net(x)
            finally:
                for h in hooks:
                    h.remove()
            return torch.cat([_pool(outputs[n], self.pool, n) for n in self.layer_names], 1).float()


def _pool(out, pool: str, name: str) -> torch.Tensor:
    out = out[0] if isinstance(out, (tuple, list)) else out
    if out.ndim == 4:  # (N, C, H, W)
        if pool == "token":
            raise BenchError(f"layer {name!r} gives a feature map; pool=token needs a transformer's tokens")
        return F.adaptive_max_pool2d(out, 4).flatten(1) if pool == "max4" else out.mean((2, 3))
    if out.ndim == 3:  # (N, tokens, C)
        return out[:, 0] if pool == "token" else out.mean(1) if pool == "avg" else out.flatten(1)
    return out.flatten(1)


def _pre_logits(library: str, net, x):
    if library == "timm":
        return net.forward_head(net.forward_features(x), pre_logits=True)
    return net(x)  # the torchvision classifier was replaced by the identity


def _build(library: str, model: str, size: int):
    """The model with seeded random weights and its preprocessing (size, mean, std, interpolation)."""
    if library == "timm":
        if importlib.util.find_spec("timm") is None:
            raise BenchError("timm:NAME needs the optional timm package: pip install -e \".[timm]\" "
                             "(or pip install timm)")
        import timm

        if model not in timm.list_models():
            raise BenchError(f"timm: unknown model {model!r}; `python -c \"import timm; print(timm.list_models("
                             f"'*{model[:6]}*'))\"` lists similar names")
        try:  # transformers are built for their input size; convolutional networks take any
            net = timm.create_model(model, pretrained=False, **({"img_size": size} if size else {}))
        except TypeError:
            net = timm.create_model(model, pretrained=False)
        cfg = net.pretrained_cfg
        return net, {"size": cfg.get("input_size", (3, 224, 224))[-1], "mean": tuple(cfg.get("mean", IMAGENET_MEAN)),
                     "std": tuple(cfg.get("std", IMAGENET_STD)),
                     "interpolation": "bicubic" if cfg.get("interpolation") == "bicubic" else "bilinear"}
    import torchvision

    if model not in torchvision.models.list_models(module=torchvision.models):
        raise BenchError(f"torchvision: unknown classification model {model!r}; choose from "
                         f"torchvision.models.list_models(), e.g. resnet18, vit_b_16, convnext_tiny")
    kwargs = {"image_size": size} if size and model.startswith("vit_") else {}
    net = torchvision.models.get_model(model, weights=None, **kwargs)
    preset = torchvision.models.get_model_weights(model).DEFAULT.transforms()
    for attr in ("fc", "classifier", "head", "heads"):
        if hasattr(net, attr) and isinstance(getattr(net, attr), torch.nn.Module):
            setattr(net, attr, torch.nn.Identity())  # the pooled pre-logits features come out
            break
    return net, {"size": preset.crop_size[0], "mean": tuple(preset.mean), "std": tuple(preset.std),
                 "interpolation": preset.interpolation.value}


def _head_keys(net) -> set[str]:
    """The classifier head's parameter names: a checkpoint need not hold them (features stop before it)."""
    head = set()
    if hasattr(net, "get_classifier"):
        classifier = net.get_classifier()
        for name, module in net.named_modules():
            if module is classifier and name:
                head |= {f"{name}.{k}" for k in module.state_dict()}
    return head | {k for k in net.state_dict() if re.match(r"(fc|classifier|head|heads)\.", k)}


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file: safetensors, or a torch file read with ``weights_only`` (no code runs)."""
    state = read_tensor_file(path, "give weights=PATH a .safetensors file or a PyTorch state dict "
                                   "(torch.save(model.state_dict(), PATH))")
    for _ in range(3):  # unwrap {"state_dict": {...}}, {"model": {...}}, {"teacher": {...}} ...
        if isinstance(state, dict) and state and all(torch.is_tensor(v) for v in state.values()):
            return state
        inner = [k for k in NESTED if isinstance(state, dict) and isinstance(state.get(k), dict)]
        if not inner:
            break
        state = state[inner[0]]
    tensors = {k: v for k, v in state.items() if torch.is_tensor(v)} if isinstance(state, dict) else {}
    if not tensors:
        keys = ", ".join(list(state)[:6]) if isinstance(state, dict) else type(state).__name__
        raise BenchError(f"{path}: no tensors found (top level: {keys}); save the model's state_dict()")
    return tensors


def load_checkpoint(net: torch.nn.Module, path: Path, prefix: str, optional: set[str]) -> str:
    """Fill ``net`` from the checkpoint at ``path``; returns the file's digest. One line for any mismatch."""
    state = read_state(path)
    wanted = net.state_dict()
    prefix = prefix or _find_prefix(state, wanted, path)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    unexpected = sorted(k for k in state if k not in wanted and k not in optional)
    missing = sorted(k for k in wanted if k not in state and k not in optional
                     and not k.endswith("num_batches_tracked"))
    misshapen = sorted(k for k in state if k in wanted and state[k].shape != wanted[k].shape and k not in optional)
    for problem, keys in (("missing from it", missing), ("unknown to the model", unexpected),
                          ("of another shape", misshapen)):
        if keys:
            raise BenchError(f"{path}: {len(keys)} keys {problem} (e.g. {', '.join(keys[:3])}); is it a checkpoint "
                             "of this architecture? pass prefix= if its keys carry a wrapper prefix")
    usable = {k: v for k, v in state.items() if k in wanted and state[k].shape == wanted[k].shape}
    check_weights(usable, wanted, path)
    net.load_state_dict(usable, strict=False)
    return xxhash.xxh3_128(path.read_bytes()).hexdigest()[:20]


def _find_prefix(state: dict, wanted: dict, path: Path) -> str:
    """The wrapper prefix whose stripped keys match the model best; "" when the keys match as they are."""
    def matches(prefix):
        return sum(1 for k in state if k.startswith(prefix) and k[len(prefix):] in wanted)

    scores = {p: matches(p) for p in ("", *PREFIXES)}
    for key in state:  # nested wrappers: module.backbone. and the like
        head = key.split(".")[0] + "."
        if head not in scores:
            scores[head] = matches(head)
    best = max(scores.values())
    if best == 0:
        return ""
    winners = [p for p, n in scores.items() if n == best]
    if len(winners) > 1:
        raise BenchError(f"{path}: keys match the model under several prefixes ({', '.join(repr(p) for p in winners)}); "
                         "choose one with prefix=")
    return winners[0]


def family(factory):
    """Mark a factory whose spec names a model first: ``FAMILY:MODEL[:key=value,...]``."""
    factory.model_family = True
    return factory


@family
@declare(*OPTIONS)
def torchvision_model(path: str = "", **kw) -> Backbone:
    """Any torchvision classification model, torchvision:NAME[:weights=PATH,...] (random weights without one)."""
    if not path:
        raise BenchError("torchvision: name a model, e.g. torchvision:resnet18")
    return Backbone("torchvision", path, **kw)


@family
@declare(*OPTIONS)
def timm_model(path: str = "", **kw) -> Backbone:
    """Any timm model (the optional timm extra), timm:NAME[:weights=PATH,...] (random weights without one)."""
    if not path:
        raise BenchError("timm: name a model, e.g. timm:vit_small_patch16_224")
    return Backbone("timm", path, **kw)
