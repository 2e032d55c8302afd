"""Benchmarks for the targets of DESIGN §7; run with ``make bench`` (not part of the tests).

Figures are written to ``docs/benchmarks.md`` by :mod:`bench.run`.
"""
