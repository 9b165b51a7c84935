"""Where a test is stuck: the frames of a task's awaits, and the line to name.

asyncio's ``Task.get_stack`` gives one frame for a suspended task; the chain
of awaits below it (the test body, the helper it awaits, the ``sleep`` at the
bottom) is found by following each coroutine's ``cr_await``. Of those
frames, the one to show a user is the innermost that is theirs: not asyncio's,
pytest's or this plugin's.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import Any

import _pytest
import pluggy

__all__ = ["awaiting_frames", "describe", "users_frame"]

_NOT_THE_USERS = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (asyncio, _pytest, pluggy, sys.modules[__package__ or __name__])
    if module.__file__ is not None
)


def awaiting_frames(task: asyncio.Task[Any]) -> list[FrameType]:
    """The frames of ``task``'s chain of awaits, outermost first."""
    frames: list[FrameType] = []
    awaitable: Any = task.get_coro()
    while awaitable is not None:
        frame = _frame_of(awaitable)
        if frame is None:
            break
        frames.append(frame)
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
            or getattr(awaitable, "ag_await", None)
        )
    return frames


def _frame_of(awaitable: Any) -> FrameType | None:
    for name in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(awaitable, name, None)
        if frame is not None:
            return frame  # type: ignore[no-any-return]
    return None


def users_frame(frames: Iterable[FrameType], rootpath: Path | None = None) -> FrameType | None:
    """The innermost of ``frames`` (outermost first) in the user's code:
    under ``rootpath`` if one is, else outside asyncio, pytest and this
    plugin."""
    theirs = [frame for frame in frames if not frame.f_code.co_filename.startswith(_NOT_THE_USERS)]
    if rootpath is not None:
        root = str(rootpath) + os.sep
        under_root = [frame for frame in theirs if frame.f_code.co_filename.startswith(root)]
        if under_root:
            return under_root[-1]
    return theirs[-1] if theirs else None


def describe(frame: FrameType, rootpath: Path | None = None) -> str:
    """``path:line in function``, the path relative to ``rootpath`` when
    under it."""
    filename = frame.f_code.co_filename
    if rootpath is not None:
        root = str(rootpath) + os.sep
        if filename.startswith(root):
            filename = filename[len(root) :]
    return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
