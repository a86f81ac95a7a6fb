"""`bench solvers`: the probe's solvers timed against their scikit-learn references."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...probe.solver import REFERENCES
from ..document import Report, section
from ..rows import gap


def solver_table(path: Path) -> str:
    """Markdown table of ``bench solvers`` results, latest row per case, with speed-ups over the probe's
    scikit-learn reference (liblinear for the SVM, lbfgs for logistic regression) timed on the same device.

    A case stopped at its time limit shows its time as a lower bound, and so do speed-ups over it.
    """
    if not Path(path).is_file():
        return ""
    rows = pd.read_csv(path).fillna({"status": "ok"})
    for column in ("scale", "gap", "passes", "probe"):  # files written before these columns
        if column not in rows:
            rows[column] = float("nan")
    rows["scale"] = rows["scale"].fillna("standard")  # what bench solvers used before it took the encoder's own
    rows["probe"] = rows["probe"].fillna("svm")
    case = ["dataset", "encoder", "probe", "scale", "n_train", "device"]  # a ratio never spans two machines
    rows = rows.sort_values("time").groupby(case + ["solver", "precision"], as_index=False).tail(1)
    base = {tuple(r[c] for c in case): (r["fit_s"], r["status"]) for _, r in rows.iterrows()
            if r["solver"] in REFERENCES}

    def speedup(r):
        key = tuple(r[c] for c in case)
        if key not in base or r["status"] != "ok":
            return ""
        ref, ref_status = base[key]
        return f"{'>' if ref_status != 'ok' else ''}{ref / r['fit_s']:.1f}x"

    def fmt(value, pattern):
        return "" if pd.isna(value) else format(value, pattern)

    table = pd.DataFrame({
        "features": rows.encoder, "probe": rows.probe, "scale": rows.scale, "rows": rows.n_train, "dims": rows.dims,
        "solver": rows.solver, "precision": rows.precision, "device": rows.device,
        "fit s (search + refit)": [fmt(v, ".1f") if st == "ok" else f"> {v:.0f} ({st})"
                                   for v, st in zip(rows.fit_s, rows.status)],
        "vs scikit-learn": [speedup(r) for _, r in rows.iterrows()],
        "C points": rows.search_points.map(lambda v: fmt(v, ".0f")), "C": rows.C.map(lambda c: fmt(c, ".3g")),
        "gap": rows.gap.map(gap), "passes": rows.passes.map(lambda v: fmt(v, ".0f")),
        "test acc %": rows.test_acc.map(lambda v: fmt(v, ".2f")), "peak RSS GB": rows.peak_rss_gb.map(lambda v: fmt(v, ".2f")),
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


@section("solvers", reads=("solvers.csv",))
def solvers(report: Report) -> str:
    return solver_table(report.folder / "solvers.csv")
