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
