"""Progress bars for long work (decoding, extraction, fitting), on stderr."""

from tqdm.auto import tqdm


def bar(iterable=None, **kwargs):
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)


def chunks(n: int, size: int, desc: str | None = None, **kwargs):
    """Slices of ``range(n)`` of ``size`` items, with a bar counting items (not batches) when ``desc`` is given."""
    with bar(total=n, desc=desc, disable=desc is None, **kwargs) as progress:
        for start in range(0, n, size):
            stop = min(start + size, n)
            yield slice(start, stop)
            progress.update(stop - start)
