"""``bench datasets`` and ``bench cache``: what data was found, what features are cached."""

from __future__ import annotations

import click

from ..core.errors import BenchError
from .options import cli, data_options


@cli.command("datasets")
@data_options
def list_datasets(data_dir, cache_dir, weights_dir):
    """List each dataset, its splits and sizes, and where it was found."""
    from ..data import datasets
    from ..data.cache import default_root

    for name in ("cifar10", "svhn", "svhn-extra"):
        try:
            source = datasets.find(name, data_dir, default_root(cache_dir))
        except BenchError as exc:
            click.echo(f"{name:<11} not found: {exc}")
            continue
        sizes = ", ".join(f"{split} {len(load())}" for split, load in source.splits.items())
        click.echo(f"{name:<11} {sizes} | {source.variant} | {source.location}")


@cli.group()
def cache():
    """Inspect or clear the feature cache."""


@cache.command("list")
@click.option("--cache-dir", envvar="BENCH_CACHE_DIR", type=click.Path(file_okay=False))
def cache_list(cache_dir):
    from ..data.cache import FeatureCache

    store = FeatureCache(cache_dir)
    entries = store.entries()
    for path, attrs in entries:
        size = path.stat().st_size / 1e6
        click.echo(f"{path.name}  {attrs.get('encoder', '?')}  {attrs.get('dataset', '?')}/{attrs.get('split', '?')}"
                   f"  {attrs.get('n_rows', '?')}x{attrs.get('dim', '?')}  {size:.0f} MB  {attrs.get('created', '')}")
    click.echo(f"{len(entries)} cached feature files in {store.root / 'features'}")


@cache.command("clear")
@click.option("--cache-dir", envvar="BENCH_CACHE_DIR", type=click.Path(file_okay=False))
def cache_clear(cache_dir):
    from ..data.cache import FeatureCache

    store = FeatureCache(cache_dir)
    click.echo(f"removed {store.clear()} files from {store.root}")
