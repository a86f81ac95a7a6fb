"""The probes against their references (`bench parity`), latest row per check."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..document import Report, section


def parity_table(path: Path) -> str:
    """``bench parity``: the new probes against their references, latest row per check."""
    if not Path(path).is_file():
        return ""
    rows = pd.read_csv(path).sort_values("time").groupby("check", as_index=False).tail(1)
    table = pd.DataFrame({"check": rows.check, "features": rows.encoder.map(lambda e: f"`{e}`"), "rows": rows.rows,
                          "setting": rows.setting, "difference": rows.difference, "detail": rows.detail,
                          "measured": rows.time})
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


@section("probe-parity", reads=("probe-parity.csv",))
def parity(report: Report) -> str:
    return parity_table(report.folder / "probe-parity.csv")
