"""Run async pytest tests concurrently on one event loop.

Install the package and mark async tests ``@pytest.mark.concurrent`` (or run
with ``--concurrently-mode=auto``); see the user's guide for the contract on
fixtures, reporting and scheduling.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .marking import Mode as Mode

try:
    __version__ = version("pytest-concurrently")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["Mode", "__version__"]
