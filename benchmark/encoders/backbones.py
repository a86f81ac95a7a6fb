"""Any torchvision or timm classification model as an encoder: ``torchvision:NAME`` and ``timm:NAME``.

The model is built whole by its library (``torchvision.models.get_model``, ``timm.create_model``,
timm's tagged names such as ``resnet18.a1_in1k`` included) with a seeded random initialisation that
leaves the global random state as it was, then given the weights of ``weights=PATH``, head and all,
as its own training code saved them (``checkpoint``). Nothing is removed or replaced: features are
taken through each library's own interface.

- Default: the pre-logits embedding, what DINO, solo-learn and CLIP_benchmark report. timm:
  ``forward_head(forward_features(x), pre_logits=True)``, ``num_features`` wide. torchvision: the
  input of the model's final linear classifier, as a graph node of ``create_feature_extractor``
  (the graph is cut where that input is produced; SqueezeNet, whose classifier is a convolution:
  its ``features`` output, average-pooled).
- ``layers=``: the paper's protocol for any backbone: each named layer's map max-pooled to a 4x4 grid
  (``pool=``), concatenated, with every layer's columns recorded so ``--per-layer`` probes each alone.
  torchvision names graph nodes (``get_graph_node_names``, e.g. ``layer3`` or ``features.6``); timm
  names ``forward_intermediates`` indices (``0`` the stem's stage, then one per stage or block).

Inputs are resized to ``size=`` (default: the model's pretrained resolution, with its interpolation)
and normalised with the model's mean and std. A size the model cannot run at is one line.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.devices import bfloat16_is_fast
from ..core.errors import BenchError, reason
from .base import Encoder
from .checkpoint import load_checkpoint
from .options import Option, declare

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

OPTIONS = (
    Option("path", "text", "", "the model's name in its library, e.g. resnet18, vit_small_patch16_224 or timm's "
           "tagged resnet18.a1_in1k"),
    Option("weights", "text", "", "a checkpoint as your training code saved it: .safetensors, or a PyTorch file "
           "(read without unpickling code), head included or not; none: seeded random weights, a control"),
    Option("key", "text", "", "the checkpoint's entry holding the model when it holds several (default: found, "
           "e.g. state_dict, model, teacher; state_dict_ema or model_ema for the EMA copy)"),
    Option("prefix", "text", "", "strip this key prefix from the checkpoint (default: found automatically, e.g. "
           "module., model., backbone., module.encoder_q.)"),
    Option("layers", "text", "", "layers whose maps become features, comma-separated: torchvision graph nodes "
           "(layer3, features.6) or timm intermediate indices (0,1,2); default: the pre-logits embedding"),
    Option("pool", "choice", "max4", "how each of layers= is pooled: max4 (4x4 max-pool, the paper's), avg "
           "(global average) or token (a transformer's class token)", choices=("max4", "avg", "token")),
    Option("size", "int", 0, "input resolution in pixels (0: the model's pretrained resolution)", min=0, max=1024),
    Option("precision", "choice", "auto", "float32 or bfloat16; auto: bfloat16 where native",
           choices=("auto", "float32", "bfloat16")),
    Option("seed", "int", 0, "seeds the random initialisation (the global random state is left as it was)", min=0),
)


class Backbone(Encoder):
    """A library model's features (see the module docstring)."""

    name = "backbone"
    probe_scale = "standard"
    input_size = None  # any: resized to size= (the model's resolution) in transform

    def __init__(self, library: str, model: str, weights: str = "", key: str = "", prefix: str = "",
                 layers: str = "", pool: str = "max4", size: int = 0, precision: str = "auto", seed: int = 0):
        super().__init__()
        self.name, self.library, self.model_name = library, library, model
        self.weights, self.key, self.prefix, self.pool, self.precision, self.seed = weights, key, prefix, pool, \
            precision, seed
        self.layer_names = [n.strip() for n in layers.split(",") if n.strip()]
        with torch.random.fork_rng(devices=[]):  # the caller's random state is not ours to move
            torch.manual_seed(seed)
            try:
                self.net, config = _build(library, model, size)
            except BenchError:
                raise
            except Exception as exc:  # a constructor refusing size=: a patch size that does not divide it, say
                raise BenchError(f"{library}:{model}: cannot be built for size={size} ({reason(exc)}); give a size it "
                                 "takes, or leave size= out for its own") from None
        self.size = size or config["size"]
        self.mean, self.std, self.interpolation = config["mean"], config["std"], config["interpolation"]
        self.head = _head_name(library, self.net)
        self._digest, self.notice = "", ""
        if weights:
            self._digest, self.notice = load_checkpoint(self.net, Path(weights).expanduser(), key, prefix, self.head)
        self.net.eval()
        self._extract = (_timm_extractor if library == "timm" else _torchvision_extractor)(self.net, self.layer_names,
                                                                                           f"{library}:{model}")
        try:
            widths = [t.shape[1] for t in self._maps(torch.zeros(1, 3, self.size, self.size))]
        except BenchError:
            raise
        except Exception as exc:
            raise BenchError(f"{library}:{model}: cannot run at {self.size}x{self.size} ({reason(exc)}); "
                             f"give size= a resolution it takes (its own: {config['size']})") from None
        self._widths = widths

    # --- identity
    def config(self) -> dict:
        return {"library": self.library, "model": self.model_name, "key": self.key, "prefix": self.prefix,
                "layers": self.layer_names, "pool": self.pool, "size": self.size, "precision": str(self.dtype),
                "seed": self.seed, "mean": self.mean, "std": self.std, "interpolation": self.interpolation,
                "features": "graph" if self.library == "torchvision" else "forward_head"}

    def weights_digest(self) -> str:
        return self._digest

    @property
    def dim(self) -> int:
        return sum(self._widths)

    def layers(self) -> dict[str, slice] | None:
        if not self.layer_names:
            return None
        starts = np.cumsum([0, *self._widths])
        return {name: slice(int(a), int(b)) for name, a, b in zip(self.layer_names, starts[:-1], starts[1:])}

    @property
    def dtype(self) -> torch.dtype:
        native = self.precision == "auto" and bfloat16_is_fast(self.device)
        return torch.bfloat16 if self.precision == "bfloat16" or native else torch.float32

    def to(self, device) -> "Backbone":
        super().to(device)
        self.net.to(self.device)
        return self

    def available_layers(self) -> list[str]:
        """What layers= can name: torchvision's graph nodes (a module name stands for its last node) or timm's
        forward_intermediates indices, each with the module it comes from."""
        if self.library == "timm":
            return [f"{i}  ({info.get('module', '')}, {info.get('num_chs', '?')} channels)"
                    for i, info in enumerate(getattr(self.net, "feature_info", []) or [])]
        from torchvision.models.feature_extraction import get_graph_node_names

        return get_graph_node_names(self.net)[1]

    # --- work
    def transform(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode=self.interpolation, antialias=True,
                              align_corners=False if self.interpolation != "nearest" else None)
        mean = torch.tensor(self.mean, device=self.device)[:, None, None]
        std = torch.tensor(self.std, device=self.device)[:, None, None]
        return self.features((x - mean) / std).cpu().numpy()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Features of normalised model input x (N, 3, size, size), float32."""
        return torch.cat(self._maps(x), 1).float()

    def _maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's pooled features (one entry, the embedding, by default)."""
        x = x.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16), \
                torch.inference_mode():
            outputs = self._extract(x)
        if not self.layer_names:
            return [outputs.flatten(1).float()]
        return [_pool(out, self.pool, name).float() for name, out in zip(self.layer_names, outputs)]


