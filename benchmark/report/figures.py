"""Figures for the leaderboard (matplotlib, PNG): accuracy against labels, and per layer."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..core.files import atomic_write  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def labels_curve(rows: pd.DataFrame, dataset: str, path: Path, probe: str = "svm") -> Path | None:
    """Test accuracy against labelled images per class, one line per encoder, 95% bands."""
    rows = rows[(rows.dataset == dataset) & rows.layer.fillna("").isin(["", "all"])].copy()
    n_classes = 10
    full = rows.protocol == "full"
    rows.loc[full, "per_class"] = rows.loc[full, "n_train"] / n_classes  # the final fit uses every training image
    rows = rows[rows.protocol.isin(["full", "few"]) & rows.per_class.notna()]
    if rows.empty or rows.per_class.nunique() < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for encoder, group in rows.groupby("encoder"):
        best = group.sort_values(["certified", "val_acc", "time"]).groupby("per_class").tail(1).sort_values("per_class")
        ci = best.test_acc_ci95.fillna(0)
        ax.plot(best.per_class, best.test_acc, marker="o", label=encoder)
        ax.fill_between(best.per_class, best.test_acc - ci, best.test_acc + ci, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}, {probe} probe: accuracy against labels (bands: 95% interval over draws)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over the points
    return _save(fig, path)


def per_layer(rows: pd.DataFrame, dataset: str, path: Path, probe: str = "svm") -> Path | None:
    """Test accuracy of a probe on each layer's features alone, one line per encoder."""
    rows = rows[(rows.dataset == dataset) & rows.layer.fillna("").str.fullmatch(r"\d+")]
    if rows.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (encoder, protocol), group in rows.groupby(["encoder", "protocol"]):
        group = group.assign(layer_no=group.layer.astype(int))
        best = group.sort_values("time").groupby("layer_no").tail(1).sort_values("layer_no")
        ax.plot(best.layer_no, best.test_acc, marker="o", label=f"{encoder} ({protocol})")
    ax.set_xlabel("layer")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}: {probe} probe on one layer's features")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over the points
    return _save(fig, path)
