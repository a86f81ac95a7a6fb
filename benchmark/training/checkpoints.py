"""Checkpoints of `bench train` runs: one writer, one reader, one resume check.

A checkpoint holds tensors and plain types only (``torch.load(weights_only=True)``), so
reading a foreign file can never run code. It is written atomically with a readable
``config.json`` beside it.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import torch

from ..core.errors import BenchError
from ..core.files import atomic_write, write_text

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(state: dict, out: Path, config: dict) -> Path:
    """Write RUN_DIR/checkpoint.pt atomically and a readable RUN_DIR/config.json."""
    path = Path(out) / CHECKPOINT
    with atomic_write(path) as tmp:
        torch.save(state, tmp)
    write_text(Path(out) / "config.json", json.dumps(config, indent=2))
    return path


def read_checkpoint(run: Path, what: str = "training", command: str = "dcgan", device="cpu") -> dict:
    """The checkpoint of a `bench train` run (its folder or the file itself), tensors and plain types only."""
    path = Path(run)
    path = path / CHECKPOINT if path.is_dir() else path
    if not path.is_file():
        raise BenchError(f"{path}: no {what} checkpoint; train one with `bench train {command} --out RUN_DIR`")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated, or not a torch file at all
        raise BenchError(f"{path}: not a readable checkpoint ({type(exc).__name__}); point at a `bench train` "
                         "run folder or its checkpoint.pt") from None
    if not isinstance(state, dict) or "config" not in state or not ({"D", "net"} & state.keys()):
        raise BenchError(f"{path}: not a `bench train` checkpoint (no config and weights in it)")
    return state


def resume_state(path: Path, what: str, command: str, key: str, expected: dict, device) -> dict:
    """A checkpoint to resume from: this trainer's (``key`` in it), trained with exactly ``expected``
    (the config, and for Exemplar-CNN the digest of its exemplars)."""
    state = read_checkpoint(path, what, command, device)
    if key not in state:
        raise BenchError(f"{path}: not a {what} checkpoint; choose another --out")
    differs = {k: state.get(k) for k, v in expected.items() if state.get(k) != v}
    if differs:
        raise BenchError(f"{path}: checkpoint was trained with other {', '.join(differs)} ({differs}); "
                         "resume with the same options and data, or choose another --out")
    return state


def checked_checkpoint(out, resume: bool) -> Path:
    """RUN_DIR/checkpoint.pt, which --resume needs and a fresh run must not overwrite."""
    checkpoint = Path(out) / CHECKPOINT
    if resume and not checkpoint.is_file():
        raise BenchError(f"{checkpoint}: nothing to resume; start without --resume")
    if checkpoint.exists() and not resume:
        raise BenchError(f"{checkpoint} exists; pass --resume to continue it or choose another --out")
    return checkpoint


def load_weights(target, arrays: dict, source) -> None:
    """Load weights (numpy arrays or tensors) into a network, or a state into an optimiser; one line naming
    ``source`` when they belong to another architecture. Every path that reads a checkpoint loads through here."""
    with checkpoint_errors(source):
        if isinstance(target, torch.optim.Optimizer):
            target.load_state_dict(arrays)
        else:
            target.load_state_dict({k: torch.as_tensor(v) for k, v in arrays.items()})


@contextmanager
def checkpoint_errors(source):
    """Whatever a checkpoint of the wrong shape or content raises while it is restored, as one line."""
    try:
        yield
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        detail = lines[-1] if lines else type(exc).__name__
        if isinstance(exc, KeyError):
            detail = f"no {exc} in it"
        raise BenchError(f"{source}: the checkpoint does not fit this network ({detail}); was it trained with "
                         "another --arch or --net? choose another run or --out") from None
