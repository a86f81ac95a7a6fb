"""What a data variant costs an encoder: the same encoder and probe on two copies of the same images.

``cifar10-lossless`` and ``cifar10-test1k`` hold the same 50,000 training images (so the same
validation split and draws) and the same 1,000 test images, as original pixels and as the
JPEG copy. Full-protocol rows store which test and validation images their probe got right
(``results/predictions/``), so the two copies are paired image by image without fitting
again: the test difference over the 1,000 test images, and the validation difference at each
row's chosen C over the 10,000 held-out training images (the tighter estimate), each with a
95% paired-bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import BenchError
from ..probe.compare import Comparison, paired_images
from . import results
from .rows import load_rows, whole_dataset

LOSSLESS, JPEG = "cifar10-lossless", "cifar10-test1k"


@dataclass
class DataPair:
    encoder: str
    probe: str
    test: Comparison  # A - B over the shared test images
    val: Comparison  # A - B over the shared validation images, at each row's chosen setting
    rows: tuple[pd.Series, pd.Series]

    def lines(self, a: str, b: str) -> list[str]:
        lo, hi = self.val.ci95
        return [f"{self.encoder} ({self.probe} probe), A={a} B={b}",
                *self.test.lines("A", "B")[:2],
                f"validation ({int(self.rows[0]['val_size'])} images, each at its own chosen "
                f"setting): A {self.val.acc_a:.2f}%  B {self.val.acc_b:.2f}%  difference {self.val.diff:+.2f}, "
                f"95% interval [{lo:+.2f}, {hi:+.2f}]"]


def latest_full_row(rows: pd.DataFrame, dataset: str, encoder: str, probe: str) -> pd.Series | None:
    """The newest full-protocol row of (dataset, encoder, probe) that stored its predictions."""
    match = rows[(rows.dataset == dataset) & (rows.encoder == encoder) & (rows.probe_kind == probe)
                 & (rows.protocol == "full") & rows.predictions.notna() & rows.layer.isin(["", "all"])]
    return match.sort_values("time").iloc[-1] if len(match) else None


def pair(rows: pd.DataFrame, results_path, encoder: str, probe: str = "svm", a: str = LOSSLESS,
         b: str = JPEG, seed: int = 0) -> DataPair:
    """The paired comparison of ``encoder`` on datasets ``a`` and ``b``; one line if a row is missing."""
    found = [latest_full_row(rows, d, encoder, probe) for d in (a, b)]
    for dataset, row in zip((a, b), found):
        if row is None:
            raise BenchError(f"no full-protocol {probe} row of {encoder} on {dataset} with stored predictions in "
                             f"{results_path}; run `bench run {dataset} --features {encoder} --probe {probe}` first")
    ra, rb = found
    if (ra.seed, ra.val_size, ra.n_train, ra.n_test) != (rb.seed, rb.val_size, rb.n_train, rb.n_test):
        raise BenchError(f"{encoder}: the rows on {a} and {b} differ in seed, validation size or split sizes; "
                         "rerun both with the same options")
    pa, pb = (results.load_predictions(results_path, r.predictions) for r in found)
    if any(len(pa[k]) != len(pb[k]) for k in ("test_correct", "val_correct")):
        raise BenchError(f"{encoder}: the stored predictions on {a} and {b} cover different images; rerun both")
    return DataPair(encoder, probe, paired_images(pa["test_correct"], pb["test_correct"], seed),
                    paired_images(pa["val_correct"], pb["val_correct"], seed), (ra, rb))


def penalty_table(rows: pd.DataFrame, results_path) -> str:
    """Markdown: per encoder and probe with rows on both copies, lossless minus JPEG on test and validation."""
    have = rows[(rows.protocol == "full") & rows.predictions.notna() & rows.dataset.isin([LOSSLESS, JPEG])]
    both = have.groupby(["encoder", "probe_kind"]).dataset.nunique()
    pairs = [pair(rows, results_path, encoder, probe) for (encoder, probe), n in both.items() if n == 2]
    if not pairs:
        return ""
    few = rows[(rows.protocol == "few") & rows.dataset.isin([LOSSLESS, JPEG])]

    def interval(c: Comparison) -> str:
        return f"{c.diff:+.2f} [{c.ci95[0]:+.2f}, {c.ci95[1]:+.2f}]"

    def few_difference(encoder, probe) -> str:
        latest = [few[(few.dataset == d) & (few.encoder == encoder) & (few.probe_kind == probe)
                      & (few.per_class == 400)].sort_values("time").tail(1) for d in (LOSSLESS, JPEG)]
        if any(r.empty for r in latest):
            return ""
        (la, ca), (lb, cb) = ((r.test_acc.iloc[0], r.test_acc_ci95.iloc[0]) for r in latest)
        half = float(np.hypot(ca, cb))
        return f"{la - lb:+.2f} [{la - lb - half:+.2f}, {la - lb + half:+.2f}]"

    pairs.sort(key=lambda p: (p.probe != "svm", p.probe, -p.val.diff))
    table = pd.DataFrame({
        "encoder": [f"`{p.encoder}`" for p in pairs],
        "probe": [p.probe for p in pairs],
        "val lossless / JPEG %": [f"{p.val.acc_a:.2f} / {p.val.acc_b:.2f}" for p in pairs],
        "penalty on 10,000 val (points)": [interval(p.val) for p in pairs],
        "test lossless / JPEG %": [f"{p.test.acc_a:.2f} / {p.test.acc_b:.2f}" for p in pairs],
        "penalty on 1,000 test (points)": [interval(p.test) for p in pairs],
        "few (400/class) penalty on test": [few_difference(p.encoder, p.probe) for p in pairs],
    })
    if not any(table["few (400/class) penalty on test"]):
        table = table.drop(columns="few (400/class) penalty on test")
    return (table.to_markdown(index=False, disable_numparse=True) + "\n\nPenalty = lossless minus JPEG copy, "
            "same encoder, probe, training images, validation split and test images; [95% paired bootstrap "
            "interval] over the images (validation: each row at its own chosen C; few: the two rows' t-intervals "
            "combined, unpaired, so wider than a paired one). Generated from the rows' stored predictions.\n")


def penalty_lines(results_path: Path, encoder: str, probe: str, a: str, b: str, warn=print) -> list[str]:
    """`bench compare-data`: the paired lines for one encoder and probe."""
    rows = whole_dataset(load_rows(results_path, warn))
    return pair(rows, results_path, encoder, probe, a, b).lines(a, b)
