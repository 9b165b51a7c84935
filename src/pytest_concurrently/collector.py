"""The cyclic garbage collector while a run is planned and while it runs.

Planning a run makes tens of long-lived objects for each test, and each
collection that allocation sets off walks everything the collected tests
hold, only to find nothing to free: :func:`paused` keeps the collector out
of it. While tests run, thousands of them in flight keep thousands of
objects alive each for a second or more, which every young collection
walks again: :func:`tuned_for_run` freezes what was there before the run
and raises the thresholds (see :data:`RUN_THRESHOLDS`). Cyclic garbage is
still collected, some of it later than in a sequential run
(docs/semantics.md).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RUN_THRESHOLDS", "paused", "tuned_for_run"]

#: The garbage collector's thresholds while tests run (each the larger of
#: this and what was set before): a young collection after 7,000 new objects
#: rather than 700, and a full one after 100 of the second generation's rather
#: than 10. With 10,000 tests in flight that takes the collector's share of
#: the run from about a third to a tenth. Cyclic garbage is still collected:
#: most of it young, the rest by the rarer full collections and at the end of
#: the run.
RUN_THRESHOLDS = (7000, 10, 100)


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection in the block; a collector that was off stays off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def tuned_for_run() -> Iterator[None]:
    """Freeze what exists now (the collected tree, the plan) and raise the
    thresholds to at least :data:`RUN_THRESHOLDS` for the block; then put
    both back."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(*map(max, thresholds, RUN_THRESHOLDS))
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
