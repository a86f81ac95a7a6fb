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


def styles(n: int):
    """``n`` distinguishable (colour, line style, marker) triples: ten colours, then again dashed with squares..."""
    colours = plt.get_cmap("tab10").colors
    lines, markers = ("-", "--", ":", "-."), ("o", "s", "^", "D")
    return [(colours[i % 10], lines[(i // 10) % 4], markers[(i // 10) % 4]) for i in range(n)]


def labels_curve(rows: pd.DataFrame, dataset: str, path: Path, probe: str = "svm") -> Path | None:
    """Test accuracy against labelled images per class, one line per encoder, 95% intervals as error bars."""
    rows = rows[(rows.dataset == dataset) & rows.layer.fillna("").isin(["", "all"])].copy()
    full = (rows.protocol == "full") & rows.n_classes.notna()
    rows.loc[full, "per_class"] = rows.loc[full, "n_train"] / rows.loc[full, "n_classes"]  # the final fit: every image
    rows = rows[rows.protocol.isin(["full", "few"]) & rows.per_class.notna()]
    if rows.empty or rows.per_class.nunique() < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    encoders = sorted(rows.encoder.unique())
    for encoder, (colour, line, marker) in zip(encoders, styles(len(encoders))):
        group = rows[rows.encoder == encoder]
        best = group.sort_values(["certified", "val_acc", "time"]).groupby("per_class").tail(1).sort_values("per_class")
        ax.errorbar(best.per_class, best.test_acc, yerr=best.test_acc_ci95.fillna(0), color=colour, linestyle=line,
                    marker=marker, markersize=4, capsize=3, label=encoder)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}, {probe} probe: accuracy against labels\n(error bars: 95% interval of the mean over draws)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over the points
    return _save(fig, path)


def per_layer(rows: pd.DataFrame, dataset: str, path: Path, probe: str = "svm") -> Path | None:
    """Test accuracy of a probe on each layer's features alone, one line per encoder."""
    rows = rows[(rows.dataset == dataset) & rows.layer.fillna("").str.fullmatch(r"\d+")]
    if rows.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    series = list(rows.groupby(["encoder", "protocol", "scale"]))
    for ((encoder, protocol, scale), group), (colour, line, marker) in zip(series, styles(len(series))):
        group = group.assign(layer_no=group.layer.astype(int))
        best = group.sort_values("time").groupby("layer_no").tail(1).sort_values("layer_no")
        features = "standardised" if scale == "standard" else "raw"
        ax.plot(best.layer_no, best.test_acc, color=colour, linestyle=line, marker=marker,
                label=f"{encoder} ({protocol}, {features} features)")
    ax.set_xlabel("layer")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}: {probe} probe on one layer's features alone")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over the points
    return _save(fig, path)


def scale_curve(rows: pd.DataFrame, path: Path) -> Path | None:
    """Seconds of a probe against its training rows, log-log, one line per (width, placement, processes)."""
    if rows.rows.nunique() < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    series = list(rows.groupby(["width", "placement", "processes"]))
    for ((width, placement, processes), group), (colour, line, marker) in zip(series, styles(len(series))):
        group = group.sort_values("rows")
        ax.plot(group.rows, group.seconds, color=colour, linestyle=line, marker=marker,
                label=f"width {width}, {placement}, {processes} process{'es' if processes > 1 else ''}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training rows")
    ax.set_ylabel("seconds (fit, validation, refit, test)")
    ax.set_title("SVM probe on synthetic float16 features: time against rows")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)
