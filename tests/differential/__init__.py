"""Differential testing: random suites run sequentially and concurrently must agree.

- :mod:`.generator` turns a seed into a small pytest suite that exercises
  fixture lifetimes (every scope, overrides, parametrization, failures) and
  state the whole process shares (patches, output, logs, warnings).
- :mod:`.compare` runs one suite with ``--concurrently-mode=off`` and in
  ``auto`` mode, and lists every difference in outcomes, fixture lifetimes,
  captured output, warnings and the state the process ends with.
- :mod:`.soak` runs many seeds and summarises the differences by kind.
- :mod:`.reproductions` holds failing suites shrunk by hand.
"""
