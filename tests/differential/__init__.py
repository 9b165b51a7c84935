"""Differential testing: random suites run sequentially and concurrently must agree.

- :mod:`.generator` turns a seed into a small pytest suite that exercises
  fixture lifetimes (every scope, overrides, parametrization, failures).
- :mod:`.compare` runs one suite with ``--concurrently-mode=off`` and in
  ``auto`` mode, and lists every difference in outcomes and fixture lifetimes.
- :mod:`.soak` runs many seeds and summarises the differences by kind.
- :mod:`.reproductions` holds failing suites shrunk by hand.
"""
