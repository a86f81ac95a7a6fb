"""Checkpoints of `bench train` runs: one writer, one reader, one resume check.

A checkpoint holds tensors and plain types only (``torch.load(weights_only=True)``), so
reading a foreign file can never run code. It is written atomically with a readable
``config.json`` beside it.
"""

from __future__ import annotations

import io
import json
import pickle
from contextlib import contextmanager
from pathlib import Path

import torch

from ..core.errors import BenchError, reason
from ..core.finite import check_finite
from ..core.files import atomic_write, write_text

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(state: dict, out: Path, config: dict) -> Path:
    """Write RUN_DIR/checkpoint.pt atomically and a readable RUN_DIR/config.json."""
    path = Path(out) / CHECKPOINT
    buffer = io.BytesIO()
    torch.save(state, buffer)  # in memory: torch reports a failed file write as a RuntimeError, Python as OSError
    with atomic_write(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    write_text(Path(out) / "config.json", json.dumps(config, indent=2))
    return path


def read_tensor_file(path: Path, fix: str, device="cpu"):
    """What a checkpoint file holds, read without running code: safetensors, or a ``torch.save`` file (zip or
    legacy) through ``torch.load(weights_only=True)``. Every other thing at ``path`` (a folder, a device, an
    empty, truncated, text or foreign file, a pickle that would run code) is one line naming it, ending in
    ``fix``."""
    path = Path(path)
    if path.is_dir():
        raise BenchError(f"{path}: is a folder, not a checkpoint file; {fix}")
    if not path.exists():
        raise BenchError(f"{path}: no such file; {fix}")
    if not path.is_file():
        raise BenchError(f"{path}: not a regular file (a device or a pipe); {fix}")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise BenchError(f"{path}: cannot read ({exc.strerror or exc}); {fix}") from None
    kind = _file_kind(head)
    if kind is None:
        seen = "it is empty" if not head else f"it starts with {head[:8]!r}"
        raise BenchError(f"{path}: neither a PyTorch checkpoint nor a safetensors file ({seen}); {fix}")
    try:
        if kind == "safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device=str(device))
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated, damaged, or a pickle that would run code
        why = reason(exc)
        if isinstance(exc, pickle.UnpicklingError):  # torch's message runs to a page of advice
            why = "it holds Python objects beyond tensors and plain types, which could run code on loading"
        raise BenchError(f"{path}: a damaged or unsafe {kind} file ({why}); {fix}") from None


def _file_kind(head: bytes) -> str | None:
    """By its first bytes: torch.save's zip, its legacy pickle, or safetensors (8-byte header length, then JSON)."""
    if head.startswith(b"PK\x03\x04"):
        return "PyTorch"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "PyTorch (legacy)"
    if len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 2 ** 31:
        return "safetensors"
    return None


def read_checkpoint(run: Path, what: str = "training", command: str = "dcgan", device="cpu") -> dict:
    """The checkpoint of a `bench train` run (its folder or the file itself), tensors and plain types only."""
    path = Path(run)
    path = path / CHECKPOINT if path.is_dir() else path
    fix = f"point at a `bench train {command}` run folder or its {CHECKPOINT}"
    if not path.exists():
        raise BenchError(f"{path}: no {what} checkpoint; train one with `bench train {command} --out RUN_DIR`")
    state = read_tensor_file(path, fix, device)
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
    ``source`` when they belong to another architecture or break the weights' rules (``check_weights``).
    Every path that reads a checkpoint loads through here."""
    with checkpoint_errors(source):
        if isinstance(target, torch.optim.Optimizer):
            target.load_state_dict(arrays)
        else:
            tensors = {k: torch.as_tensor(v) for k, v in arrays.items()}
            check_weights(tensors, target.state_dict(), source)
            target.load_state_dict(tensors)


def check_weights(tensors: dict[str, torch.Tensor], wanted: dict[str, torch.Tensor], source) -> None:
    """The rules every checkpoint's tensors meet before they are loaded: a floating parameter comes from a
    floating tensor (float16 and bfloat16 are widened), an integer buffer from an integer one (a bool or int
    tensor where weights belong is another model's, never cast without a word), and every value is finite."""
    for name, tensor in tensors.items():
        target = wanted.get(name)
        if target is not None and target.is_floating_point() != tensor.is_floating_point():
            kind = "floating-point" if target.is_floating_point() else "integer"
            raise BenchError(f"{source}: {name} is {str(tensor.dtype).removeprefix('torch.')} where the model holds "
                             f"{kind} values; is it a checkpoint of this architecture, saved as the model saved it?")
        check_finite(tensor, f"{source}: {name}", "the checkpoint is damaged or its training diverged; use an "
                     "earlier checkpoint")


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
