#!/usr/bin/env python
"""Time the solver's two skinny products in each layout and precision on this machine.

The probe's cost is passes over the feature matrix X (n x d) times a 10-column matrix, so
the layout PyTorch picks matters more than FLOPs. Writes results/matmul-layouts.csv and
prints a markdown table for BENCHMARKS.md.
"""

import csv
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

N, D, K = 20_000, 12_288, 10


def timed(fn, repeats=5):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main():
    torch.manual_seed(0)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        X = torch.randn(N, D).to(dtype)
        W = torch.randn(K, D).to(dtype)  # coef_ layout (k, d)
        G = torch.randn(N, K).to(dtype)
        cases = {
            "X @ W (forward), F.linear(X, W)": lambda: F.linear(X, W),
            "X @ W (forward), X @ W.T": lambda: X @ W.T,
            "X^T G (gradient), G.T @ X (G.T a view)": lambda: G.T @ X,
            "X^T G (gradient), G.T.contiguous() @ X": lambda: G.T.contiguous() @ X,
            "X^T G (gradient), X.T @ G": lambda: X.T @ G,
        }
        for name, fn in cases.items():
            rows.append({"product": name, "dtype": str(dtype).replace("torch.", ""), "seconds": round(timed(fn), 4)})
    out = Path("results") / "matmul-layouts.csv"
    out.parent.mkdir(exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["product", "dtype", "seconds", "n", "d", "k", "threads", "machine"])
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "n": N, "d": D, "k": K, "threads": torch.get_num_threads(),
                             "machine": platform.processor() or platform.machine()})
    print(f"| product ({N} x {D} by {K} columns) | dtype | seconds |\n|---|---|---|")
    for r in rows:
        print(f"| {r['product']} | {r['dtype']} | {r['seconds']:.3f} |")


if __name__ == "__main__":
    main()
