"""`bench train throughput`: the DCGAN trainer against a plain PyTorch loop."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..document import Report, section


def throughput_table(path: Path) -> str:
    """Markdown table of ``bench train throughput``: the latest row per architecture and device."""
    rows = pd.read_csv(path).sort_values("time").groupby(["arch", "device"], as_index=False).tail(1)
    table = pd.DataFrame({
        "architecture": rows.arch, "device": rows.device, "batch": rows.batch,
        "trainer img/s": rows.trainer_img_s.map(lambda v: f"{v:.0f}"),
        "plain loop img/s": rows.plain_img_s.map(lambda v: f"{v:.0f}"),
        "trainer / plain": (rows.trainer_img_s / rows.plain_img_s).map(lambda v: f"{v:.2f}"),
        "measured": rows.time,
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


@section("throughput", reads=("train-throughput.csv",))
def throughput(report: Report) -> str:
    path = report.folder / "train-throughput.csv"
    return throughput_table(path) if path.is_file() else ""
