"""The ``bench`` command group with every command registered (each module adds its own)."""

from . import data, models, report, run, train  # noqa: F401
from .options import cli

__all__ = ["cli"]
