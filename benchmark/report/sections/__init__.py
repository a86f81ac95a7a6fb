"""The generated sections of BENCHMARKS.md, one module each; importing this package registers them all
(``report.document.SECTIONS``)."""

from . import (contrasts, kquestion, leaderboard, models, outputs, parity, penalty, scale, solvers, speed,  # noqa: F401
               throughput, timings)
