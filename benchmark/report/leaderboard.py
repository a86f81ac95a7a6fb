"""Leaderboards from ``results/runs.csv``: one table per dataset, protocol and probe.

The best row per (dataset, protocol, probe, encoder) is the one with the highest *validation*
accuracy (ties: the latest), so the leaderboard never picks by test accuracy. Published
figures from the paper (an L2-SVM's) stand beside our SVM rows, marked as published, and
each of those rows shows its difference to the published figure of its encoder family.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
from pathlib import Path

import pandas as pd

from ..core.errors import BenchError
from ..core.files import write_text
from ..encoders import pretrained
from ..probe.solver import DEFAULT_GAP, REFERENCES, certified_gaps
from . import pairs, published, results

UNCERTIFIED = "†"

START, END = "<!-- bench:leaderboard:start -->", "<!-- bench:leaderboard:end -->"
SOLVER_MARKERS = ("<!-- bench:solvers:start -->", "<!-- bench:solvers:end -->")
COMPARE_MARKERS = ("<!-- bench:compare:start -->", "<!-- bench:compare:end -->")
THROUGHPUT_MARKERS = ("<!-- bench:throughput:start -->", "<!-- bench:throughput:end -->")
MODELS_MARKERS = ("<!-- bench:models:start -->", "<!-- bench:models:end -->")
TIMINGS_MARKERS = ("<!-- bench:timings:start -->", "<!-- bench:timings:end -->")
SPEED_MARKERS = ("<!-- bench:speed:start -->", "<!-- bench:speed:end -->")
VARIANTS_MARKERS = ("<!-- bench:extraction-variants:start -->", "<!-- bench:extraction-variants:end -->")
PENALTY_MARKERS = ("<!-- bench:jpeg-penalty:start -->", "<!-- bench:jpeg-penalty:end -->")
PARITY_MARKERS = ("<!-- bench:probe-parity:start -->", "<!-- bench:probe-parity:end -->")
REPRODUCE_MARKERS = ("<!-- bench:reproduce:start -->", "<!-- bench:reproduce:end -->")


def saved_outputs(folder: Path, pattern: str = "compare-*.txt") -> str:
    """Saved command outputs (`bench compare`: compare-*.txt; `bench reproduce`: reproduce-*.txt), one block each."""
    blocks = [f"`{p.name}`\n\n```\n{p.read_text().strip()}\n```\n" for p in sorted(Path(folder).glob(pattern))
              if p.read_text().strip()]
    return "\n".join(blocks)


NUMERIC = ("dims", "C", "tol", "val_acc", "test_acc", "test_acc_std", "test_acc_ci95", "draws", "per_class",
           "val_size", "n_train", "n_test", "extract_s", "fit_s", "peak_rss_gb", "seed", "gap", "search_gap",
           "passes", "limit", "k", "t", "n_classes")
ACCURACIES = ("val_acc", "test_acc")  # percentages: finite, within [0, 100]


def load_rows(path, warn=print) -> pd.DataFrame:
    """Every well-formed row of a results file; a malformed line is named in one warning and skipped."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no results yet; run `bench run DATASET --features ENCODER` first")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not a text CSV file; give a results file written by bench run") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    unknown = sorted(set(header) - set(results.COLUMNS))
    if not header or unknown:
        raise BenchError(f"{path}: columns {unknown[:5] or '(none)'} are not result columns; "
                         "give a results file written by bench run")
    good = []
    for fields in reader:
        if fields == header:
            warn(f"warning: {path} line {reader.line_num}: a repeated header; skipped")
        elif len(fields) != len(header):
            warn(f"warning: {path} line {reader.line_num}: {len(fields)} fields where the header has "
                 f"{len(header)}; skipped")
        else:
            good.append(fields)
    rows = pd.DataFrame(good, columns=header).replace("", None)
    for column in results.COLUMNS:
        if column not in rows:
            rows[column] = None
    for column in NUMERIC:
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    accuracies = rows[list(ACCURACIES)]
    broken = accuracies.isna().any(axis=1) | (accuracies < 0).any(axis=1) | (accuracies > 100).any(axis=1)
    for index in rows.index[broken]:
        warn(f"warning: {path}: the row of {rows.at[index, 'time']} ({rows.at[index, 'encoder']}) has accuracies "
             f"{rows.at[index, 'val_acc']} / {rows.at[index, 'test_acc']} (validation / test), not percentages "
             "within 0..100; skipped")
    rows = rows[~broken].copy()
    family = rows["dataset"].fillna("").astype(str).str.split("-").str[0]
    rows["n_classes"] = rows["n_classes"].fillna(family.map(results.KNOWN_CLASSES))
    rows["layer"] = rows["layer"].fillna("")
    rows["probe"] = rows["probe"].fillna("svm")  # rows written before there were other probes
    rows["probe_kind"] = rows["probe"].str.split(":").str[0]
    exact = rows["probe_kind"] == "knn"
    rows["certified"] = [bool(x) or certified_gaps(g, s) for x, g, s in zip(exact, rows["gap"], rows["search_gap"])]
    return rows


