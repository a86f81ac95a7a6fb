"""The encoder interface: uint8 image batches in, float32 feature rows out."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch



class Encoder:
    """Base class for feature extractors.

    Subclasses set ``name``, implement ``config`` (every setting that changes the output),
    ``dim`` and ``transform``; those that learn from unlabeled training images set
    ``needs_fit`` and implement ``fit``, ``state`` and ``load_state`` so that the fitted
    state can be stored beside the cached features and restored without refitting.

    ``version`` enters the fingerprint: bump it whenever a change to the code changes the
    features, so that no cache file made by the old code is reused.
    """

    name: str = ""
    version: int = 1
    needs_fit: bool = False
    fit_distributed: bool = False  # fit() shares its work over torchrun ranks itself (else rank 0 fits alone)
    probe_scale: str = "standard"  # how the probe scales these features unless told: "standard" or "none"

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


def to_unit_range(images: np.ndarray, device) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1], the scaling of the DCGAN code (x / 127.5 - 1)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


