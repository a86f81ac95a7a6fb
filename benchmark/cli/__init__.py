"""The ``bench`` command line: thin click commands, one module per command group.

Commands parse and check options, call the pipeline, probe, report, training or encoder
layers, and print. They hold no logic of their own; this is the top layer, which may
import every other.
"""

from __future__ import annotations

import os
import sys

import click

from ..core import interrupts
from ..core.errors import BenchError, NativeWriteFailed

# OpenMP threads (torch's libgomp) that finish a parallel region spin up to 300,000 times before sleeping; on a
# machine whose cores are busy with other work the spinning starves it (a probe fit ran 20x slower beside one
# other process). 1,000 is libgomp's own count when threads outnumber cores; on a quiet machine no slower within
# the noise (k-means extraction, the SVM). Set before torch loads; a value the user set is kept.
SPIN_COUNT = "1000"
# Tensors of 2 MB and more in 2 MB pages (PyTorch's allocator asks the kernel for them where transparent huge pages
# are set to madvise). Reading rows at random (kNN re-scoring, CG over the shrunk rows) costs a page-table walk per
# 4 KB page otherwise: on a VM, gathering random 49 KB rows ran at 2.3 GB/s against 14 with large pages.
HUGE_PAGES = "1"


def main():
    """The ``bench`` script. Commands are imported here, inside the handlers, so that Ctrl-C
    while torch loads is one line too."""
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", HUGE_PAGES)
    interrupts.install()  # Ctrl-C checkpoints and stops, even if started ignoring it or swallowed on its way
    try:
        from .commands import cli

        cli.main(standalone_mode=False)
    except (BenchError, FloatingPointError) as exc:  # FloatingPointError: the probe's solver diverged
        click.echo(f"error: {exc}", err=True)
        if isinstance(exc, NativeWriteFailed):  # HDF5 would crash at exit flushing its half-closed file
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        cause = exc.__cause__
        if isinstance(exc, KeyboardInterrupt) or interrupts.received() or not isinstance(cause, EOFError):
            click.echo("interrupted", err=True)
            sys.exit(130)
        # click turns every EOFError into Abort: a prompt with standard input closed, or data that ended early
        click.echo(f"error: input ended early (EOFError: {cause}); a prompt needs an answer (or --yes), "
                   "and a damaged file needs replacing", err=True)
        sys.exit(2)
    except OSError as exc:  # the environment, met outside the writers that name their file (a library's temporary)
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror or exc} (a full disk, or a folder that cannot be written?)", err=True)
        sys.exit(2)
    except click.UsageError as exc:  # a bad option or argument: one line, like every other error
        where = f"; see `{exc.ctx.command_path} --help`" if exc.ctx else ""
        click.echo(f"error: {exc.format_message().rstrip('.')}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
