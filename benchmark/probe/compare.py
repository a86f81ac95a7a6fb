"""Paired comparison of two encoders on the same data: what a leaderboard reader needs.

Draw protocols (``few``, ``svhn-1000``) pair the two encoders draw by draw (the draws
are identical for a seed): mean difference, its 95% t-interval, and how many draws each
wins. ``full`` has one fit, so it pairs test images: the difference of accuracies with a
95% bootstrap interval over test images, and how many images only one encoder gets right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .protocols import few_shot_setting, interval95, run_few_shot, run_probe


@dataclass
class Comparison:
    protocol: str
    acc_a: float
    acc_b: float
    diff: float  # A - B, points
    ci95: tuple[float, float]
    a_wins: int
    b_wins: int
    units: str  # "draws" or "test images"

    def lines(self, a: str, b: str) -> list[str]:
        lo, hi = self.ci95
        return [f"{a}: {self.acc_a:.2f}%   {b}: {self.acc_b:.2f}%   ({self.protocol})",
                f"difference A - B: {self.diff:+.2f} points, 95% interval [{lo:+.2f}, {hi:+.2f}]",
                f"A better on {self.a_wins} {self.units}, B better on {self.b_wins}"]


def paired_draws(accs_a, accs_b, protocol: str) -> Comparison:
    a, b = np.asarray(accs_a), np.asarray(accs_b)
    d = a - b
    half = interval95(d)
    return Comparison(protocol, a.mean(), b.mean(), d.mean(), (d.mean() - half, d.mean() + half),
                      int((d > 0).sum()), int((d < 0).sum()), "draws")


def paired_images(correct_a, correct_b, seed: int = 0, resamples: int = 2000) -> Comparison:
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    d = a - b
    rng = np.random.default_rng(seed)
    boot = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(resamples)]) * 100
    return Comparison("full", a.mean() * 100, b.mean() * 100, d.mean() * 100,
                      (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))),
                      int((d > 0).sum()), int((d < 0).sum()), "test images")


def compare(features_a, features_b, protocol: str, val_size: int, seed: int, probes, per_class=400, draws=10):
    """``features_x`` are (train, test) CachedFeatures pairs of the two encoders; ``probes`` their two configs."""
    if protocol == "full":
        ra = run_probe(*features_a, val_size, seed, probes[0])
        rb = run_probe(*features_b, val_size, seed, probes[1])
        return paired_images(ra.test_correct, rb.test_correct, seed)
    setting = few_shot_setting(protocol, per_class, draws)
    ra = run_few_shot(*features_a, setting, val_size, seed, probes[0])
    rb = run_few_shot(*features_b, setting, val_size, seed, probes[1])
    return paired_draws(ra.test_accs, rb.test_accs, protocol)
