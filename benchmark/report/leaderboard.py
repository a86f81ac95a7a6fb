"""Leaderboards from ``results/runs.csv``: one table per dataset and protocol.

The best row per (dataset, protocol, encoder) is the one with the highest *validation*
accuracy (ties: the latest), so the leaderboard never picks by test accuracy. Published
figures from the paper stand beside our rows, marked as published, and each of our rows
shows its difference to the published figure of its encoder family.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pandas as pd

from ..core.errors import BenchError
from ..core.files import write_text
from ..encoders import pretrained
from ..probe.solver import DEFAULT_GAP, certified_gaps
from . import published

UNCERTIFIED = "†"

START, END = "<!-- bench:leaderboard:start -->", "<!-- bench:leaderboard:end -->"
SOLVER_MARKERS = ("<!-- bench:solvers:start -->", "<!-- bench:solvers:end -->")
COMPARE_MARKERS = ("<!-- bench:compare:start -->", "<!-- bench:compare:end -->")
THROUGHPUT_MARKERS = ("<!-- bench:throughput:start -->", "<!-- bench:throughput:end -->")
MODELS_MARKERS = ("<!-- bench:models:start -->", "<!-- bench:models:end -->")
TIMINGS_MARKERS = ("<!-- bench:timings:start -->", "<!-- bench:timings:end -->")


def comparisons(folder: Path) -> str:
    """The saved outputs of `bench compare` (results/compare-*.txt), one block each."""
    blocks = [f"`{p.name}`\n\n```\n{p.read_text().strip()}\n```\n" for p in sorted(Path(folder).glob("compare-*.txt"))
              if p.read_text().strip()]
    return "\n".join(blocks)


def load_rows(path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no results yet; run `bench run DATASET --features ENCODER` first")
    rows = pd.read_csv(path, dtype={"layer": str, "encoder": str})
    for column in ("gap", "search_gap"):  # rows from before the certified probe have neither
        rows[column] = pd.to_numeric(rows[column], errors="coerce") if column in rows else float("nan")
    rows["certified"] = [certified_gaps(g, s) for g, s in zip(rows["gap"], rows["search_gap"])]
    return rows


def best_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, protocol, encoder): a certified row before any other, then the best validation accuracy."""
    rows = rows[rows["layer"].fillna("").isin(["", "all"])]
    rows = rows.sort_values(["certified", "val_acc", "time"]).groupby(["dataset", "protocol", "encoder"],
                                                                      as_index=False).tail(1)
    return rows.sort_values(["dataset", "protocol", "test_acc"], ascending=[True, True, False])


def _family(spec: str) -> str:
    """The published family a row is set against: its encoder's name, or the family of a model we
    trained (its manifest ``encoder``); random-weights controls are set against none."""
    if "weights=random" in spec:
        return ""
    name = spec.split(":")[0]
    entry = pretrained.manifest().get(name)
    return entry.meta.get("encoder", name) if entry else name


