"""Run async pytest tests concurrently on one event loop.

Install the package and mark async tests ``@pytest.mark.concurrent`` (or run
with ``--concurrently-mode=auto``); see the user's guide for the contract on
fixtures, reporting and scheduling.
"""

from __future__ import annotations

# Before any other module of the package: it keeps pytest from
# assertion-rewriting the rest (see ``_pytest_adapter.unrewritten``).
from . import _pytest_adapter  # noqa: F401
from .blocking import BlockedLoopWarning as BlockedLoopWarning
from .eventually import eventually as eventually
from .locking import DeadlockError as DeadlockError
from .locking import lock as lock
from .marking import Mode as Mode
from .process_state import SharedStateWarning as SharedStateWarning
from .resources import resource as resource
from .strays import StrayTaskWarning as StrayTaskWarning

# Kept here, not read from the installed metadata: looking the distribution up
# costs tens of milliseconds at every pytest start.
__version__ = "0.1.0"

__all__ = [
    "BlockedLoopWarning",
    "DeadlockError",
    "Mode",
    "SharedStateWarning",
    "StrayTaskWarning",
    "WorkerLocalLockWarning",
    "__version__",
    "eventually",
    "lock",
    "resource",
]
