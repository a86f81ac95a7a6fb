"""The generated sections of BENCHMARKS.md, one module each; importing this package registers them all
(``report.document.SECTIONS``)."""

from . import leaderboard, models, outputs, parity, penalty, solvers, speed, throughput, timings  # noqa: F401
