"""Why K = 4,000 k-means centroids score below K = 1,600 here (the reverse of Coates, Lee & Ng): each candidate
cause as a variant run at both K (`bench record k-question`), paired image by image on validation. The leaderboard's
own k-means rows (each data copy at the defaults) are variants too."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...probe.compare import paired_images
from .. import results
from ..document import Report, section
from ..rows import load_rows, setting, whole_dataset

FILE = "k-question.csv"
WIDE, NARROW = 4000, 1600


def _k(spec: str) -> int:
    options = dict(item.split("=", 1) for item in spec.partition(":")[2].split(",") if "=" in item)
    return int(options.get("k", NARROW))


def _variant(row) -> str:
    options = [item for item in row.encoder.partition(":")[2].split(",") if item and not item.startswith("k=")]
    kind, _, fixed = row.probe.partition(":")
    searched = "k, T searched" if kind == "knn" else "C searched"
    return ", ".join([row.dataset, kind, f"scale {row.scale}", fixed or searched, *options])


@section("k-question", reads=(FILE, "predictions/"))
def k_question(report: Report) -> str:
    path = report.folder / FILE
    frames = ([report.rows] if Path(report.results_path).is_file() else []) + \
        ([whole_dataset(load_rows(path, report.warn))] if path.is_file() else [])
    if not frames:
        return ""
    rows = pd.concat(frames)
    rows = rows[(rows.protocol == "full") & rows.encoder.str.startswith("kmeans") & rows.predictions.notna()]
    rows = rows.assign(K=rows.encoder.map(_k), variant=[_variant(r) for r in rows.itertuples()])
    latest = rows.sort_values("time").groupby(["variant", "K"]).tail(1).set_index(["variant", "K"])
    lines, verdicts = [], {"below": [], "level": [], "above": []}
    for variant in dict.fromkeys(rows.variant):
        found = {k: latest.loc[(variant, k)] for k in (NARROW, WIDE) if (variant, k) in latest.index}
        line = {"variant": variant}
        for k, r in found.items():
            line[f"K = {k:,} val / test %"] = f"{r.val_acc:.2f} / {r.test_acc:.2f} ({setting(r)})"
        if len(found) == 2:
            wide, narrow = found[WIDE], found[NARROW]
            pw, pn = (results.load_predictions(report.results_path, r.predictions) for r in (wide, narrow))
            val = paired_images(pw["val_correct"], pn["val_correct"], 0)
            lo, hi = val.ci95
            verdicts["above" if lo > 0 else "below" if hi < 0 else "level"].append(variant)
            line["4,000 − 1,600 on validation"] = f"{val.diff:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            line["on test"] = f"{wide.test_acc - narrow.test_acc:+.2f}"
        lines.append(line)
    if not lines:
        return ""
    said = {"below": "K = 4,000 below K = 1,600 beyond the interval", "level": "the interval spans zero",
            "above": "K = 4,000 above K = 1,600 beyond the interval"}
    verdict = " ".join(f"On validation, {said[kind]} ({len(names)}): {'; '.join(names)}." for kind, names
                       in verdicts.items() if names) or "No variant has rows at both K yet: the question stays open."
    columns = ["variant", "K = 1,600 val / test %", "K = 4,000 val / test %", "4,000 − 1,600 on validation", "on test"]
    return (pd.DataFrame(lines).reindex(columns=columns).fillna("").to_markdown(index=False, disable_numparse=True)
            + "\n\nEach variant run at both K on the same images; the validation difference is paired image by "
              "image over the 10,000 held-out training images, [95% bootstrap interval]. " + verdict + "\n")
