"""What the commands share: the group they hang on, common options and the log line writer.

Every option is declared once here when more than one command takes it, with its type,
range and help, so the same name means the same thing everywhere and bad values stop at
the command line in one line.
"""

from __future__ import annotations

import os
import sys

import click

from ..core import provenance


class _Bench(click.Group):
    """The command group; it remembers the arguments it was given, which result rows record as their command."""

    def main(self, args=None, *rest, **kwargs):
        provenance.remember(sys.argv[1:] if args is None else list(args))
        return super().main(args, *rest, **kwargs)


@click.group(cls=_Bench, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bench")
def cli():
    """Evaluate image representations: the paper's L2-SVM, logistic regression and kNN probes."""


def log(message: str) -> None:
    click.echo(message, err=True)


def stack(*decorators):
    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


data_dir = click.option("--data-dir", envvar="BENCH_DATA_DIR", type=click.Path(file_okay=False),
                        help="Folder holding cifar10/ and svhn/ (or set BENCH_DATA_DIR).")
cache_dir = click.option("--cache-dir", envvar="BENCH_CACHE_DIR", type=click.Path(file_okay=False),
                         help="Feature and decoded-image cache (default ~/.cache/bench, or set BENCH_CACHE_DIR).")
weights_dir = click.option("--weights-dir", envvar="BENCH_WEIGHTS_DIR", type=click.Path(file_okay=False),
                           help="Folder holding the paper's released weights, e.g. ../shared/pretrained/dcgan_code "
                                "(or set BENCH_WEIGHTS_DIR).")
strict = click.option("--strict", is_flag=True,
                      help="Refuse image-folder images that are not already 32x32 RGB (by default they are "
                           "converted and counted in one line).")
data_options = stack(data_dir, cache_dir, weights_dir)
device = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                      help="Where encoders and the probe run; auto picks CUDA when PyTorch sees a GPU.")
batch_size = click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1),
                          help="Images per encoder call while extracting features.")
limit = click.option("--limit", type=click.IntRange(min=1),
                     help="Use a seeded random subset of N images per split, for a quick look (rows say so and "
                          "stay out of the leaderboard).")
val_size = click.option("--val-size", default=10_000, show_default=True, type=click.IntRange(min=10),
                        help="Validation images carved from the training set to choose C (at most a fifth of it).")
per_class = click.option("--per-class", default=400, show_default=True, type=click.IntRange(min=1),
                         help="Labelled images per class in each draw of the few protocol.")
draws = click.option("--draws", default=10, show_default=True, type=click.IntRange(min=2),
                     help="Random draws of the few protocol (at least 2, for an interval).")
scale = click.option("--scale", type=click.Choice(["standard", "coates", "none"]),
                     help="standard: per-feature mean and deviation of the fitting rows; coates: deviation as "
                          "sqrt(variance + 0.01), Coates & Ng's code; none: raw features. "
                          "Default: the encoder's own (none for DCGAN discriminators, as the original code; "
                          "else standard).")
class MemorySize(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        from ..core.errors import BenchError
        from ..core.memory import parse_size

        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except BenchError as exc:
            self.fail(str(exc), param, ctx)


memory = click.option("--memory", type=MemorySize(), default=None,
                      help="Memory the probe may hold the training features in, e.g. 4GB or 500MB (default: 60% of "
                           "the available memory). Past it the probe reads them from the cache file block by block "
                           "each pass: same C, gaps and accuracy, only slower.")


def results(help_text: str, exists: bool = False):
    """``--results``: a results file, the user's own by default (``BENCH_RESULTS``, else their data folder)."""
    from ..report.results import DEFAULT_SHOWN, default_path

    return click.option("--results", "results_path", default=lambda: str(default_path()),
                        show_default=DEFAULT_SHOWN, type=click.Path(dir_okay=False, exists=exists), help=help_text)


def beside_results(name: str, help_text: str):
    """``--out`` for a command's own CSV: NAME beside the default results file."""
    from ..report.results import default_path

    return click.option("--out", default=lambda: str(default_path().parent / name),
                        show_default=f"{name} beside the default results file", type=click.Path(dir_okay=False),
                        help=help_text)


yes = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")


def seed(help_text: str):
    return click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help=help_text)


def export_weights_dir(weights_dir):
    if weights_dir:
        os.environ["BENCH_WEIGHTS_DIR"] = str(weights_dir)
