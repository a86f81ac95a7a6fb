"""Encoders: uint8 images in, float32 feature rows out.

``base.Encoder`` is the interface, ``registry`` resolves a spec string such as
``dcgan-imagenet:layers=1-4`` to one encoder (``build``), ``pretrained`` is the registry of
weights (released and trained here, each verified by hash), and one module per encoder
family. Imports ``training`` (to read checkpoints), ``models``, ``data`` and ``core``.

From a notebook::

    from benchmark.encoders import build
    encoder = build("dcgan-imagenet:layers=1-4")
"""

from .base import Encoder
from .registry import build

__all__ = ["Encoder", "build"]
