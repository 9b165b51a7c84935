"""Where a test is stuck: the places of a task's awaits or of a thread's
stack, and the one to name.

asyncio's ``Task.get_stack`` gives one frame for a suspended task; the chain
of awaits below it (the test body, the helper it awaits, the ``sleep`` at the
bottom) is found by following each coroutine's ``cr_await``. Of those
places, the one to show a user is the innermost that is theirs: not
asyncio's, pytest's or this plugin's. Places are taken as (file, line,
function) when asked for, since a frame's line moves on as it runs.
"""

from __future__ import annotations

import asyncio
import os
import site
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NamedTuple

import _pytest
import pluggy

__all__ = [
    "Place",
    "awaiting_frames",
    "awaiting_places",
    "describe",
    "located",
    "thread_places",
    "traceback_at",
    "users_place",
]


class Place(NamedTuple):
    """A line being run: file name, line number and function name."""

    filename: str
    lineno: int
    function: str

    @classmethod
    def of(cls, frame: FrameType) -> Place:
        """Where ``frame`` is now."""
        return cls(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


_NOT_THE_USERS = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (asyncio, _pytest, pluggy, sys.modules[__package__ or __name__])
    if module.__file__ is not None
)
# The standard library, which holds the base interpreter's site-packages.
_STDLIB = tuple(
    {
        os.path.join(os.path.realpath(sysconfig.get_paths()[name]), "")
        for name in ("stdlib", "platstdlib")
    }
)
_INSTALLED = tuple(
    os.path.join(path, "") for path in {*site.getsitepackages(), site.getusersitepackages()}
)


def _is_the_users(filename: str) -> bool:
    if filename.startswith(_NOT_THE_USERS) or filename.startswith("<"):
        return False
    return not filename.startswith(_STDLIB) or filename.startswith(_INSTALLED)


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


def awaiting_places(task: asyncio.Task[Any]) -> list[Place]:
    """Where each await in ``task``'s chain of awaits is, outermost first."""
    return [Place.of(frame) for frame in awaiting_frames(task)]


def thread_places(thread_id: int) -> list[Place]:
    """Where the thread ``thread_id`` is, outermost first (empty if it is
    gone)."""
    frame: FrameType | None = sys._current_frames().get(thread_id)
    places: list[Place] = []
    while frame is not None:
        places.append(Place.of(frame))
        frame = frame.f_back
    places.reverse()
    return places


def _frame_of(awaitable: Any) -> FrameType | None:
    for name in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(awaitable, name, None)
        if frame is not None:
            return frame  # type: ignore[no-any-return]
    return None


def users_place(places: Iterable[Place], rootpath: Path | None = None) -> Place | None:
    """The innermost of ``places`` (outermost first) in the user's code:
    under ``rootpath`` if one is, else outside the standard library, pytest,
    pluggy and this plugin; None when none is."""
    theirs = [place for place in places if _is_the_users(place.filename)]
    if rootpath is not None:
        root = str(rootpath) + os.sep
        under_root = [place for place in theirs if place.filename.startswith(root)]
        if under_root:
            return under_root[-1]
    return theirs[-1] if theirs else None


def describe(place: Place, rootpath: Path | None = None) -> str:
    """``path:line in function``, the path relative to ``rootpath`` when
    under it."""
    filename = place.filename
    if rootpath is not None:
        root = str(rootpath) + os.sep
        if filename.startswith(root):
            filename = filename[len(root) :]
    return f"{filename}:{place.lineno} in {place.function}"


def traceback_at(frame: FrameType, lineno: int) -> TracebackType:
    """A traceback of one entry, ``frame`` at ``lineno``: an exception
    raised with it (``raise exc.with_traceback(tb)``) shows that line as the
    place it came from."""
    return TracebackType(None, frame, frame.f_lasti, lineno)


def located(places: Iterable[Place], rootpath: Path | None = None) -> str:
    """`` at path:line in function`` for the user's place among ``places``
    (see :func:`users_place`), or an empty string when none is theirs: the
    end of a sentence that names the place when it can."""
    place = users_place(places, rootpath)
    return f" at {describe(place, rootpath)}" if place is not None else ""
