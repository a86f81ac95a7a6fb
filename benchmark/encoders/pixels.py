"""Raw pixels scaled to [-1, 1]: the sanity baseline every encoder must beat."""

import numpy as np

from .base import Encoder
from .options import declare


@declare()
class Pixels(Encoder):
    """Raw pixels scaled to [-1, 1], 3,072 features: the baseline every encoder must beat."""

    name = "pixels"

    @property
    def dim(self) -> int:
        return 32 * 32 * 3

    def transform(self, images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1).astype(np.float32) / 127.5) - 1.0