def _pool(out, pool: str, name: str) -> torch.Tensor:
    out = out[0] if isinstance(out, (tuple, list)) else out
    if out.ndim == 4:  # (N, C, H, W)
        if pool == "token":
            raise BenchError(f"layer {name!r} gives a feature map; pool=token needs a transformer's tokens")
        return F.adaptive_max_pool2d(out, 4).flatten(1) if pool == "max4" else out.mean((2, 3))
    if out.ndim == 3:  # (N, tokens, C)
        return out[:, 0] if pool == "token" else out.mean(1) if pool == "avg" else out.flatten(1)
    return out.flatten(1)


# ---------------------------------------------------------------- building

def _build(library: str, model: str, size: int):
    """The whole model with random weights and its preprocessing (size, mean, std, interpolation)."""
    if library == "timm":
        if importlib.util.find_spec("timm") is None:
            raise BenchError("timm:NAME needs the optional timm package: pip install -e \".[timm]\" "
                             "(or pip install timm)")
        import timm

        if not timm.is_model(model):
            base = model.split(".")[0]
            raise BenchError(f"timm: unknown model {model!r}; `python -c \"import timm; print(timm.list_models("
                             f"'*{base[:6]}*'))\"` lists similar names (a tag goes after a dot: resnet18.a1_in1k)")
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
    return net, {"size": preset.crop_size[0], "mean": tuple(preset.mean), "std": tuple(preset.std),
                 "interpolation": preset.interpolation.value}


