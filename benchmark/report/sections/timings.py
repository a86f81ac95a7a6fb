"""Where the time goes: every certified full-protocol run's stages (encoder fit, extraction, the probe's search
and refit), each with its work and its fraction of this machine's measured peak (`bench limits`)."""

from __future__ import annotations

import pandas as pd

from .. import limits
from ..document import Report, section
from ..rows import gap


def stage_work(row) -> dict[str, tuple[float, float, str]]:
    """Per stage: (seconds, work, unit) from a row: GFLOP of matrix products for the encoder's fit, the extraction
    and kNN's searches (counted from the shapes), GB read by a linear probe's passes over its float32 rows."""
    out = {}
    fit_s = row.encoder_fit_s if pd.notna(row.encoder_fit_s) else float("nan")
    out["encoder fit"] = (fit_s, row.encoder_fit_gflop, "GFLOP")
    out["extraction"] = (row.extract_s - (0 if pd.isna(fit_s) else fit_s), row.extract_gflop, "GFLOP")
    n_fit, n_test = row.n_train - row.val_size, row.n_test
    if row.probe_kind == "knn":
        out["search"] = (row.search_s, 2 * row.dims * row.val_size * n_fit / 1e9, "GFLOP")
        out["refit"] = (row.refit_s, 2 * row.dims * n_test * row.n_train / 1e9, "GFLOP")
    else:
        out["search"] = (row.search_s, row.search_passes * n_fit * row.dims * 4 / 1e9, "GB")
        out["refit"] = (row.refit_s, row.refit_passes * row.n_train * row.dims * 4 / 1e9, "GB")
    return out


def fraction(seconds: float, work: float, unit: str, peaks: dict | None) -> float:
    """The stage's rate as a share of the machine's: the best matrix-product rate for GFLOP, memory bandwidth for GB."""
    if peaks is None or not (seconds > 0) or pd.isna(work) or not work:
        return float("nan")
    peak = max(peaks["matmul_float32_gflops"], peaks["matmul_bfloat16_gflops"]) if unit == "GFLOP" \
        else peaks["memory_read_gbs"]
    return work / seconds / peak


@section("timings", reads=("limits.json",))
def timings(report: Report) -> str:
    """Latest certified full-protocol run per (dataset, encoder, probe, scaling, device), widest first."""
    rows = report.rows
    full = rows[(rows.protocol == "full") & rows["layer"].fillna("").isin(["", "all"]) & rows.certified]
    full = full.sort_values("time").groupby(["dataset", "encoder", "probe_kind", "scale", "device"],
                                            as_index=False).tail(1)
    full = full.sort_values(["dims", "encoder", "probe_kind", "device"], ascending=[False, True, True, True])
    found = limits.read(report.folder)
    cells, furthest = {stage: [] for stage in ("encoder fit", "extraction", "search", "refit")}, []
    for _, row in full.iterrows():
        peaks = found[row.device]["peaks"] if row.device in found else None  # a machine `bench limits` has not measured
        for stage, (seconds, work, unit) in stage_work(row).items():
            share = fraction(seconds, work, unit, peaks)
            text = "" if pd.isna(seconds) else f"{seconds:.1f}"
            if not pd.isna(work) and work and not pd.isna(seconds):
                text += f" · {work:,.0f} {unit}" + (f" · {share:.0%}" if share == share else "")
                if share == share and "cpu" in str(row.device):
                    furthest.append((share, stage, row.encoder, row.probe_kind, row.device))
            cells[stage].append(text)
    table = pd.DataFrame({
        "dataset": full.dataset, "encoder": full.encoder, "probe": full.probe_kind,
        "dims": full.dims.astype(int).astype(str), "scale": full.scale.fillna(""), "device": full.device,
        "n train": full.n_train.astype(int).astype(str),
        **{f"{stage} s · work · of peak": cells[stage] for stage in cells},
        "extract s (fit + extraction)": full.extract_s.map(lambda v: f"{v:.1f}"),
        "probe s (search + refit)": full.fit_s.map(lambda v: f"{v:.1f}"),
        "peak RSS GB": full.peak_rss_gb.map(lambda v: f"{v:.2f}"),
        "gap": [("exact" if k == "knn" else gap(g)) for k, g in zip(full.probe_kind, full.gap)],
        "test acc %": full.test_acc.map(lambda v: f"{v:.2f}"),
    })
    text = table.to_markdown(index=False, disable_numparse=True) + "\n"
    for entry in found.values():
        m, p = entry["machine"], entry["peaks"]
        text += (f"\nPeaks measured by `bench limits` on {entry['measured']} ({m['device']}, {m['cpu']}, 1-minute "
                 f"load {entry['load_1min']}): matrix products {p['matmul_float32_gflops']:,.0f} GFLOP/s in float32, "
                 f"{p['matmul_bfloat16_gflops']:,.0f} in bfloat16; memory {p['memory_read_gbs']:.1f} GB/s; a cached "
                 f"feature file read at {p['hdf5_read_gbs']:.2f} GB/s.\n")
    if found:
        text += ("\nWork: GFLOP of matrix products (the encoder's fit and extraction, kNN's searches; counted from the "
                 "shapes), GB of float32 rows read by a linear probe's passes; its share of the best peak of its kind "
                 "on the device the row was measured on.\n")
    if furthest:
        share, stage, encoder, probe, device = min(furthest)
        text += (f"\nFurthest from its limit: the {stage} of `{encoder}` ({probe} probe) on {device}, at {share:.0%} "
                 f"of that machine's peak.\n")
    return text
