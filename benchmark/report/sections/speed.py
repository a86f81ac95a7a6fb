"""Speed targets timed old path against new in one invocation (`bench timings`), and the extraction variants."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..document import Report, section
from ..rows import gap, load_rows


def speed_table(path: Path) -> str:
    """``bench timings``: old and new path per speed target, from the latest invocation."""
    rows = pd.read_csv(path)
    rows = rows[rows.time.isin(rows[rows.path == "new"].time.tail(1))
                | rows.time.isin(rows[rows.path == "old"].time.tail(1))]
    old, new = (rows[rows.path == p].set_index("case") for p in ("old", "new"))
    table = pd.DataFrame({
        "run": new.index, "target s": new.target_s.astype(int).astype(str),
        "old s": [f"{old.seconds[c]:.1f}" if c in old.index else "" for c in new.index],
        "new s": new.seconds.map(lambda v: f"{v:.1f}"),
        "speed-up": [f"{old.seconds[c] / new.seconds[c]:.1f}x" if c in old.index else "" for c in new.index],
        "target met": ["yes" if s <= t else "no" for s, t in zip(new.seconds, new.target_s)],
        "test acc % old / new": [f"{old.test_acc[c]:.2f} / {new.test_acc[c]:.2f}" if c in old.index else ""
                                 for c in new.index],
        "gap new": new.gap.map(gap),
    })
    commits = f"old `{old.commit.iloc[0]}`, new `{new.commit.iloc[0]}`" if len(old) else f"new `{new.commit.iloc[0]}`"
    return (table.to_markdown(index=False, disable_numparse=True) +
            f"\n\nMeasured {new.time.iloc[0]} by `bench timings` ({commits}; 1-minute load "
            f"{new.load_1min.iloc[0]:.2f} at the start).\n")


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
