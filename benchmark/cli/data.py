"""``bench datasets`` and ``bench cache``: what data was found, what features are cached."""

from __future__ import annotations

import click

from ..core.errors import BenchError
from . import options
from .options import cli


@cli.command("datasets")
@options.data_dir
@options.cache_dir
def list_datasets(data_dir, cache_dir):
    """List each dataset, its splits and sizes, and where it was found (decodes image folders once)."""
    from ..data import datasets
    from ..data.cache import default_root

    for name in ("cifar10", "svhn", "svhn-extra"):
        try:
            source = datasets.find(name, data_dir, default_root(cache_dir))
            sizes = ", ".join(f"{split} {len(load(warn=options.log))}" for split, load in source.splits.items())
        except BenchError as exc:
            click.echo(f"{name:<11} not found: {exc}")
            continue
        click.echo(f"{name:<11} {sizes} | {source.variant} | {source.location}")


@cli.group()
def cache():
    """Inspect or clear the cache of features and decoded images."""


@cache.command("list")
@options.cache_dir
def cache_list(cache_dir):
    """Each cached feature file: encoder, dataset and split, rows x features, size, when it was made."""
    from ..data.cache import FeatureCache

    store = FeatureCache(cache_dir)
    entries = store.entries()
    for path, attrs in entries:
        size = path.stat().st_size / 1e6
        click.echo(f"{path.name}  {attrs.get('encoder', '?')}  {attrs.get('dataset', '?')}/{attrs.get('split', '?')}"
                   f"  {attrs.get('n_rows', '?')}x{attrs.get('dim', '?')}  {size:.0f} MB  {attrs.get('created', '')}")
    click.echo(f"{len(entries)} cached feature files in {store.root / 'features'}")


@cache.command("clear")
@options.cache_dir
@options.yes
def cache_clear(cache_dir, yes):
    """Delete every cached feature file and decoded image folder (asks first unless --yes)."""
    from ..data.cache import FeatureCache

    store = FeatureCache(cache_dir)
    files = store.files()
    if not files:
        click.echo(f"nothing to remove in {store.root}")
        return
    size = sum(p.stat().st_size for p in files) / 1e6
    if not yes:
        click.confirm(f"delete {len(files)} files ({size:,.0f} MB) from {store.root}?", abort=True, err=True)
    click.echo(f"removed {store.clear()} files ({size:,.0f} MB) from {store.root}")
