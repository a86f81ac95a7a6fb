"""One split of a dataset: uint8 images (N, 32, 32, 3) and int64 labels, what every encoder reads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """One split of a dataset, ready for an encoder."""

    images: np.ndarray  # uint8, (N, 32, 32, 3)
    labels: np.ndarray  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """Content hash: cached features are tied to exactly these pixels and labels."""
        h = hashlib.sha1(np.ascontiguousarray(self.images).data)
        h.update(np.ascontiguousarray(self.labels).data)
        return h.hexdigest()[:16]

    def subset(self, index: np.ndarray) -> "Split":
        return Split(self.images[index], self.labels[index])
