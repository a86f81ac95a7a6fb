"""Your checkpoint, as your training code saved it, into the model as its library builds it.

Layouts are found as they come: a plain state dict (head included or not); the model under an
entry (Lightning's and timm's ``state_dict``, ``model``, DINO's ``teacher`` beside ``student``, an
EMA copy under ``state_dict_ema`` or ``model_ema`` when ``key=`` names it); keys under a wrapper
prefix (``module.`` from DDP, Lightning's ``model.``, ``backbone.``, ``encoder.``, MoCo's
``module.encoder_q.``...), found as the prefix under which the most keys match the model (a
momentum or key encoder loses a tie to the online one; another tie needs ``prefix=``). The
classifier head may be missing, of another size (10 classes against 1,000) or another shape (a
projection MLP): that is said in one line and the head keeps its random weights, as features stop
before it. Every other key must match by name, shape and kind of number; anything else is one line
naming a few unmatched keys on each side and the fix. Nothing is unpickled
(``training.checkpoints.read_tensor_file``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import xxhash

from ..core.errors import BenchError
from ..training.checkpoints import check_weights, read_tensor_file

ENTRIES = ("state_dict", "model", "teacher", "model_state_dict", "module", "net", "network", "encoder", "backbone",
           "params", "student")  # where the model's tensors may sit, most likely first
EMA_ENTRIES = ("state_dict_ema", "model_ema", "ema", "ema_state_dict")  # chosen only by key=
PREFIXES = ("module.", "model.", "backbone.", "encoder.", "net.", "module.backbone.", "module.encoder.",
            "module.encoder_q.", "module.base_encoder.", "encoder_q.", "base_encoder.", "online_network.",
            "student.", "teacher.", "module.model.", "model.backbone.", "model.encoder.", "_orig_mod.")
SHADOWS = ("encoder_k.", "momentum_encoder.", "target_encoder.", "target_network.", "ema.")  # momentum copies
FIX = "pass prefix= (or key=) if the keys are wrapped in a way not found, or check it is a checkpoint of this model"


def read_state(path: Path, key: str = "") -> dict[str, torch.Tensor]:
    """The model's tensors from a checkpoint file: the named entry, else the first entry that holds tensors."""
    state = read_tensor_file(path, "give weights=PATH a .safetensors file or a PyTorch checkpoint "
                                   "(torch.save(model.state_dict(), PATH))")
    if key:
        if not isinstance(state, dict) or not isinstance(state.get(key), dict):
            entries = ", ".join(k for k, v in state.items() if isinstance(v, dict)) if isinstance(state, dict) else ""
            raise BenchError(f"{path}: no entry {key!r} holding tensors; its entries: {entries or '(none)'}")
        state = state[key]
    for _ in range(3):  # unwrap {"state_dict": {...}}, {"model": {...}}, {"teacher": {...}} ...
        if isinstance(state, dict) and state and all(torch.is_tensor(v) for v in state.values()):
            return state
        inner = [k for k in ENTRIES if isinstance(state, dict) and isinstance(state.get(k), dict)]
        if not inner:
            break
        state = state[inner[0]]
    tensors = {k: v for k, v in state.items() if torch.is_tensor(v)} if isinstance(state, dict) else {}
    if not tensors:
        keys = ", ".join(list(state)[:6]) if isinstance(state, dict) else type(state).__name__
        raise BenchError(f"{path}: no tensors found (top level: {keys}); save the model's state_dict(), or name the "
                         "entry holding it with key=")
    return tensors


def load_checkpoint(net: torch.nn.Module, path: Path, key: str, prefix: str, head: str) -> tuple[str, str]:
    """Fill ``net`` from the checkpoint at ``path``; returns (the file's digest, a notice about the head or "")."""
    state = read_state(path, key)
    wanted = net.state_dict()
    prefix = prefix or find_prefix(state, wanted, path)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

    def in_head(k: str) -> bool:
        return bool(head) and (k == head or k.startswith(head + "."))

    unexpected = sorted(k for k in state if k not in wanted and not in_head(k))
    missing = sorted(k for k in wanted if k not in state and not in_head(k) and not k.endswith("num_batches_tracked"))
    misshapen = sorted(k for k in state if k in wanted and not in_head(k) and state[k].shape != wanted[k].shape)
    if missing or unexpected or misshapen:
        parts = [f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})" for what, keys in
                 (("model keys missing from it", missing), ("checkpoint keys unknown to the model", unexpected),
                  ("keys of another shape", misshapen)) if keys]
        raise BenchError(f"{path}: {'; '.join(parts)}; {FIX}")
    usable = {k: v for k, v in state.items() if k in wanted and v.shape == wanted[k].shape}
    check_weights(usable, wanted, path)
    net.load_state_dict(usable, strict=False)
    return xxhash.xxh3_128(path.read_bytes()).hexdigest()[:20], head_notice(path, state, wanted, head, in_head)


def head_notice(path: Path, state: dict, wanted: dict, head: str, in_head) -> str:
    """One line when the checkpoint's classifier head was not loaded (features stop before it, so it is fine)."""
    theirs = sorted(k for k in state if in_head(k))
    ours = [k for k in wanted if in_head(k)]
    if not ours or all(k in state and state[k].shape == wanted[k].shape for k in ours) and \
            all(k in wanted for k in theirs):
        return ""
    if not theirs:
        what = "holds no classifier head"
    elif any(k in wanted and state[k].shape != wanted[k].shape for k in theirs):
        sizes = [(state[k].shape[0], wanted[k].shape[0]) for k in theirs if k.endswith("weight") and k in wanted]
        what = (f"has a {sizes[0][0]}-class head where the model builds {sizes[0][1]}" if sizes
                else "has a head of another shape")
    else:
        what = f"has another head ({', '.join(theirs[:2])})"
    return (f"{path.name} {what}: {head} keeps its random weights; the features stop before it, so they are the "
            "checkpoint's")


def find_prefix(state: dict, wanted: dict, path: Path) -> str:
    """The wrapper prefix whose stripped keys match the model best; "" when the keys match as they are."""
    def matches(prefix):
        return sum(1 for k in state if k.startswith(prefix) and k[len(prefix):] in wanted)

    candidates = {"", *PREFIXES}
    for k in state:  # wrappers as they come: the first one or two components
        parts = k.split(".")
        candidates |= {".".join(parts[:n]) + "." for n in (1, 2) if len(parts) > n}
    scores = {p: matches(p) for p in candidates}
    best = max(scores.values())
    if best == 0:
        return ""
    winners = [p for p, n in scores.items() if n == best]
    online = [p for p in winners if not any(shadow in p for shadow in SHADOWS)]
    winners = online if len(online) == 1 else winners
    if len(winners) > 1:
        raise BenchError(f"{path}: keys match the model under several prefixes "
                         f"({', '.join(repr(p) for p in sorted(winners))}); choose one with prefix=")
    return winners[0]
