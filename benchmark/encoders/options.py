"""Encoder options, declared once per encoder: name, type, default, allowed values, help.

A spec's ``key=value`` strings are parsed and checked against the declarations before any
data is read, so ``kmeans:k=-5`` is one line naming the option and what it takes; ``bench
encoders --verbose`` lists the same declarations. Factories receive typed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..core.errors import BenchError


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # "int", "float", "choice", "count-or-all", "text"
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    min: float | None = None  # inclusive
    max: float | None = None  # inclusive
    check: Callable[[Any], str] | None = None  # returns a problem, or "" when the value is fine

    def parse(self, text: str, spec: str):
        value = self._convert(text, spec)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.min is not None and value < self.min or self.max is not None and value > self.max:
                raise self._error(text, spec, f"must be {self._range()}")
        problem = self.check(value) if self.check else ""
        if problem:
            raise self._error(text, spec, problem)
        return value

    def _convert(self, text: str, spec: str):
        try:
            if self.kind == "int" or (self.kind == "count-or-all" and text != "all"):
                return int(text)
            if self.kind == "float":
                return float(text)
        except ValueError:
            raise self._error(text, spec, f"takes {self.describe_type()}") from None
        if self.kind == "choice" and text not in self.choices:
            raise self._error(text, spec, f"choose from {', '.join(self.choices)}")
        return text

    def _error(self, text: str, spec: str, problem: str) -> BenchError:
        return BenchError(f"encoder {spec!r}: {self.name}={text!r}: {problem} ({self.help})")

    def _range(self) -> str:
        if self.min is not None and self.max is not None:
            return f"between {self.min:g} and {self.max:g}"
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"

    def describe_type(self) -> str:
        kind = {"int": "an integer", "float": "a number", "count-or-all": "an integer or all", "text": "text",
                "choice": " | ".join(self.choices)}[self.kind]
        if self.min is not None or self.max is not None:
            kind += f" {self._range()}"
        return kind

    def line(self) -> str:
        return f"{self.name}={self.default}  {self.describe_type()}: {self.help}"


def declare(*declared: Option):
    """Attach option declarations to an encoder factory (a function or a class), marking it as one: a
    ``module:factory`` spec calls only an Encoder subclass or a callable so marked (``@declare()`` marks a
    factory with no options)."""
    def attach(factory):
        factory.options = declared
        factory.__bench_encoder_factory__ = True
        return factory

    return attach


def parse(factory, raw: dict[str, str], spec: str) -> dict[str, Any]:
    """Typed keyword arguments for ``factory`` from a spec's strings, checked against its declarations.

    A factory without declarations (a plug-in, say) receives the strings as they are.
    """
    declared = {o.name: o for o in getattr(factory, "options", ())}
    if not hasattr(factory, "options"):
        return raw
    takes = ", ".join(f"{name}=" for name in declared if name != "path") or "no options"
    if "path" in raw and "path" not in declared:
        raise BenchError(f"encoder {spec!r}: {raw['path']!r} needs a key=value form; it takes {takes} "
                         "(`bench encoders --verbose` explains each)")
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        raise BenchError(f"encoder {spec!r}: unknown option {unknown[0]!r}; it takes {takes} "
                         "(`bench encoders --verbose` explains each)")
    return {name: declared[name].parse(text, spec) for name, text in raw.items()}
