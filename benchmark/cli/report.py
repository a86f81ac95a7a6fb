"""``bench leaderboard``: tables and figures from the result rows."""

from __future__ import annotations

from pathlib import Path

import click

from ..report import results
from .options import cli, log


@cli.command()
@click.option("--results", "results_path", default=str(results.DEFAULT_PATH), show_default=True,
              type=click.Path(dir_okay=False), help="The result rows to tabulate.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "html"]), default="markdown",
              show_default=True, help="markdown rewrites the generated sections of --out; csv prints the best rows; "
                                      "html writes one standalone page with the figures inlined.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="File to write (markdown: BENCHMARKS.md; html: leaderboard.html; csv: standard output).")
def leaderboard(results_path, fmt, out):
    """Best row per dataset, protocol and encoder, beside the paper's published figures.

    Only rows on whole datasets count (a --limit run stays in the results file). Markdown
    rewrites every generated section of BENCHMARKS.md; figures go to figures/ beside the
    results file.
    """
    from ..core.files import write_text
    from ..report import leaderboard as lb

    if fmt == "markdown":
        out = Path(out or "BENCHMARKS.md")
        click.echo(lb.update_document(Path(results_path), out, warn=log))
        log(f"updated {out}")
        return
    text = lb.render(Path(results_path), fmt, warn=log)
    out = out or ("leaderboard.html" if fmt == "html" else None)
    if out:
        write_text(out, text)
        log(f"wrote {out}")
    else:
        click.echo(text, nl=False)


@cli.command("compare-data")
@click.option("--features", "spec", required=True, help="The encoder, spelled as its rows record it.")
@click.option("--probe", default="svm", show_default=True, type=click.Choice(["svm", "logreg", "knn"]),
              help="Which probe's rows to pair.")
@click.option("--a", "dataset_a", default="cifar10-lossless", show_default=True, help="First data variant.")
@click.option("--b", "dataset_b", default="cifar10-test1k", show_default=True,
              help="Second data variant: the same training and test images, as another copy.")
@click.option("--results", "results_path", default=str(results.DEFAULT_PATH), show_default=True,
              type=click.Path(dir_okay=False), help="The result rows (and predictions/ beside them).")
def compare_data(spec, probe, dataset_a, dataset_b, results_path):
    """What a data variant costs one encoder: its full-protocol rows on two copies of the same images, paired
    image by image on test and on validation (95% bootstrap intervals), from their stored predictions."""
    from ..report.pairs import penalty_lines

    for line in penalty_lines(Path(results_path), spec, probe, dataset_a, dataset_b, warn=log):
        click.echo(line)
