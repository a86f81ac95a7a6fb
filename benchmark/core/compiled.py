"""``torch.compile`` where it works, the eager function where it does not: one fallback for every fused step."""

from __future__ import annotations

import warnings

import torch


def _interrupted(exc: BaseException | None) -> bool:
    """Whether a KeyboardInterrupt lies in the chain of causes (a compile worker stopped by Ctrl-C)."""
    for _ in range(32):  # chains are short; the bound guards against a cycle
        if exc is None:
            return False
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def compiled_or_eager(fn, name: str, dynamic: bool | None = False):
    """``torch.compile(fn)``, falling back to ``fn`` once (with a warning naming ``name``) if compilation fails
    on this machine. ``dynamic=None`` recompiles once for sizes that vary between calls instead of per size."""
    state = {"fn": torch.compile(fn, dynamic=dynamic)}

    def run(*args):
        try:
            return state["fn"](*args)
        except Exception as exc:  # no C++ compiler, unsupported backend, ...
            if state["fn"] is fn or _interrupted(exc):  # Ctrl-C inside the compiler stops the run
                raise
            warnings.warn(f"{name}: torch.compile failed ({type(exc).__name__}); running eagerly")
            state["fn"] = fn
            return fn(*args)

    return run
