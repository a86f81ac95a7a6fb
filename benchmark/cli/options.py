"""What the commands share: the group they hang on, common options and the log line writer."""

from __future__ import annotations

import os

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bench")
def cli():
    """Evaluate image representations with a linear L2-SVM probe (DCGAN paper protocols)."""


def log(message: str) -> None:
    click.echo(message, err=True)


def data_options(f):
    f = click.option("--data-dir", envvar="BENCH_DATA_DIR", type=click.Path(file_okay=False),
                     help="Folder holding cifar10/, svhn/ (or set BENCH_DATA_DIR).")(f)
    f = click.option("--cache-dir", envvar="BENCH_CACHE_DIR", type=click.Path(file_okay=False),
                     help="Feature cache (default ~/.cache/bench, or BENCH_CACHE_DIR).")(f)
    f = click.option("--weights-dir", envvar="BENCH_WEIGHTS_DIR", type=click.Path(file_okay=False),
                     help="Folder searched for pretrained weights (or BENCH_WEIGHTS_DIR).")(f)
    return f


def export_weights_dir(weights_dir):
    if weights_dir:
        os.environ["BENCH_WEIGHTS_DIR"] = str(weights_dir)
