"""Resolve an encoder spec string to an Encoder.

Spec grammar: ``NAME[:ARGS]`` where ARGS is a comma-separated list of ``key=value``
items, optionally led by one bare value (passed as ``path``); a bare item after a
``key=value`` continues its value, so lists work: ``dcgan-imagenet:layers=1,3,seed=2``,
``dcgan-imagenet:layers=1-4``, ``dcgan:runs/small``. Installed packages add encoders through
the entry-point group ``bench.encoders`` (name -> factory). A factory takes the ARGS as
string keyword arguments and returns an Encoder.

A spec is data; it becomes code only three ways: a built-in name, an installed entry point,
or ``package.module:factory[:ARGS]`` when the caller allows modules (``modules=True``: a
spec typed on this very command line, or passed by Python code). Importing runs a module's
top level, so the decision comes first, from the source alone: the module is located
without importing it (or its parents), and its source must define ``factory`` as a class
or as a decorated function (``@declare``); then, once imported, it must be an ``Encoder``
subclass or a factory marked with ``options.declare``, else it is refused uncalled.
``this:x`` is refused without printing the Zen of Python; a spec read back from a results
file is never imported without an explicit flag (``bench reproduce --allow-module``).
"""

from __future__ import annotations

import ast
import functools
import importlib
import os
import re
import sys
from importlib.machinery import PathFinder
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


def module_of(spec: str) -> str | None:
    """The Python module a spec would import (``module:factory`` specs), None for a registered name.
    Decided from the name alone: nothing is imported."""
    name, _, args = spec.partition(":")
    if name in available() or not _module_form(name, args.partition(":")[0]):
        return None
    return name


def _module_form(name: str, attr: str) -> bool:
    return bool(name) and attr.isidentifier() and all(part.isidentifier() for part in name.split("."))


def build(spec: str, modules: bool = True) -> Encoder:
    """Resolve ``spec`` to a ready Encoder, or raise a one-line BenchError.

    Options are parsed and checked against the factory's declarations (``options.declare``)
    before it runs. ``module:factory`` specs (also found in the current folder, as ``python -m``
    would) are imported only with ``modules`` and only after their source is seen to define the factory.
    """
    name, _, args = spec.partition(":")
    factories = available()
    attr, _, rest = args.partition(":")
    if name in factories:
        factory = _load_entry_point(factories[name])
    elif _module_form(name, attr):
        if not modules:
            raise BenchError(f"encoder {spec!r} names the Python module {name!r}, which is not a registered encoder; "
                             f"it was read from a file, so it is not imported (that would run its code)")
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


def _load_entry_point(ep):
    try:
        return ep.load()
    except Exception as exc:
        raise BenchError(f"encoder plug-in {ep.name!r} ({ep.value}) failed to load: {exc}") from None


def _module_source(module: str) -> Path | None:
    """The source file of ``module`` (dotted), found on sys.path and in the current folder without importing
    it or its parents; None when there is none (no such module, or one compiled or built in)."""
    path = [os.getcwd(), *sys.path]
    parts = module.split(".")
    for i in range(len(parts)):
        found = PathFinder.find_spec(".".join(parts[:i + 1]), path)
        if found is None:
            return None
        path = list(found.submodule_search_locations or [])
        if not path and i < len(parts) - 1:
            return None
    origin = found.origin or ""
    return Path(origin) if origin.endswith(".py") else None


def _defines_factory(source: Path, attr: str) -> bool:
    """Whether the module's top level defines ``attr`` as a class, a decorated function, or imports it."""
    try:
        tree = ast.parse(source.read_bytes(), str(source))
    except (OSError, SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == attr:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == attr and node.decorator_list:
            return True
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == attr for a in node.names):
            return True
    return False


def _import_factory(module: str, attr: str, spec: str):
    source = _module_source(module)
    if source is None:
        raise BenchError(f"encoder {spec!r}: no Python module {module!r} here or on sys.path; `bench encoders` "
                         "lists the registered names (module:factory needs e.g. my_encoders.py in this folder)")
    if not _defines_factory(source, attr):
        raise BenchError(f"encoder {spec!r}: {source} defines no class or @declare'd factory {attr!r}; "
                         "refused without importing it")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
        importlib.invalidate_caches()
    try:
        factory = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # the user's module failed on import: one line, their error
        raise BenchError(f"encoder {spec!r}: cannot load {module}:{attr} ({type(exc).__name__}: {exc})") from None
    if not (isinstance(factory, type) and issubclass(factory, Encoder)
            or getattr(factory, "__bench_encoder_factory__", False) is True):
        raise BenchError(f"encoder {spec!r}: {module}:{attr} is neither a benchmark Encoder subclass nor a factory "
                         "marked with @benchmark.encoders.options.declare(...); refused without calling it")
    return factory
