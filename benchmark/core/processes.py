"""Measured work in fresh spawned processes, so each one's peak RSS and threads are its own.

``isolated`` starts one process, or several joined in a gloo group as torchrun would start them, runs a
module-level function in each and collects the dict each returns (as JSON: nothing is unpickled). A process
that fails or runs past its time is one status line, not a traceback.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

# the module, not the function ``torch.multiprocessing.spawn`` that shadows it
_spawn = sys.modules["torch.multiprocessing.spawn"]


def _entry(rank: int, target: Callable[..., dict], args: tuple, world: int, port: int, out: str) -> None:
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank))  # as torchrun sets it
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    found = target(*args)
    Path(out, f"{rank}.json").write_text(json.dumps(found))
    if world > 1:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated(target: Callable[..., dict], args: tuple = (), processes: int = 1,
             timeout_s: float | None = None) -> tuple[str, list[dict]]:
    """``target(*args)`` in ``processes`` fresh processes: ("ok", each rank's dict) or (a status line, [])."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with tempfile.TemporaryDirectory() as out:
        context = mp.start_processes(_entry, args=(target, args, processes, _free_port(), out), nprocs=processes,
                                     join=False, start_method="spawn")
        try:
            while not context.join(timeout=1.0):
                if deadline is not None and time.monotonic() > deadline:
                    for process in context.processes:
                        process.kill()
                        process.join()
                    return f"stopped after {timeout_s:.0f} s", []
        except (_spawn.ProcessRaisedException, _spawn.ProcessExitedException) as exc:
            said = [line for line in str(exc).splitlines() if line.strip()]  # a raised error's last line names it
            return f"failed ({said[-1] if said else type(exc).__name__})", []
        return "ok", [json.loads(Path(out, f"{rank}.json").read_text()) for rank in range(processes)]
