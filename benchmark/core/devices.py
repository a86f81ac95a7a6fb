"""Where work runs: ``--device`` resolution, the device name recorded with results, torchrun setup."""

from __future__ import annotations

import contextlib
import os
import platform

import torch
import torch.distributed as dist

from .errors import BenchError


def resolve_device(name: str, option: str = "--device ") -> str:
    """auto -> cuda when PyTorch sees a GPU, else cpu; cpu, cuda and cuda:N as given when they exist.
    Anything else, or a GPU that is not there, is one line (``option`` names the setting: ``--device `` on the
    command line, ``device=`` in Python)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, number = str(name).partition(":")
    if name == "cpu":
        return name
    if kind != "cuda" or (number and not number.isdigit()):
        raise BenchError(f"{option}{name!r}: choose auto, cpu, cuda or cuda:N")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise BenchError(f"{option}{name!r}: no CUDA device is visible to PyTorch; use cpu or auto")
    if number and int(number) >= count:
        raise BenchError(f"{option}{name!r}: PyTorch sees {count} CUDA device{'s' if count > 1 else ''} "
                         f"(cuda:0..cuda:{count - 1})")
    return name


def cpu_model() -> str:
    """The CPU's model name (``AMD EPYC``), or "" where the system does not say."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


def device_name(device: torch.device | str) -> str:
    """``cuda (NVIDIA H200)`` or ``cpu (AMD EPYC, 2 threads)``: what a timing was measured on, so that timings from
    different machines are never set against each other's peaks."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    model = cpu_model()
    return f"cpu ({model + ', ' if model else ''}{torch.get_num_threads()} threads)"


def bfloat16_is_fast(device) -> bool:
    """Whether bfloat16 matrix products and convolutions are native here (CUDA, or a CPU with AVX512-BF16 or AMX)."""
    if torch.device(device).type == "cuda":
        return True
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


@contextlib.contextmanager
def ieee_products():
    """Matrix products as written: float32 never run in TF32 or bfloat16 (``torch.set_float32_matmul_precision``
    below "highest" does that, on AMX CPUs too), bfloat16 sums never reduced in bfloat16 (CUDA). For code whose
    error bounds assume it; the caller's settings come back after."""
    precision = torch.get_float32_matmul_precision()
    reduced = torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = reduced


def init_distributed(device: str) -> str:
    """Join the process group when started by torchrun; returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return f"cuda:{local}"
    dist.init_process_group("gloo")
    return device
