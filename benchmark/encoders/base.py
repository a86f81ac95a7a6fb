"""The encoder interface: uint8 image batches in, float32 feature rows out."""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np
import torch

from ..core.errors import InputError


class Encoder:
    """Base class for feature extractors.

    Subclasses set ``name``, implement ``config`` (every setting that changes the output),
    ``dim`` and ``transform``; those that learn from unlabeled training images set
    ``needs_fit`` and implement ``fit``, ``state`` and ``load_state`` so that the fitted
    state can be stored beside the cached features and restored without refitting.

    ``version`` enters the fingerprint: bump it whenever a change to the code changes the
    features, so that no cache file made by the old code is reused.

    Every subclass's ``fit`` and ``transform`` first check what they are given (``check_images``):
    uint8 (N, H, W, 3) images of ``input_size`` pixels (None: any size, which the encoder resizes),
    and for an encoder that ``needs_fit``, a fit (or ``load_state``) before the first transform.
    A wrong input is one ``InputError`` saying what to do, never features of the wrong thing.
    """

    name: str = ""
    version: int = 1
    needs_fit: bool = False
    fit_distributed: bool = False  # fit() shares its work over torchrun ranks itself (else rank 0 fits alone)
    probe_scale: str = "standard"  # how the probe scales these features unless told: "standard" or "none"
    input_size: int | None = 32  # the square images it takes (None: any, resized by the encoder itself)
    notice: str = ""  # one line a run says after building it (a checkpoint's head not loaded, say)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, wrap in (("fit", _checked_fit), ("transform", _checked_transform),
                           ("load_state", _marks_fitted)):
            if name in cls.__dict__:
                setattr(cls, name, wrap(cls.__dict__[name]))

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.spec = self.name

    # --- identity
    def config(self) -> dict:
        return {}

    def weights_digest(self) -> str:
        """Hash of any weights the encoder loads; part of the fingerprint."""
        return ""

    def fingerprint(self) -> str:
        """Changes whenever the features could change (before any fit on data)."""
        blob = json.dumps({"name": self.name, "version": self.version, "config": self.config(),
                           "weights": self.weights_digest()}, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    # --- shape
    @property
    def dim(self) -> int:
        raise NotImplementedError

    def layers(self) -> dict[str, slice] | None:
        """Column ranges of each layer's features, for encoders that have layers."""
        return None

    # --- work
    def to(self, device: torch.device | str) -> "Encoder":
        self.device = torch.device(device)
        return self

    def fit(self, images: np.ndarray, batch_size: int = 256) -> "Encoder":
        return self

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        pass

    def transform(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # --- work, for the timings table's fraction of the machine's peak
    def fit_sample(self, n_train: int) -> int:
        """How many of n_train training images the fit looks at (a sample, for some encoders)."""
        return n_train if self.needs_fit else 0

    def flops(self, n_train: int) -> tuple[float, float]:
        """(floating-point operations of the fit on n_train training images, of ``transform`` per image):
        matrix products and convolutions, counted by torch's FlopCounterMode on a copy fitted on a few images
        (encoders whose work runs compiled count it from their shapes instead)."""
        import copy

        from torch.utils.flop_counter import FlopCounterMode

        size = self.input_size or 32
        images = np.random.default_rng(0).integers(0, 256, (4, size, size, 3), dtype=np.uint8)
        probe = copy.deepcopy(self)
        with FlopCounterMode(display=False) as counter:
            if self.needs_fit:
                probe.fit(images, batch_size=4)
        fit = counter.get_total_flops() / len(images) * self.fit_sample(n_train)
        with FlopCounterMode(display=False) as counter:
            probe.transform(images[:2])
        return fit, counter.get_total_flops() / 2


def to_unit_range(images: np.ndarray, device) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1], the scaling of the DCGAN code (x / 127.5 - 1)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)




def check_images(images, size: int | None, who: str) -> None:
    """uint8 (N, H, W, 3) images, ``size`` x ``size`` unless None; anything else one InputError naming the fix."""
    if torch.is_tensor(images) or not isinstance(images, np.ndarray):
        raise InputError(f"{who}: expects a numpy uint8 array (N, H, W, 3), got {type(images).__name__}; "
                         "pass images.cpu().numpy() for a tensor")
    shape = tuple(images.shape)
    if images.ndim != 4 or shape[-1] != 3:
        hint = ("channels first: pass images.transpose(0, 2, 3, 1)" if images.ndim == 4 and shape[1] == 3
                else "one image needs images[None]" if images.ndim == 3 else "RGB images, channels last")
        raise InputError(f"{who}: expects images of shape (N, H, W, 3), got {shape}; {hint}")
    if images.dtype != np.uint8:
        scaled = images.dtype.kind == "f" and images.size and 0.0 <= float(images.min()) and float(images.max()) <= 1.0
        hint = ("values in [0, 1]: pass (images * 255).round().astype(np.uint8)" if scaled
                else "pass images.astype(np.uint8) if they are 0..255")
        raise InputError(f"{who}: expects uint8 pixels 0..255, got {images.dtype}; {hint}")
    if size is not None and shape[1:3] != (size, size):
        raise InputError(f"{who}: expects {size}x{size} images, got {shape[2]}x{shape[1]}; resize them first "
                         "(bench's datasets are decoded to 32x32, with an area filter)")


def _checked_fit(fit):
    @functools.wraps(fit)
    def checked(self, images, *args, **kwargs):
        check_images(images, self.input_size, f"{type(self).__name__}.fit")
        out = fit(self, images, *args, **kwargs)
        self._fitted = True
        return out

    return checked


def _checked_transform(transform):
    @functools.wraps(transform)
    def checked(self, images, *args, **kwargs):
        who = f"{type(self).__name__}.transform"
        if self.needs_fit and not getattr(self, "_fitted", False):
            raise InputError(f"{who}: {self.spec} learns from training images; call fit(train_images) first (or "
                             "load_state(state) from a fitted copy)")
        check_images(images, self.input_size, who)
        return transform(self, images, *args, **kwargs)

    return checked


def _marks_fitted(load_state):
    @functools.wraps(load_state)
    def marked(self, state, *args, **kwargs):
        out = load_state(self, state, *args, **kwargs)
        self._fitted = True
        return out

    return marked
