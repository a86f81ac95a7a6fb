"""`bench scale`: the probe's time and memory against its rows, in memory, streamed under a budget, sharded."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .. import figures as plots
from ..document import Report, section
from ..rows import gap


def growth(rows: pd.DataFrame) -> pd.Series:
    """Per (width, placement, processes): the exponent a in seconds ~ rows^a, a least-squares fit in log-log."""
    def slope(group):
        return np.polyfit(np.log(group.rows), np.log(group.seconds), 1)[0] if group.rows.nunique() > 1 else np.nan

    return rows.groupby(["width", "placement", "processes"]).apply(slope, include_groups=False)


@section("scale", reads=("scale.csv",))
def scale(report: Report) -> str:
    path = report.folder / "scale.csv"
    if not path.is_file():
        return ""
    rows = pd.read_csv(path)
    rows = rows[rows.status == "ok"].sort_values("time")
    rows = rows.groupby(["rows", "width", "placement", "processes"], as_index=False).tail(1)
    if rows.empty:
        return ""
    rows = rows.sort_values(["rows", "processes", "placement"])
    exponent = growth(rows)
    table = pd.DataFrame({
        "rows": rows.rows.map(lambda v: f"{v:,}"), "width": rows.width.astype(str),
        "memory": [f"{b:g} GB budget" if p == "budget" else "no budget" for p, b in zip(rows.placement, rows.budget_gb)],
        "processes": rows.processes.astype(str), "seconds": rows.seconds.map(lambda v: f"{v:.1f}"),
        "passes": rows.passes.map(lambda v: f"{v:.0f}"), "s per pass": rows.s_per_pass.map(lambda v: f"{v:.2f}"),
        "peak RSS GB (largest process)": rows.peak_rss_gb.map(lambda v: f"{v:.2f}"),
        "test acc %": rows.test_acc.map(lambda v: f"{v:.2f}"), "gap": rows.gap.map(gap),
        "1-min load": rows.load_1min.map(lambda v: f"{v:.2f}"), "measured": rows.time,
    })
    text = table.to_markdown(index=False, disable_numparse=True) + "\n"
    fitted = [f"width {width}, {placement}, {processes} process{'es' if processes > 1 else ''}: {a:.2f}"
              for (width, placement, processes), a in exponent.items() if a == a]
    if fitted:
        text += f"\nGrowth exponent of time in rows (seconds ~ rows^a, fitted in log-log): {'; '.join(fitted)}.\n"
    figure = plots.scale_curve(rows, report.folder / "figures" / "scale.png")
    if figure is not None:
        text += f"\n![scale]({os.path.relpath(figure, report.out.parent)})\n"
    return text
