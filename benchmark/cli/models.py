"""``bench encoders``, ``bench pretrained``, ``bench samples``: the encoders and their weights."""

from __future__ import annotations

import click

from ..core.errors import BenchError
from . import options
from .options import cli, export_weights_dir, log


@cli.command("encoders")
@click.option("--verbose", "-v", is_flag=True, help="Also list each encoder's options: type, default and meaning.")
@click.option("--layers", "layers_of", metavar="SPEC",
              help="List what layers= can name for this encoder (torchvision graph nodes, timm indices, DCGAN layers).")
def list_encoders(verbose, layers_of):
    """List every encoder name with a line each (built-ins, the project's trained models, installed plug-ins)."""
    from ..encoders import registry

    if layers_of:
        encoder = registry.build(layers_of)
        names = encoder.available_layers() if hasattr(encoder, "available_layers") else list(encoder.layers() or {})
        if not names:
            raise BenchError(f"encoder {layers_of!r} has no layers to choose from")
        for name in names:
            click.echo(name)
        return

    for name, factory in registry.available().items():
        click.echo(f"{name:<26} {registry.describe(factory)}")
        if verbose:
            for option in registry.options_of(factory):
                click.echo(f"    {option.line()}")


@cli.group("pretrained")
def pretrained_group():
    """The registry of pretrained encoders: the paper's released weights and the models trained here."""


@pretrained_group.command("list")
@options.weights_dir
def pretrained_list(weights_dir):
    """Each model, what it is (paper figures or training budget) and which of its files are present and verified."""
    from ..encoders import pretrained

    export_weights_dir(weights_dir)
    damaged = []
    for entry in pretrained.manifest().values():
        states = pretrained.status(entry)
        counts = {s: sum(1 for _, x in states if x == s) for s in ("verified", "missing", "BAD HASH")}
        click.echo(f"{entry.name}: {entry.meta['title']}")
        click.echo(f"  {pretrained.provenance(entry)}")
        click.echo("  files: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        if counts["missing"]:
            click.echo("  looked in: " + ", ".join(str(d) for d in pretrained.search_dirs(entry)))
        for f, state in states:
            if state != "verified":
                click.echo(f"    {state:<8} {f.name} ({f.role})")
            if state == "BAD HASH":
                damaged.append((entry, pretrained.locate(entry, f)))
    if damaged:
        entry, path = damaged[0]
        raise BenchError(f"{len(damaged)} weight {'file fails its' if len(damaged) == 1 else 'files fail their'} "
                         f"hash (first: {path}); delete {'it' if len(damaged) == 1 else 'them'} and run "
                         f"`bench pretrained fetch {entry.name}`")


@pretrained_group.command("export")
@click.argument("run", type=click.Path(exists=True))
@click.option("--name", required=True, help="Registry name, e.g. dcgan-tinyimagenet-small; becomes an encoder name.")
@click.option("--title", required=True, help="One line: what was trained on what.")
@click.option("--half", is_flag=True, help="Store the weights in float16 (half the size; say so in the title).")
def pretrained_export(run, name, title, half):
    """Add a `bench train` run's encoder weights (no optimiser state) to pretrained/."""
    from ..encoders import pretrained

    entry = pretrained.export_run(run, name, title, half=half)
    click.echo(f"wrote {pretrained.PROJECT_DIR / entry.folder / 'weights.npz'} and the [{name}] entry of "
               f"{pretrained.MANIFEST}; evaluate with --features {name}")


@pretrained_group.command("fetch")
@click.argument("name")
@options.weights_dir
def pretrained_fetch(name, weights_dir):
    """Download NAME's missing files (into --weights-dir, else the cache) and verify them."""
    from ..encoders import pretrained

    export_weights_dir(weights_dir)
    count = pretrained.fetch(pretrained.entry(name), weights_dir, progress=log)
    click.echo(f"{name}: {count} files fetched; all files present and verified")


@cli.command()
@click.argument("model", type=click.Choice(["dcgan-svhn"]))
@click.option("--out", default="samples.png", show_default=True, type=click.Path(dir_okay=False),
              help="PNG file the 8x8 grid is written to.")
@options.seed("Seeds the 64 latent vectors.")
@options.weights_dir
def samples(model, out, seed, weights_dir):
    """Render an 8x8 grid from a released generator (checks the port's kernel orientation)."""
    from ..encoders.dcgan import load_released_generator
    from ..training import samples as grids

    export_weights_dir(weights_dir)
    images = grids.generate(load_released_generator(model), 64, seed)
    click.echo(f"wrote {grids.save_grid(grids.to_uint8(images), out)}")
