"""Progress bars for long work (decoding, extraction, fitting), on stderr."""

from tqdm.auto import tqdm


def bar(iterable=None, **kwargs):
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)
