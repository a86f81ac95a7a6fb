"""Speed targets timed old path against new in one invocation (`bench timings`), and the extraction variants."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..document import Report, section
from ..rows import gap, load_rows


def speed_table(path: Path) -> str:
    """``bench timings``: every speed target's latest measurement, old path beside new (``bench timings`` times
    both in one invocation, so a case's latest old and new rows are one pair), with its commits, device and load."""
    rows = pd.read_csv(path).sort_values("time", kind="stable")
    new = rows[rows.path == "new"].groupby("case", sort=False).tail(1).set_index("case")
    old = rows[rows.path == "old"].groupby("case").tail(1).set_index("case").reindex(new.index)  # NaN: no old path
    paired = old.seconds.notna()
    table = pd.DataFrame({
        "run": new.index, "target s": new.target_s.astype(int).astype(str),
        "old s": old.seconds.map(lambda v: "" if pd.isna(v) else f"{v:.1f}"),
        "new s": new.seconds.map(lambda v: f"{v:.1f}"),
        "speed-up": (old.seconds / new.seconds).map(lambda v: "" if pd.isna(v) else f"{v:.1f}x"),
        "target met": ["" if t <= 0 else "yes" if s <= t else "no" for s, t in zip(new.seconds, new.target_s)],
        "test acc % old / new": [f"{a:.2f} / {b:.2f}" if p else ""
                                 for a, b, p in zip(old.test_acc, new.test_acc, paired)],
        "gap new": new.gap.map(gap),
        "commits old / new": [f"`{a}` / `{b}`" if p else f"`{b}`" for a, b, p in zip(old.commit, new.commit, paired)],
        "device": new.device.fillna("") if "device" in new else "",  # files written before the column have none
        "measured (new)": new.time, "1-min load": new.load_1min.map(lambda v: f"{v:.2f}"),
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


def variants_table(path: Path) -> str:
    """``bench record extraction-variants``: the headline's extraction options against accuracy and time."""
    rows = load_rows(path)
    rows = rows.sort_values("time").groupby("encoder", as_index=False).tail(1).sort_values("time")
    table = pd.DataFrame({
        "features": rows.encoder.map(lambda e: f"`{e}`"), "extract s": rows.extract_s.map(lambda v: f"{v:.1f}"),
        "val acc %": rows.val_acc.map(lambda v: f"{v:.2f}"), "test acc %": rows.test_acc.map(lambda v: f"{v:.2f}"),
        "C": rows.C.map(lambda c: f"{c:.3g}"), "gap": rows.gap.map(gap), "peak RSS GB": rows.peak_rss_gb.map(
            lambda v: f"{v:.2f}"), "device": rows.device, "measured": rows.time,
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


@section("speed", reads=("timings.csv",))
def speed(report: Report) -> str:
    path = report.folder / "timings.csv"
    return speed_table(path) if path.is_file() else ""


@section("extraction-variants", reads=("extraction-variants.csv",))
def extraction_variants(report: Report) -> str:
    path = report.folder / "extraction-variants.csv"
    return variants_table(path) if path.is_file() else ""
