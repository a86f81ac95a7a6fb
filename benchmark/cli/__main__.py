"""``python -m benchmark.cli``: what torchrun starts (``torchrun ... -m benchmark.cli train dcgan ...``)."""

from . import main

main()