def tables(rows: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """One display table per (dataset, protocol), ours and published rows together."""
    best = best_rows(rows)
    refs = pd.DataFrame(published.ROWS, columns=["dataset", "protocol", "method", "family", "acc", "std"])
    out = {}
    for (dataset, protocol), group in best.groupby(["dataset", "protocol"], sort=True):
        ref = refs[(refs.dataset == dataset.split("-")[0]) & (refs.protocol == protocol)]
        ref_acc = dict(zip(ref.family, ref.acc))
        table = pd.DataFrame({
            "encoder": [e if ok else f"{e} {UNCERTIFIED}" for e, ok in zip(group["encoder"], group["certified"])],
            "test acc %": [_pm(a, s) for a, s in zip(group["test_acc"], group["test_acc_std"])],
            "val acc %": group["val_acc"].map(lambda v: f"{v:.2f}"),
            "vs published": [_delta(a, ref_acc.get(_family(e))) for a, e in zip(group["test_acc"], group["encoder"])],
            "dims": group["dims"].astype(int).astype(str),
            "C": group["C"].map(lambda c: f"{c:.3g}"),
            "gap": group["gap"].map(_gap),
            "scale": group["scale"].fillna(""),
            "draws": group["draws"].astype(int).astype(str),
            "solver": group["solver"],
            "data": group["data_variant"],
            "extract s": group["extract_s"].map(lambda v: f"{v:.0f}"),
            "fit s": group["fit_s"].map(lambda v: f"{v:.0f}"),
            "device": group["device"],
            "n train/test": [f"{a}/{b}" for a, b in zip(group["n_train"], group["n_test"])],
        })
        published_rows = pd.DataFrame({
            "encoder": [f"*{m}* (published)" for m in ref.method],
            "test acc %": [_pm(a, s) for a, s in zip(ref["acc"], ref["std"])],
        })
        out[(dataset, protocol)] = pd.concat([table, published_rows], ignore_index=True).astype(object).fillna("")
    return out


def _pm(acc, std) -> str:
    if pd.isna(acc):
        return ""
    return f"{acc:.2f} ± {std:.2f}" if std is not None and not pd.isna(std) else f"{acc:.2f}"


def _gap(value) -> str:
    return "" if pd.isna(value) else f"{value:.0e}"


def _delta(acc, ref) -> str:
    return "" if ref is None or pd.isna(acc) else f"{acc - ref:+.2f}"


def solver_table(path: Path) -> str:
    """Markdown table of ``bench solvers`` results, latest row per case, with speed-ups over liblinear.

    A case stopped at its time limit shows its time as a lower bound, and so do speed-ups over it.
    """
    if not Path(path).is_file():
        return ""
    rows = pd.read_csv(path).fillna({"status": "ok"})
    for column in ("scale", "gap", "passes"):  # files written before these columns
        if column not in rows:
            rows[column] = float("nan")
    rows["scale"] = rows["scale"].fillna("standard")  # what bench solvers used before it took the encoder's own
    case = ["dataset", "encoder", "scale", "n_train"]
    rows = rows.sort_values("time").groupby(case + ["solver", "precision", "device"], as_index=False).tail(1)
    base = {tuple(r[c] for c in case): (r["fit_s"], r["status"]) for _, r in rows.iterrows() if r["solver"] == "liblinear"}

    def speedup(r):
        key = tuple(r[c] for c in case)
        if key not in base or r["status"] != "ok":
            return ""
        ref, ref_status = base[key]
        return f"{'>' if ref_status != 'ok' else ''}{ref / r['fit_s']:.1f}x"

    def fmt(value, pattern):
        return "" if pd.isna(value) else format(value, pattern)

    table = pd.DataFrame({
        "features": rows.encoder, "scale": rows.scale, "rows": rows.n_train, "dims": rows.dims,
        "solver": rows.solver, "precision": rows.precision, "device": rows.device,
        "fit s (search + refit)": [fmt(v, ".1f") if st == "ok" else f"> {v:.0f} ({st})"
                                   for v, st in zip(rows.fit_s, rows.status)],
        "vs liblinear": [speedup(r) for _, r in rows.iterrows()],
        "C points": rows.search_points.map(lambda v: fmt(v, ".0f")), "C": rows.C.map(lambda c: fmt(c, ".3g")),
        "gap": rows.gap.map(_gap), "passes": rows.passes.map(lambda v: fmt(v, ".0f")),
        "test acc %": rows.test_acc.map(lambda v: fmt(v, ".2f")), "peak RSS GB": rows.peak_rss_gb.map(lambda v: fmt(v, ".2f")),
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


def timings_table(rows: pd.DataFrame) -> str:
    """Extraction and probe times of every full-protocol run, latest per (encoder, scaling, device), widest first."""
    full = rows[(rows.protocol == "full") & rows["layer"].fillna("").isin(["", "all"])]
    full = full.sort_values("time").groupby(["dataset", "encoder", "scale", "device"], as_index=False).tail(1)
    full = full.sort_values(["dims", "encoder", "device"], ascending=[False, True, True])
    table = pd.DataFrame({
        "dataset": full.dataset, "encoder": full.encoder, "dims": full.dims.astype(int).astype(str),
        "scale": full.scale.fillna(""), "device": full.device, "n train": full.n_train.astype(str),
        "extract s": full.extract_s.map(lambda v: f"{v:.1f}"), "fit s (search + refit)": full.fit_s.map(lambda v: f"{v:.1f}"),
        "peak RSS GB": full.peak_rss_gb.map(lambda v: f"{v:.2f}"), "gap": full.gap.map(_gap),
        "test acc %": full.test_acc.map(lambda v: f"{v:.2f}"),
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


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


def models_table() -> str:
    """The models this project trained (pretrained/manifest.toml entries with an ``encoder``), with their budgets."""
    entries = [e for e in pretrained.manifest().values() if "encoder" in e.meta]
    if not entries:
        return ""
    table = pd.DataFrame({
        "encoder": [f"`{e.name}`" for e in entries],
        "network": [e.meta["architecture"] for e in entries],
        "trained": [", ".join(f"{k} {v}" for k, v in e.meta["training"].items() if k in ("epochs", "steps", "classes"))
                    for e in entries],
        "batch": [e.meta["training"]["batch_size"] for e in entries],
        "wall s": [f"{e.meta['training']['wall_s']:.0f}" for e in entries],
        "machine": [e.meta["training"]["machine"] for e in entries],
        "seed": [e.meta["training"]["seed"] for e in entries],
        "data": [e.meta["training"]["data"] for e in entries],
    })
    text = table.to_markdown(index=False, disable_numparse=True) + "\n"
    for e in entries:
        if "samples" in e.meta:
            path = e.meta["samples"].split(" ")[0]
            text += f"\n`{e.name}` samples, {e.meta['samples'].partition(' ')[2].strip('()')}:\n\n![{e.name} samples]({path})\n"
    return text


def draw_figures(rows: pd.DataFrame, folder: Path) -> dict[str, list[Path]]:
    """PNG figures per dataset: accuracy against labels per class, and accuracy per layer."""
    from . import figures

    out = {}
    for dataset in sorted(rows.dataset.unique()):
        made = [figures.labels_curve(rows, dataset, folder / f"{dataset}-labels.png"),
                figures.per_layer(rows, dataset, folder / f"{dataset}-layers.png")]
        out[dataset] = [p for p in made if p is not None]
    return out


def markdown(rows: pd.DataFrame, figures: dict[str, list[Path]] | None = None, relative_to: Path = Path(".")) -> str:
    parts = []
    for (dataset, protocol), table in tables(rows).items():
        parts.append(f"### {dataset} · protocol `{protocol}`\n\n{table.to_markdown(index=False, disable_numparse=True)}\n")
    for dataset, paths in (figures or {}).items():
        for path in paths:
            parts.append(f"![{path.stem}]({os.path.relpath(path, relative_to)})\n")
    parts.append(f"Published rows: {published.SOURCE}. Best row per encoder chosen by validation accuracy, "
                 f"certified rows first. `gap`: the probe's relative primal-dual gap at the final fit (worst class); "
                 f"{UNCERTIFIED} marks a row whose final fit or C search was not certified to {DEFAULT_GAP:g} "
                 f"(a solver limit was hit, or the row predates certification).\n")
    return "\n".join(parts)


def html(rows: pd.DataFrame, figures: dict[str, list[Path]] | None = None) -> str:
    """One standalone page: tables, and figures inlined as data URIs."""
    body = "".join(f"<h3>{d} · {p}</h3>{t.to_html(index=False, border=0)}" for (d, p), t in tables(rows).items())
    for paths in (figures or {}).values():
        for path in paths:
            data = base64.b64encode(path.read_bytes()).decode()
            body += f"<p><img alt='{path.stem}' src='data:image/png;base64,{data}'></p>"
    return f"<!doctype html><meta charset='utf-8'><title>bench leaderboard</title>{body}"


def replace_section(document: str, body: str, start: str = START, end: str = END) -> str:
    """Put ``body`` between the markers, appending the marked section if it is absent."""
    block = f"{start}\n{body}\n{end}"
    if start in document and end in document:
        return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, document, flags=re.S)
    return document.rstrip() + "\n\n" + block + "\n"


def update_document(results_path: Path, out: Path) -> str:
    """Rewrite every generated section of ``out`` (BENCHMARKS.md) from the files beside ``results_path``.

    Returns the leaderboard section's text. Figures go to ``figures/`` beside the results.
    """
    folder = Path(results_path).parent
    rows = load_rows(results_path)
    text = markdown(rows, draw_figures(rows, folder / "figures"), relative_to=out.parent)
    document = out.read_text() if out.exists() else "# Benchmarks\n"
    speeds = folder / "train-throughput.csv"
    sections = [(text, (START, END)), (solver_table(folder / "solvers.csv"), SOLVER_MARKERS),
                (timings_table(rows), TIMINGS_MARKERS), (models_table(), MODELS_MARKERS),
                (throughput_table(speeds) if speeds.is_file() else "", THROUGHPUT_MARKERS),
                (comparisons(folder), COMPARE_MARKERS)]
    for body, markers in sections:
        if body:
            document = replace_section(document, body, *markers)
    write_text(out, document)
    return text


def render(results_path: Path, fmt: str) -> str:
    """The leaderboard as ``csv`` or a standalone ``html`` page (figures inlined)."""
    rows = load_rows(results_path)
    if fmt == "csv":
        return best_rows(rows).to_csv(index=False)
    return html(rows, draw_figures(rows, Path(results_path).parent / "figures"))
