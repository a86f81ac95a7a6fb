"""The ``bench`` command line: thin click commands, one module per command group.

Commands parse and check options, call the pipeline, probe, report, training or encoder
layers, and print. They hold no logic of their own; this is the top layer, which may
import every other.
"""

from __future__ import annotations

import signal
import sys

import click

from ..core.errors import BenchError
from . import data, models, report, run, train  # noqa: F401  (each registers its commands on ``cli``)
from .options import cli


def main():
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C checkpoints, even if started ignoring it
    try:
        cli.main(standalone_mode=False)
    except (BenchError, FloatingPointError) as exc:  # FloatingPointError: the probe's solver diverged
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
