"""``bench leaderboard``: tables and figures from the result rows."""

from __future__ import annotations

from pathlib import Path

import click

from ..report import results
from .options import cli


@cli.command()
@click.option("--results", "results_path", default=str(results.DEFAULT_PATH), show_default=True,
              type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "html"]), default="markdown",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (markdown default: BENCHMARKS.md).")
def leaderboard(results_path, fmt, out):
    """Best row per dataset, protocol and encoder, beside the paper's published figures.

    Markdown rewrites the tables between the leaderboard markers of BENCHMARKS.md; figures
    go to figures/ beside the results file.
    """
    from ..core.files import write_text
    from ..report import leaderboard as lb

    if fmt == "markdown":
        out = Path(out or "BENCHMARKS.md")
        click.echo(lb.update_document(Path(results_path), out))
        click.echo(f"updated {out}", err=True)
        return
    text = lb.render(Path(results_path), fmt)
    if out:
        write_text(out, text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text)
