"""Progress bars for long work (decoding, extraction, fitting), on stderr."""

import os

from tqdm.auto import tqdm

from . import interrupts


class _Bar(tqdm):
    """A progress bar whose every step also stops the run on a Ctrl-C that was swallowed."""

    def __iter__(self):
        for item in super().__iter__():
            interrupts.check()
            yield item

    def update(self, n=1):
        interrupts.check()
        return super().update(n)


def bar(iterable=None, **kwargs):
    """A bar on stderr; under torchrun, rank 0's only."""
    kwargs.setdefault("mininterval", 1.0)
    if os.environ.get("RANK", "0") != "0":
        kwargs["disable"] = True
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return _Bar(iterable, **kwargs)


def chunks(n: int, size: int, desc: str | None = None, **kwargs):
    """Slices of ``range(n)`` of ``size`` items, with a bar counting items (not batches) when ``desc`` is given."""
    with bar(total=n, desc=desc, disable=desc is None, **kwargs) as progress:
        for start in range(0, n, size):
            stop = min(start + size, n)
            yield slice(start, stop)
            progress.update(stop - start)
