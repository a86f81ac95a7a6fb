"""Where work runs: ``--device`` resolution and the device name recorded with results."""

from __future__ import annotations

import torch

from .errors import BenchError


def resolve_device(name: str) -> str:
    """auto -> cuda when PyTorch sees a GPU, else cpu; asking for cuda without one is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA device is visible to PyTorch; use --device cpu or auto")
    return name


def device_name(device: torch.device | str) -> str:
    """``cuda (NVIDIA H200)`` or ``cpu (2 threads)``: what a timing was measured on."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
