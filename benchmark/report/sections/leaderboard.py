"""The leaderboards: one table per dataset, data variant, protocol and probe, the paper's rows beside the SVM's,
and their figures (accuracy against labels, accuracy per layer); also the CSV and standalone HTML forms.

The best row per (dataset, protocol, probe, encoder) is the one with the highest *validation* accuracy
(certified rows first; ties: the latest), so a leaderboard never picks by test accuracy. Each SVM row shows
its difference to the published figure of its encoder family.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pandas as pd

from ...encoders import pretrained, published
from ...probe.solver import DEFAULT_GAP
from .. import figures as plots
from ..document import Report, section
from ..rows import TABLE_KEY, UNCERTIFIED, best_rows, delta, gap, pm, setting
from .models import budget_note


def _family(spec: str) -> str:
    """The published family a row is set against: its encoder's name, or the family of a model we
    trained (its manifest ``encoder``); random-weights controls are set against none."""
    if "weights=random" in spec:
        return ""
    name = spec.split(":")[0]
    entry = pretrained.manifest().get(name)
    return entry.meta.get("encoder", name) if entry else name


PROBE_ORDER = {"svm": 0, "logreg": 1, "knn": 2}


def tables(rows: pd.DataFrame) -> dict[tuple[str, str, str, str], pd.DataFrame]:
    """One display table per (dataset, data variant, protocol, probe): ours, and beside the SVM's the paper's."""
    best = best_rows(rows)
    refs = pd.DataFrame(published.ROWS, columns=["dataset", "protocol", "method", "family", "acc", "std"])
    out = {}
    groups = sorted(best.groupby(TABLE_KEY, sort=True), key=lambda kv: (*kv[0][:3], PROBE_ORDER.get(kv[0][3], 9)))
    for (dataset, variant, protocol, probe), group in groups:
        ref = refs[(refs.dataset == dataset.split("-")[0]) & (refs.protocol == protocol) & (probe == "svm")]
        ref_acc = dict(zip(ref.family, ref.acc))
        table = pd.DataFrame({
            "encoder": [e if ok else f"{e} {UNCERTIFIED}" for e, ok in zip(group["encoder"], group["certified"])],
            "test acc %": [pm(a, s) for a, s in zip(group["test_acc"], group["test_acc_std"])],
            "val acc %": group["val_acc"].map(lambda v: f"{v:.2f}"),
            "vs published": [delta(a, ref_acc.get(_family(e))) for a, e in zip(group["test_acc"], group["encoder"])],
            "dims": group["dims"].astype(int).astype(str),
            "setting": [setting(r) for _, r in group.iterrows()],
            "gap": [("exact" if k == "knn" else gap(g)) for k, g in zip(group["probe_kind"], group["gap"])],
            "scale": group["scale"].fillna(""),
            "draws": group["draws"].astype(int).astype(str),
            "solver": group["solver"],
            "extract s": group["extract_s"].map(lambda v: f"{v:.0f}"),
            "fit s": group["fit_s"].map(lambda v: f"{v:.0f}"),
            "device": group["device"],
            "n train/test": [f"{a}/{b}" for a, b in zip(group["n_train"], group["n_test"])],
            "trained": group["encoder"].map(budget_note),
            "command": group["command"].fillna(""),
        })
        published_rows = pd.DataFrame({
            "encoder": [f"*{m}* (published)" for m in ref.method],
            "test acc %": [pm(a, s) for a, s in zip(ref["acc"], ref["std"])],
        })
        out[(dataset, variant, protocol, probe)] = pd.concat([table, published_rows],
                                                             ignore_index=True).astype(object).fillna("")
    return out


def draw_figures(rows: pd.DataFrame, folder: Path) -> dict[str, list[Path]]:
    """PNG figures per dataset and data variant: accuracy against labels per class, and accuracy per layer."""
    out = {}
    for (dataset, variant, probe), group in rows.groupby(["dataset", "data_variant", "probe_kind"], sort=True):
        stem = f"{dataset}-{variant}" + ("" if probe == "svm" else f"-{probe}")
        made = [plots.labels_curve(group, dataset, folder / f"{stem}-labels.png", probe),
                plots.per_layer(group, dataset, folder / f"{stem}-layers.png", probe)]
        out[stem] = [p for p in made if p is not None]
    return out


def markdown(rows: pd.DataFrame, figures: dict[str, list[Path]] | None = None, relative_to: Path = Path(".")) -> str:
    parts = []
    for (dataset, variant, protocol, probe), table in tables(rows).items():
        shown = table.drop(columns="command")
        commands = "\n".join(f"- {e}: `{c}`" for e, c in zip(table["encoder"], table["command"]) if c)
        parts.append(f"### {dataset} ({variant}) · protocol `{protocol}` · probe `{probe}`\n\n"
                     f"{shown.to_markdown(index=False, disable_numparse=True)}\n\n"
                     f"<details><summary>the command behind each row (`bench reproduce` reruns it)</summary>\n\n"
                     f"{commands}\n\n</details>\n")
    for dataset, paths in (figures or {}).items():
        for path in paths:
            parts.append(f"![{path.stem}]({os.path.relpath(path, relative_to)})\n")
    parts.append(f"Published rows: {published.SOURCE}. Best row per encoder chosen by validation accuracy, "
                 f"certified rows first. `setting`: what the probe's search chose on validation (C, or kNN's k and "
                 f"T). `gap`: the probe's relative primal-dual gap at the final fit (the SVM's worst class; kNN is "
                 f"exact); "
                 f"{UNCERTIFIED} marks a row whose final fit or C search was not certified to {DEFAULT_GAP:g} "
                 f"(a solver limit was hit, or the row predates certification).\n")
    return "\n".join(parts)


def html(rows: pd.DataFrame, figures: dict[str, list[Path]] | None = None) -> str:
    """One standalone page: tables, and figures inlined as data URIs."""
    body = "".join(f"<h3>{d} ({v}) · {p} · probe {k}</h3>{t.to_html(index=False, border=0)}"
                   for (d, v, p, k), t in tables(rows).items())
    for paths in (figures or {}).values():
        for path in paths:
            data = base64.b64encode(path.read_bytes()).decode()
            body += f"<p><img alt='{path.stem}' src='data:image/png;base64,{data}'></p>"
    return f"<!doctype html><meta charset='utf-8'><title>bench leaderboard</title>{body}"


@section("leaderboard")
def leaderboard(report: Report) -> str:
    """Figures go to figures/ beside the results file."""
    return markdown(report.rows, draw_figures(report.rows, report.folder / "figures"), relative_to=report.out.parent)


def render(report: Report, fmt: str) -> str:
    """The leaderboard as ``csv`` or a standalone ``html`` page (figures inlined)."""
    if fmt == "csv":
        return best_rows(report.rows).to_csv(index=False)
    return html(report.rows, draw_figures(report.rows, report.folder / "figures"))
