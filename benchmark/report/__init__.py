"""Reporting: result rows, leaderboards, figures and the paper's published figures.

``results`` appends one locked CSV row per run; ``leaderboard`` builds the tables of
BENCHMARKS.md from the rows (best row per encoder by validation accuracy); ``figures``
draws the accuracy curves; ``published`` holds the paper's numbers. Imports ``encoders``
(the registry of trained models, for the models table) and ``core``.
"""