def whole_dataset(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows the leaderboard, timings and figures use: whole datasets only (no --limit runs)."""
    return rows[rows["limit"].isna()]


TABLE_KEY = ["dataset", "data_variant", "protocol", "probe_kind"]


def best_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, protocol, probe, encoder): a certified row before any other, then the best validation
    accuracy."""
    rows = rows[rows["layer"].fillna("").isin(["", "all"])]
    rows = rows.sort_values(["certified", "val_acc", "time"]).groupby(TABLE_KEY + ["encoder"], as_index=False).tail(1)
    return rows.sort_values(TABLE_KEY + ["test_acc"], ascending=[True, True, True, True, False])


def setting(row) -> str:
    """The hyper-parameters the probe's search chose: C, or k and T."""
    if row["probe_kind"] == "knn":
        return f"k={row['k']:.0f}, T={row['t']:g}"
    return f"C={row['C']:.3g}"


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
            "test acc %": [_pm(a, s) for a, s in zip(group["test_acc"], group["test_acc_std"])],
            "val acc %": group["val_acc"].map(lambda v: f"{v:.2f}"),
            "vs published": [_delta(a, ref_acc.get(_family(e))) for a, e in zip(group["test_acc"], group["encoder"])],
            "dims": group["dims"].astype(int).astype(str),
            "setting": [setting(r) for _, r in group.iterrows()],
            "gap": [("exact" if k == "knn" else _gap(g)) for k, g in zip(group["probe_kind"], group["gap"])],
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
            "test acc %": [_pm(a, s) for a, s in zip(ref["acc"], ref["std"])],
        })
        out[(dataset, variant, protocol, probe)] = pd.concat([table, published_rows],
                                                             ignore_index=True).astype(object).fillna("")
    return out


def _pm(acc, std) -> str:
    if pd.isna(acc):
        return ""
    return f"{acc:.2f} ± {std:.2f}" if std is not None and not pd.isna(std) else f"{acc:.2f}"


def _gap(value) -> str:
    return "" if pd.isna(value) else f"{value:.1e}"  # two digits: 9.6e-04 must not read as 1e-03


def _delta(acc, ref) -> str:
    return "" if ref is None or pd.isna(acc) else f"{acc - ref:+.2f}"


