"""Exemplar-CNN's random transformations (Dosovitskiy et al. 2014), batched on any device.

Each draw of a patch composes: translation (up to 0.2 of the patch size per axis), scaling
(0.7-1.4), rotation (up to 20 degrees), contrast along the principal components of all
pixels (each projection times 0.5-2), saturation and value raised to a power (0.25-4,
log-uniform), multiplied by 0.7-1.4 and shifted by -0.1..0.1, and a hue shift of -0.1..0.1.
Images are float RGB in [0, 1], NCHW. Every parameter has a neutral value at which the
transform returns the plain crop, which the tests rely on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F


@dataclass
class Params:
    """One value per patch for each transformation (tensors of shape (n,), (n, 2) or (n, 3))."""

    shift: torch.Tensor      # (n, 2) translation, fraction of the patch size
    scale: torch.Tensor      # (n,) >1 zooms in
    angle: torch.Tensor      # (n,) radians
    pca: torch.Tensor        # (n, 3) factor on each principal-component projection
    power: torch.Tensor      # (n, 2) exponents for saturation and value
    gain: torch.Tensor       # (n, 2) multipliers for saturation and value
    offset: torch.Tensor     # (n, 2) added to saturation and value
    hue: torch.Tensor        # (n,) added to hue (a full turn is 1)

    @classmethod
    def neutral(cls, n: int, device="cpu") -> "Params":
        z = lambda *s: torch.zeros(n, *s, device=device)  # noqa: E731
        o = lambda *s: torch.ones(n, *s, device=device)  # noqa: E731
        return cls(z(2), o(), z(), o(3), o(2), o(2), z(2), z())

    @classmethod
    def draw(cls, n: int, generator: torch.Generator, device="cpu") -> "Params":
        """The paper's ranges; drawn on the CPU generator (reproducible), then moved to ``device``."""
        u = lambda *s: torch.rand(n, *s, generator=generator)  # noqa: E731
        span = lambda lo, hi, *s: lo + (hi - lo) * u(*s)  # noqa: E731
        log_span = lambda lo, hi, *s: torch.exp(span(math.log(lo), math.log(hi), *s))  # noqa: E731
        p = cls(shift=span(-0.2, 0.2, 2), scale=span(0.7, 1.4), angle=span(-math.radians(20), math.radians(20)),
                pca=span(0.5, 2.0, 3), power=log_span(0.25, 4.0, 2), gain=span(0.7, 1.4, 2),
                offset=span(-0.1, 0.1, 2), hue=span(-0.1, 0.1))
        return cls(**{f.name: getattr(p, f.name).to(device) for f in fields(cls)})


def crop(images: torch.Tensor, corners: torch.Tensor, size: int, params: Params) -> torch.Tensor:
    """Resample a ``size`` x ``size`` patch from each image, translated, scaled and rotated about its centre.

    ``corners`` (n, 2) holds each patch's top-left pixel (x, y); with neutral parameters the
    result is exactly ``images[..., y:y+size, x:x+size]``.
    """
    n, _, h, w = images.shape
    half = torch.tensor([size / w, size / h], device=images.device)  # patch half-size, normalised units
    centre = (corners.to(images.device).float() + size / 2) / torch.tensor([w / 2, h / 2], device=images.device) - 1
    centre = centre + params.shift * 2 * half  # shift is a fraction of the patch size
    cos, sin = torch.cos(params.angle) / params.scale, torch.sin(params.angle) / params.scale
    theta = torch.stack([torch.stack([cos * half[0], -sin * half[1], centre[:, 0]], 1),
                         torch.stack([sin * half[0], cos * half[1], centre[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, (n, images.shape[1], size, size), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def principal_components(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean colour and principal axes (columns) of all pixels of NCHW images."""
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 3).double()
    mean = pixels.mean(0)
    _, vectors = torch.linalg.eigh(torch.cov((pixels - mean).T))
    return mean.float(), vectors.float()


def pca_contrast(x: torch.Tensor, factors: torch.Tensor, mean: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's projection on every principal axis by that patch's factor."""
    centred = x - mean.view(1, 3, 1, 1)
    proj = torch.einsum("nchw,ck->nkhw", centred, axes) * factors.view(-1, 3, 1, 1)
    return torch.einsum("nkhw,ck->nchw", proj, axes) + mean.view(1, 3, 1, 1)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    value, argmax = x.max(1)
    chroma = value - x.min(1).values
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(argmax == 0, ((g - b) / safe) % 6, torch.where(argmax == 1, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(chroma > 0, hue / 6, torch.zeros_like(hue))
    saturation = torch.where(value > 0, chroma / torch.where(value > 0, value, torch.ones_like(value)),
                             torch.zeros_like(value))
    return torch.stack([hue, saturation, value], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    hue, saturation, value = x.unbind(1)
    k = (torch.tensor([5.0, 3.0, 1.0], device=x.device).view(1, 3, 1, 1) + hue.unsqueeze(1) * 6) % 6
    ramp = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return value.unsqueeze(1) * (1 - saturation.unsqueeze(1) * ramp)


def colour(x: torch.Tensor, p: Params) -> torch.Tensor:
    """Saturation and value: power, gain, offset; hue: shift. Values stay in [0, 1]."""
    hsv = rgb_to_hsv(x.clamp(0, 1))
    sv = hsv[:, 1:].clamp_min(0) ** p.power.view(-1, 2, 1, 1) * p.gain.view(-1, 2, 1, 1) + p.offset.view(-1, 2, 1, 1)
    hue = (hsv[:, :1] + p.hue.view(-1, 1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.cat([hue, sv.clamp(0, 1)], 1))


def transform(images: torch.Tensor, corners: torch.Tensor, size: int, params: Params,
              mean: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """The whole composition: geometry, then principal-component contrast, then colour."""
    patch = crop(images, corners, size, params)
    return colour(pca_contrast(patch, params.pca, mean, axes), params)