def _head_name(library: str, net) -> str:
    """The classifier's qualified name: its weights may be absent from a checkpoint, or of another size."""
    if library == "timm":
        classifier = net.get_classifier()
        return next((name for name, module in net.named_modules() if module is classifier and name), "")
    return _final_linear(net) or next((name for name, m in reversed(list(net.named_modules()))
                                      if isinstance(m, torch.nn.Conv2d)), "")  # SqueezeNet classifies by convolution


def _final_linear(net) -> str | None:
    """The last linear layer a torchvision classifier registers: the one that makes the logits."""
    return next((name for name, m in reversed(list(net.named_modules())) if isinstance(m, torch.nn.Linear)), None)


# ---------------------------------------------------------------- features

def _torchvision_extractor(net, layers: list[str], who: str):
    """x -> the embedding (default) or the listed graph nodes' outputs, from ``create_feature_extractor``."""
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    if layers:
        nodes = get_graph_node_names(net)[1]
        unknown = [name for name in layers if name not in nodes and not any(n.startswith(name + ".") for n in nodes)]
        if unknown:
            stages = list(dict.fromkeys(n.split(".")[0] for n in nodes if n != "x"))
            raise BenchError(f"{who}: no graph node {unknown[0]!r}; its stages are {', '.join(stages[:16])} (a module "
                             f"name stands for its last node; every node: `bench encoders --layers {who}`)")
        graph = create_feature_extractor(net, return_nodes={name: name for name in layers})
        return lambda x: [graph(x)[name] for name in layers]
    head = _final_linear(net)
    if head is None:  # SqueezeNet: a convolution classifies; its last feature map, average-pooled
        graph = create_feature_extractor(net, return_nodes={"features": "features"})
        return lambda x: graph(x)["features"].mean((2, 3))
    graph = create_feature_extractor(net, return_nodes={head: "logits"})
    linear = next(n for n in graph.graph.nodes if n.op == "call_module" and n.target == head)
    output = next(n for n in graph.graph.nodes if n.op == "output")
    output.args = ({"embedding": linear.args[0]},)  # the graph ends where the classifier's input is made
    graph.graph.eliminate_dead_code()
    graph.recompile()
    return lambda x: graph(x)["embedding"]


def _timm_extractor(net, layers: list[str], who: str):
    """x -> ``forward_head(pre_logits=True)`` (default) or ``forward_intermediates`` at the listed indices."""
    if not layers:
        return lambda x: net.forward_head(net.forward_features(x), pre_logits=True)
    levels = len(getattr(net, "feature_info", []) or [])
    if not hasattr(net, "forward_intermediates") or not levels:
        raise BenchError(f"{who}: has no forward_intermediates, so layers= cannot name its layers; use the default "
                         "pre-logits embedding")
    if not all(name.isdigit() and int(name) < levels for name in layers):
        raise BenchError(f"{who}: layers= takes forward_intermediates indices 0..{levels - 1}, got "
                         f"{','.join(layers)}")
    indices = [int(name) for name in layers]
    return lambda x: net.forward_intermediates(x, indices=indices, intermediates_only=True)


# ---------------------------------------------------------------- the encoder families

def family(factory):
    """Mark a factory whose spec names a model first: ``FAMILY:MODEL[:key=value,...]``."""
    factory.model_family = True
    return factory


@family
@declare(*OPTIONS)
def torchvision_model(path: str = "", **kw) -> Backbone:
    """Any torchvision classification model, torchvision:NAME[:weights=PATH,...]: its pre-logits embedding (the
    final linear layer's in_features wide), or layers= graph nodes, each 4x4 max-pooled (C x 16 wide)."""
    if not path:
        raise BenchError("torchvision: name a model, e.g. torchvision:resnet18")
    return Backbone("torchvision", path, **kw)


@family
@declare(*OPTIONS)
def timm_model(path: str = "", **kw) -> Backbone:
    """Any timm model (the optional timm extra), timm:NAME[:weights=PATH,...]: its pre-logits embedding
    (num_features wide), or layers= forward_intermediates indices, each 4x4 max-pooled (C x 16 wide)."""
    if not path:
        raise BenchError("timm: name a model, e.g. timm:vit_small_patch16_224")
    return Backbone("timm", path, **kw)
