"""Why K = 4,000 k-means centroids score below K = 1,600 here (the reverse of Coates, Lee & Ng): each candidate
cause as a variant run at both K (`bench record k-question`), paired image by image on validation."""

from __future__ import annotations

import pandas as pd

from ...probe.compare import paired_images
from .. import results
from ..document import Report, section
from ..rows import load_rows, whole_dataset

FILE = "k-question.csv"
WIDE, NARROW = 4000, 1600


def _k(spec: str) -> int:
    options = dict(item.split("=", 1) for item in spec.partition(":")[2].split(",") if "=" in item)
    return int(options.get("k", NARROW))


def _variant(row) -> str:
    options = [item for item in row.encoder.partition(":")[2].split(",") if item and not item.startswith("k=")]
    fixed = row.probe.partition(":")[2]
    return ", ".join([row.dataset, f"scale {row.scale}", fixed or "C searched", *options])


@section("k-question", reads=(FILE, "predictions/"))
def k_question(report: Report) -> str:
    path = report.folder / FILE
    if not path.is_file():
        return ""
    rows = whole_dataset(load_rows(path, report.warn))
    rows = rows[(rows.protocol == "full") & rows.encoder.str.startswith("kmeans") & rows.predictions.notna()]
    rows = rows.assign(K=rows.encoder.map(_k), variant=[_variant(r) for r in rows.itertuples()])
    latest = rows.sort_values("time").groupby(["variant", "K"]).tail(1).set_index(["variant", "K"])
    lines, reversed_by = [], []
    for variant in dict.fromkeys(rows.variant):
        if (variant, WIDE) not in latest.index or (variant, NARROW) not in latest.index:
            continue
        wide, narrow = latest.loc[(variant, WIDE)], latest.loc[(variant, NARROW)]
        pw, pn = (results.load_predictions(path, r.predictions) for r in (wide, narrow))
        val = paired_images(pw["val_correct"], pn["val_correct"], 0)
        lo, hi = val.ci95
        if lo > 0:
            reversed_by.append(variant)
        lines.append({"variant": variant,
                      "K = 1,600 val / test %": f"{narrow.val_acc:.2f} / {narrow.test_acc:.2f} (C={narrow.C:.3g})",
                      "K = 4,000 val / test %": f"{wide.val_acc:.2f} / {wide.test_acc:.2f} (C={wide.C:.3g})",
                      "4,000 − 1,600 on validation": f"{val.diff:+.2f} [{lo:+.2f}, {hi:+.2f}]",
                      "on test": f"{wide.test_acc - narrow.test_acc:+.2f}"})
    if not lines:
        return ""
    verdict = (f"K = 4,000 scores above K = 1,600 on validation, beyond the interval, only with: "
               f"{'; '.join(reversed_by)}." if reversed_by else
               f"In none of the {len(lines)} variants measured does K = 4,000 score above K = 1,600 on validation "
               "beyond the interval: none of these causes explains the order.")
    return (pd.DataFrame(lines).to_markdown(index=False, disable_numparse=True)
            + "\n\nEach variant run at both K on the same images; the validation difference is paired image by "
              "image over the 10,000 held-out training images, [95% bootstrap interval]. " + verdict + "\n")
