"""``bench leaderboard``: tables and figures from the result rows."""

from __future__ import annotations

from pathlib import Path

import click

from . import options
from .options import cli, log


@cli.command()
@options.results("The result rows to tabulate.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "html"]), default="markdown",
              show_default=True, help="markdown rewrites the generated sections of --out; csv prints the best rows; "
                                      "html writes one standalone page with the figures inlined.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="File to write (markdown: leaderboard.md, html: leaderboard.html, both beside the results file; "
                   "csv: standard output). The project's BENCHMARKS.md: --results results/runs.csv --out BENCHMARKS.md.")
def leaderboard(results_path, fmt, out):
    """Best row per dataset, protocol and encoder, beside the paper's published figures.

    Only rows on whole datasets count (a --limit run stays in the results file). Markdown
    rewrites every generated section of BENCHMARKS.md; figures go to figures/ beside the
    results file.
    """
    from ..core.files import write_text
    from ..report import document
    from ..report.sections import leaderboard as board

    if fmt == "markdown":
        out = Path(out or Path(results_path).parent / "leaderboard.md")
        click.echo(document.update(Path(results_path), out, warn=log))
        log(f"updated {out}")
        return
    text = board.render(document.Report(Path(results_path), Path(out or "."), log), fmt)
    out = out or (Path(results_path).parent / "leaderboard.html" if fmt == "html" else None)
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
@options.results("The result rows (and predictions/ beside them).")
def compare_data(spec, probe, dataset_a, dataset_b, results_path):
    """What a data variant costs one encoder: its full-protocol rows on two copies of the same images, paired
    image by image on test and on validation (95% bootstrap intervals), from their stored predictions."""
    from ..report.pairs import penalty_lines

    for line in penalty_lines(Path(results_path), spec, probe, dataset_a, dataset_b, warn=log):
        click.echo(line)


@cli.command()
@click.argument("sections", nargs=-1)
@click.option("--list", "list_sections", is_flag=True, help="Show the sections and their commands; run nothing.")
def record(sections, list_sections):
    """Run SECTIONS of the project's run list (results/runs.txt in a checkout) into the project's record.

    Only these commands write results/ and BENCHMARKS.md: each runs from the checkout's root with
    BENCH_RESULTS=results/runs.csv. Your own runs go to your own results file.
    """
    from ..pipeline import record as run_list

    if list_sections:
        for section in run_list.sections().values():
            click.echo(f"{section.name}: {section.title}")
            for command in section.commands:
                click.echo(f"    {command}")
        return
    count = run_list.record(list(sections), log=log)
    click.echo(f"ran {count} commands of {', '.join(sections)}")


@cli.command()
@options.device
@options.cache_dir
@click.option("--out", type=click.Path(dir_okay=False),
              help="Where to store them (default: limits.json beside the default results file).")
def limits(device, cache_dir, out):
    """Measure this machine's peaks once: matrix products (float32, bfloat16), memory bandwidth, reading the
    cache's feature files. The timings table sets every stage's work against them."""
    from ..core.devices import resolve_device
    from ..data.cache import default_root
    from ..pipeline.limits import measure
    from ..report.limits import LIMITS
    from ..report.results import default_path

    out = Path(out) if out else default_path().parent / LIMITS
    found = measure(resolve_device(device), default_root(cache_dir), out, log=log)
    click.echo(f"{found['machine']['device']}, {found['machine']['cpu']}, {found['machine']['cores']} cores, "
               f"{found['machine']['memory_gb']} GB (1-minute load {found['load_1min']})")
    for name, value in found["peaks"].items():
        click.echo(f"  {name:<24} {value:>10,.1f}")
    click.echo(f"stored in {out}")
