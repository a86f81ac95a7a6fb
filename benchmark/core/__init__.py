"""The bottom layer: what every stage shares and nothing more.

The one user-facing exception (``BenchError``), progress bars, device resolution and
process-group setup, atomic file writes, locked CSV appends and peak-memory readings.
It imports nothing else of ``benchmark``; every other subpackage may import it.
"""
