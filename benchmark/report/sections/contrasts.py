"""Encoders against their controls: what training (or width, or depth) adds, under every probe and protocol."""

from __future__ import annotations

import pandas as pd

from ..document import Report, section
from ..rows import best_rows, delta

# (encoder, its control, what the difference measures); both on the JPEG copy's CIFAR-10
CONTRASTS = (
    ("dcgan-imagenet:layers=1-4", "dcgan-random:layers=1-4", "GAN training on ImageNet (released weights)"),
    ("dcgan-tinyimagenet", "dcgan-random", "GAN training on Tiny-ImageNet here, the paper's architecture"),
    ("dcgan-tinyimagenet-small", "dcgan-random:arch=small", "GAN training on Tiny-ImageNet here, a small DCGAN"),
    ("exemplar-cnn-small", "exemplar-cnn:weights=random", "Exemplar-CNN training here, the small network"),
    ("exemplar-cnn-tinyimagenet", "exemplar-cnn:net=64c5-128c5-256c5-512f,weights=random",
     "Exemplar-CNN training here, the published network"),
    ("dcgan-random", "dcgan-random:layers=1-4", "layers 5 and 6 of a random discriminator"),
    ("kmeans:k=4000", "kmeans", "4,000 k-means centroids against 1,600"),
    ("kmeans:k=4000,init=patches,empty=reseed", "kmeans:init=patches,empty=reseed",
     "4,000 k-means centroids against 1,600, at the first defaults"),
    ("kmeans", "kmeans:init=patches,empty=reseed", "the reference's k-means initialisation, K = 1,600"),
    ("kmeans:k=4000", "kmeans:k=4000,init=patches,empty=reseed", "the reference's k-means initialisation, K = 4,000"),
    ("dcgan-imagenet:layers=1-4", "pixels", "the released discriminator against raw pixels"),
)
PROTOCOLS = {"full": "all labels", "few": "400 per class"}


def _accuracy(row) -> str:
    std = row["test_acc_std"]
    return f"{row['test_acc']:.2f}" + ("" if pd.isna(std) else f" ± {std:.2f}")


@section("contrasts")
def contrasts(report: Report) -> str:
    """One line per contrast and probe: test accuracy of each side and the difference, per protocol."""
    rows = report.rows
    rows = best_rows(rows[(rows["dataset"] == "cifar10") & rows["certified"]])
    best = {(r.encoder, r.probe_kind, r.protocol): r for r in rows.itertuples(index=False)}
    lines = []
    for encoder, control, what in CONTRASTS:
        for probe in ("svm", "logreg", "knn"):
            cells = {}
            for protocol, words in PROTOCOLS.items():
                a, b = best.get((encoder, probe, protocol)), best.get((control, probe, protocol))
                if a is not None and b is not None:
                    a, b = a._asdict(), b._asdict()
                    cells[words] = f"{_accuracy(a)} / {_accuracy(b)} ({delta(a['test_acc'], b['test_acc'])})"
            if cells:
                lines.append({"what it measures": what, "encoder / control": f"`{encoder}` / `{control}`",
                              "probe": probe, **{w: cells.get(w, "") for w in PROTOCOLS.values()}})
    if not lines:
        return ""
    return (pd.DataFrame(lines).to_markdown(index=False, disable_numparse=True)
            + "\n\nTest accuracy (%) of the encoder / its control (difference in points), each the best certified "
              "(or exact) row on the JPEG copy; ± is the standard deviation over draws.\n")
