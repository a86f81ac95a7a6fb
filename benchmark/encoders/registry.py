"""Resolve an encoder spec string to an Encoder.

Spec grammar: ``NAME[:ARGS]`` where ARGS is a comma-separated list of ``key=value``
items, optionally led by one bare value (passed as ``path``); a bare item after a
``key=value`` continues its value, so lists work: ``dcgan-imagenet:layers=1,3,seed=2``,
``dcgan-imagenet:layers=1-4``, ``dcgan:runs/small``. ``package.module:factory[:ARGS]``
(any importable module) loads a factory without packaging, if it is an ``Encoder`` subclass or
a callable marked with ``options.declare``: anything else is refused before it is called, so
a spec read back from a results file can never run arbitrary code. Installed packages add
encoders through the entry-point group ``bench.encoders`` (name -> factory). A factory takes
the ARGS as string keyword arguments and returns an Encoder.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path

from ..core.errors import BenchError
from . import options, pretrained
from .base import Encoder

ENTRY_POINT_GROUP = "bench.encoders"


BUILTIN = {  # name -> "module:factory" inside benchmark.encoders, imported when used
    "pixels": "pixels:Pixels",
    "dcgan-imagenet": "dcgan:released_imagenet",
    "dcgan-svhn": "dcgan:released_svhn",
    "dcgan-random": "dcgan:random_weights",
    "dcgan": "dcgan:trained_run",
    "kmeans": "kmeans:KMeansNetwork",
    "exemplar-cnn": "exemplar:exemplar_cnn",
    "torchvision": "backbones:torchvision_model",
    "timm": "backbones:timm_model",
}


PROJECT_WEIGHTS = {  # manifest entries trained by this project, by family: encoder name = entry name
    "dcgan": "dcgan:project_weights",
    "exemplar-cnn": "exemplar:project_weights",
}


class _Builtin:
    def __init__(self, name: str, target: str, weights: str | None = None):
        self.name, self.value, self.weights = name, target, weights

    def load(self):
        module, _, attr = self.value.partition(":")
        factory = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        return functools.partial(factory, self.weights) if self.weights else factory


def available() -> dict:
    """Every encoder name this installation knows: built-ins, the project's trained weights, then plug-ins."""
    found = {name: _Builtin(name, target) for name, target in BUILTIN.items()}
    for name, entry in pretrained.manifest().items():
        if entry.meta.get("encoder") in PROJECT_WEIGHTS:
            found.setdefault(name, _Builtin(name, PROJECT_WEIGHTS[entry.meta["encoder"]], weights=name))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def describe(factory) -> str:
    if getattr(factory, "weights", None):
        return pretrained.entry(factory.weights).meta["title"]
    try:
        loaded = factory.load()
        doc = (getattr(loaded, "func", loaded).__doc__ or "").strip().splitlines()
    except Exception as exc:  # a broken plug-in must not break the listing
        return f"(fails to load: {exc})"
    return doc[0] if doc else ""


def options_of(factory) -> tuple:
    """The declared options of an available encoder (none for a plug-in that declares none)."""
    try:
        return getattr(declared(_load_entry_point(factory)), "options", ())
    except BenchError:
        return ()


def parse_args(text: str) -> dict[str, str]:
    """``path,key=value,key=v1,v2`` -> dict; a bare item continues the previous value (lists)."""
    kwargs: dict[str, str] = {}
    last = None
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            if last is None and "path" not in kwargs:
                kwargs["path"] = item
            elif last is not None:
                kwargs[last] += "," + item
            else:
                raise BenchError(f"encoder options {text!r}: {item!r} needs a key=value form")
            continue
        if key in kwargs:
            raise BenchError(f"encoder option {key!r} given twice in {text!r}")
        kwargs[key], last = value, key
    return kwargs


def build(spec: str) -> Encoder:
    """Resolve ``spec`` to a ready Encoder, or raise a one-line BenchError.

    Options are parsed and checked against the factory's declarations (``options.declare``)
    before it runs; ``module:factory`` also finds modules in the current folder, as
    ``python -m`` would.
    """
    name, _, args = spec.partition(":")
    factories = available()
    attr, _, rest = args.partition(":")
    if name in factories:
        factory = _load_entry_point(factories[name])
    elif name and attr.isidentifier() and _importable(name.split(".")[0]):
        factory, args = _import_factory(name, attr, spec), rest
    else:
        raise BenchError(f"unknown encoder {name!r}; `bench encoders` lists them "
                         "(or pass module:factory, e.g. my_encoders:TinyCNN for my_encoders.py in this folder)")
    head = spec[: len(spec) - len(args)].rstrip(":")
    if getattr(declared(factory), "model_family", False):  # FAMILY:MODEL[:options]: the model is part of the name
        model, _, args = (re.split(r"([:,])", args, maxsplit=1) + ["", ""])[:3]
        head = f"{name}:{model}" if model else name
        raw = {"path": model, **parse_args(args)} if model else parse_args(args)
    else:
        raw = parse_args(args)
    kwargs = options.parse(declared(factory), raw, spec)
    try:
        encoder = factory(**kwargs)
    except TypeError as exc:
        raise BenchError(f"encoder {spec!r}: {exc}") from None
    if not isinstance(encoder, Encoder):
        raise BenchError(f"encoder {spec!r}: factory returned {type(encoder).__name__}, not a benchmark Encoder")
    if getattr(declared(factory), "model_family", False):
        raw.pop("path", None)
    encoder.spec = canonical(head, declared(factory), raw, kwargs)
    return encoder


def canonical(head: str, factory, raw: dict[str, str], kwargs: dict) -> str:
    """One spelling per encoder, so that one encoder is one leaderboard row: declared options
    at their defaults left out, the others in declaration order, a path first and bare."""
    if hasattr(factory, "options"):
        raw = {o.name: raw[o.name] for o in factory.options if o.name in raw and kwargs[o.name] != o.default}
    items = [raw.pop("path")] if "path" in raw else []
    items += [f"{key}={value}" for key, value in raw.items()]
    return f"{head}:{','.join(items)}" if items else head


def declared(factory):
    """The factory itself, or the function behind a ``functools.partial``: whatever carries ``options``."""
    return factory if hasattr(factory, "options") else getattr(factory, "func", factory)


def _importable(module: str) -> bool:
    if importlib.util.find_spec(module) is not None:
        return True
    here = os.getcwd()
    if here not in sys.path and (Path(here) / f"{module}.py").is_file() or (Path(here) / module).is_dir():
        sys.path.insert(0, here)
        importlib.invalidate_caches()
    return importlib.util.find_spec(module) is not None


def _load_entry_point(ep):
    try:
        return ep.load()
    except Exception as exc:
        raise BenchError(f"encoder plug-in {ep.name!r} ({ep.value}) failed to load: {exc}") from None


def _import_factory(module: str, attr: str, spec: str):
    if not attr:
        raise BenchError(f"encoder {spec!r}: give package.module:factory")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise BenchError(f"encoder {spec!r}: cannot load {module}:{attr} ({exc})") from None
    if not (isinstance(factory, type) and issubclass(factory, Encoder)
            or getattr(factory, "__bench_encoder_factory__", False) is True):
        raise BenchError(f"encoder {spec!r}: {module}:{attr} is neither a benchmark Encoder subclass nor a factory "
                         "marked with @benchmark.encoders.options.declare(...); refused without calling it")
    return factory