def solver_table(path: Path) -> str:
    """Markdown table of ``bench solvers`` results, latest row per case, with speed-ups over the probe's
    scikit-learn reference (liblinear for the SVM, lbfgs for logistic regression).

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
    case = ["dataset", "encoder", "probe", "scale", "n_train"]
    rows = rows.sort_values("time").groupby(case + ["solver", "precision", "device"], as_index=False).tail(1)
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
        "gap": rows.gap.map(_gap), "passes": rows.passes.map(lambda v: fmt(v, ".0f")),
        "test acc %": rows.test_acc.map(lambda v: fmt(v, ".2f")), "peak RSS GB": rows.peak_rss_gb.map(lambda v: fmt(v, ".2f")),
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


def parity_table(path: Path) -> str:
    """``scripts/probe-parity.py``: the new probes against their references, latest row per check."""
    if not Path(path).is_file():
        return ""
    rows = pd.read_csv(path).sort_values("time").groupby("check", as_index=False).tail(1)
    table = pd.DataFrame({"check": rows.check, "features": rows.encoder.map(lambda e: f"`{e}`"), "rows": rows.rows,
                          "setting": rows.setting, "difference": rows.difference, "detail": rows.detail,
                          "measured": rows.time})
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


def timings_table(rows: pd.DataFrame) -> str:
    """Extraction and probe times of every certified full-protocol run, latest per (encoder, probe, scaling,
    device), widest first: a time is only worth comparing at the same certified gap."""
    full = rows[(rows.protocol == "full") & rows["layer"].fillna("").isin(["", "all"]) & rows.certified]
    full = full.sort_values("time").groupby(["dataset", "encoder", "probe_kind", "scale", "device"],
                                            as_index=False).tail(1)
    full = full.sort_values(["dims", "encoder", "probe_kind", "device"], ascending=[False, True, True, True])
    table = pd.DataFrame({
        "dataset": full.dataset, "encoder": full.encoder, "probe": full.probe_kind,
        "dims": full.dims.astype(int).astype(str),
        "scale": full.scale.fillna(""), "device": full.device, "n train": full.n_train.astype(str),
        "extract s": full.extract_s.map(lambda v: f"{v:.1f}"), "fit s (search + refit)": full.fit_s.map(lambda v: f"{v:.1f}"),
        "peak RSS GB": full.peak_rss_gb.map(lambda v: f"{v:.2f}"),
        "gap": [("exact" if k == "knn" else _gap(g)) for k, g in zip(full.probe_kind, full.gap)],
        "test acc %": full.test_acc.map(lambda v: f"{v:.2f}"),
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


def speed_table(path: Path) -> str:
    """``scripts/timings.py``: old and new path per speed target, from the latest invocation."""
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
        "gap new": new.gap.map(_gap),
    })
    commits = f"old `{old.commit.iloc[0]}`, new `{new.commit.iloc[0]}`" if len(old) else f"new `{new.commit.iloc[0]}`"
    return (table.to_markdown(index=False, disable_numparse=True) +
            f"\n\nMeasured {new.time.iloc[0]} by `scripts/timings.py` ({commits}; 1-minute load "
            f"{new.load_1min.iloc[0]:.2f} at the start).\n")


def variants_table(path: Path) -> str:
    """``scripts/extraction-variants.sh``: the headline's extraction options against accuracy and time."""
    rows = load_rows(path)
    rows = rows.sort_values("time").groupby("encoder", as_index=False).tail(1).sort_values("time")
    table = pd.DataFrame({
        "features": rows.encoder.map(lambda e: f"`{e}`"), "extract s": rows.extract_s.map(lambda v: f"{v:.1f}"),
        "val acc %": rows.val_acc.map(lambda v: f"{v:.2f}"), "test acc %": rows.test_acc.map(lambda v: f"{v:.2f}"),
        "C": rows.C.map(lambda c: f"{c:.3g}"), "gap": rows.gap.map(_gap), "peak RSS GB": rows.peak_rss_gb.map(
            lambda v: f"{v:.2f}"), "device": rows.device, "measured": rows.time,
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


def models_table() -> str:
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


def draw_figures(rows: pd.DataFrame, folder: Path) -> dict[str, list[Path]]:
    """PNG figures per dataset and data variant: accuracy against labels per class, and accuracy per layer."""
    from . import figures

    out = {}
    for (dataset, variant, probe), group in rows.groupby(["dataset", "data_variant", "probe_kind"], sort=True):
        stem = f"{dataset}-{variant}" + ("" if probe == "svm" else f"-{probe}")
        made = [figures.labels_curve(group, dataset, folder / f"{stem}-labels.png", probe),
                figures.per_layer(group, dataset, folder / f"{stem}-layers.png", probe)]
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


def replace_section(document: str, body: str, start: str = START, end: str = END) -> str:
    """Put ``body`` between the markers, appending the marked section if it is absent."""
    block = f"{start}\n{body}\n{end}"
    if start in document and end in document:
        return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, document, flags=re.S)
    return document.rstrip() + "\n\n" + block + "\n"


def update_document(results_path: Path, out: Path, warn=print) -> str:
    """Rewrite every generated section of ``out`` (BENCHMARKS.md) from the files beside ``results_path``.

    Returns the leaderboard section's text. Figures go to ``figures/`` beside the results.
    """
    folder = Path(results_path).parent
    rows = whole_dataset(load_rows(results_path, warn))
    text = markdown(rows, draw_figures(rows, folder / "figures"), relative_to=out.parent)
    document = out.read_text() if out.exists() else "# Benchmarks\n"
    speeds, timings, variants = (folder / f"{name}.csv" for name in ("train-throughput", "timings",
                                                                       "extraction-variants"))
    sections = [(speed_table(timings) if timings.is_file() else "", SPEED_MARKERS),
                (variants_table(variants) if variants.is_file() else "", VARIANTS_MARKERS),(text, (START, END)), (solver_table(folder / "solvers.csv"), SOLVER_MARKERS),
                (timings_table(rows), TIMINGS_MARKERS), (models_table(), MODELS_MARKERS),
                (throughput_table(speeds) if speeds.is_file() else "", THROUGHPUT_MARKERS),
                (saved_outputs(folder), COMPARE_MARKERS),
                (saved_outputs(folder, "reproduce-*.txt"), REPRODUCE_MARKERS), (pairs.penalty_table(rows, results_path), PENALTY_MARKERS),
                (parity_table(folder / "probe-parity.csv"), PARITY_MARKERS)]
    for body, markers in sections:
        if body:
            document = replace_section(document, body, *markers)
    write_text(out, document)
    return text


def render(results_path: Path, fmt: str, warn=print) -> str:
    """The leaderboard as ``csv`` or a standalone ``html`` page (figures inlined)."""
    rows = whole_dataset(load_rows(results_path, warn))
    if fmt == "csv":
        return best_rows(rows).to_csv(index=False)
    return html(rows, draw_figures(rows, Path(results_path).parent / "figures"))
