"""The models this project trained: budgets, from the registry of pretrained models."""

from __future__ import annotations

import pandas as pd

from ...encoders import pretrained
from ..document import Report, section


def _trained(entry) -> dict:
    return entry.meta["training"]


def budget_note(spec: str) -> str:
    """A short budget note for rows of a model this project trained (empty for every other row)."""
    entry = pretrained.manifest().get(spec.split(":")[0])
    if entry is None or "encoder" not in entry.meta:
        return ""
    t = _trained(entry)
    seen = f", {t['images_seen'] / 1e6:.1f} M images" if "images_seen" in t else ""
    return f"trained here: {t['wall_s']:.0f} s on {t['machine']}{seen}"


@section("models")
def models_table(report: Report | None = None) -> str:
    """The models this project trained (pretrained/manifest.toml entries with an ``encoder``), with their budgets."""
    entries = [e for e in pretrained.manifest().values() if "encoder" in e.meta]
    if not entries:
        return ""

    def count(e, key):
        return f"{_trained(e)[key]:,}" if key in _trained(e) else ""

    table = pd.DataFrame({
        "encoder": [f"`{e.name}`" for e in entries],
        "network": [e.meta["architecture"] for e in entries],
        "device": [_trained(e)["machine"] for e in entries],
        "wall s": [f"{_trained(e)['wall_s']:.0f}" for e in entries],
        "images seen": [count(e, "images_seen") for e in entries],
        "epochs": [count(e, "epochs") for e in entries],
        "steps": [count(e, "steps") for e in entries],
        "classes": [count(e, "classes") for e in entries],
        "surrogate acc": [f"{_trained(e)['surrogate_acc']:.2f}" if "surrogate_acc" in _trained(e) else ""
                          for e in entries],
        "batch": [_trained(e)["batch_size"] for e in entries],
        "stored as": [e.meta.get("dtype", "float32") for e in entries],
        "seed": [_trained(e)["seed"] for e in entries],
        "data": [_trained(e)["data"] for e in entries],
    })
    text = table.to_markdown(index=False, disable_numparse=True) + "\n"
    for e in entries:
        if "samples" in e.meta:
            path = e.meta["samples"].split(" ")[0]
            text += f"\n`{e.name}` samples, {e.meta['samples'].partition(' ')[2].strip('()')}:\n\n![{e.name} samples]({path})\n"
    return text
