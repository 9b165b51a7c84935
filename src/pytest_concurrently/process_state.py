"""Changes to the state the whole process shares, while other tests are in flight.

Tests in flight share ``os.environ``, the working directory and ``sys.path``:
whatever one of them changes there, every other test in flight sees, and a
test that later puts back what it found may put back over another test's
change. ``monkeypatch`` layers its changes (see
:mod:`._pytest_adapter.layered_patches`); any other change made for a
concurrent test (by its body, its function-scoped fixtures, the tasks it
starts or the functions it runs with ``asyncio.to_thread``, which all run in
its context) while at least one other test is in flight gets a
:class:`SharedStateWarning` on that test, once per test for each of the
three, issued in the test's context so that it is reported with the test.

"In flight" is read at the moment of the change, from the runner's tests in
flight (from the start of a test's setup to the end of its teardown), not
counting the test that makes the change. A shared fixture's setup and
teardown, which run in an owner of their own for every test that uses the
fixture (see :mod:`.ownership`), are not any one test's doing and are not
watched; nor is ``PYTEST_CURRENT_TEST``, which pytest itself sets in every
phase of every test.

While a concurrent phase runs (:func:`watching`), ``os.environ`` and
``os.environb`` are instances of a subclass of their class that notes items
set and deleted, ``os.chdir`` and ``os.fchdir`` are wrappers, and
``sys.path`` is a list subclass that notes changes made in place. Replacing
``sys.path`` with another list (``sys.path = [...]``) is not watched: that
would take changing the class of the ``sys`` module itself.
Reading goes through the same code as before. Each change is checked before
it is made, so that when the warning is made an error the change is not
made, and nothing leaks into the other tests. After the phase every object
has its class back, and ``sys.path`` is the list it was before, with the
entries it has then.
"""

from __future__ import annotations

import functools
import os
import sys
import types
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsIndex, TypeVar

import pytest

from .current import running_test, task_owner
from .stacks import Place, users_place

__all__ = ["SharedStateWarning", "SharedStateWatch", "layered", "unwatched", "watching"]

_ENVIRON = "environ"
_CWD = "cwd"
_PATH = "sys.path"

#: What each kind of state is called, and the layered way to change it.
_NAMES = {_ENVIRON: "os.environ", _CWD: "the working directory", _PATH: "sys.path"}
_LAYERED = {
    _ENVIRON: "monkeypatch.setenv or monkeypatch.delenv",
    _CWD: "monkeypatch.chdir",
    _PATH: "monkeypatch.syspath_prepend",
}

# pytest sets it at every phase of every test, in the test's context.
_PYTEST_VARIABLE = "PYTEST_CURRENT_TEST"


class SharedStateWarning(pytest.PytestWarning):
    """A concurrent test changed ``os.environ``, the working directory or
    ``sys.path`` while other tests were in flight, other than through
    ``monkeypatch``."""

    __module__ = "pytest_concurrently"


class SharedStateWatch:
    """The tests in flight, and which of them were warned about what.

    :param in_flight: the concurrent tests in flight, read at each change
        (the runner's own collection, kept up to date as tests start and end).
    :param rootpath: paths under it are shown relative to it.
    """

    def __init__(self, in_flight: Collection[pytest.Item], rootpath: Path) -> None:
        self.in_flight = in_flight
        self.rootpath = rootpath
        self.warned: set[tuple[pytest.Item, str]] = set()


_watch: SharedStateWatch | None = None

# Set while layered patches make their changes, and while collectors are set
# up and torn down: those changes are never warned about.
_unwatched: ContextVar[bool] = ContextVar("pytest_concurrently_unwatched", default=False)

_F = TypeVar("_F", bound=Callable[..., Any])


def layered(method: _F) -> _F:
    """Mark ``method`` as one that changes shared state through layers that
    come off without undoing other tests' changes: what it changes, and
    what the code it calls changes, is not warned about."""

    @functools.wraps(method)
    def marked(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        with unwatched():
            return method(*args, **kwargs)

    return marked  # type: ignore[return-value]


@contextmanager
def unwatched() -> Iterator[None]:
    """While the block runs, changes made in this context are not one
    test's doing: a layered patch's, or a collector's setup and teardown
    (a package's, which may put its root on ``sys.path``), done once for all
    the tests under it."""
    token = _unwatched.set(True)
    try:
        yield
    finally:
        _unwatched.reset(token)


def _culprit(kind: str) -> tuple[pytest.Item, int] | None:
    """The test to warn about a change of ``kind`` made now, and how many
    other tests are in flight; None when no warning is due."""
    watch = _watch
    if watch is None or _unwatched.get():
        return None
    current = running_test.get()
    if current is None or not current.concurrent:
        return None
    item = current.item
    # Unset in a shared fixture's owner, which works for every test that
    # uses the fixture.
    if task_owner.get() is not item or (item, kind) in watch.warned:
        return None
    in_flight = watch.in_flight
    others = len(in_flight) - (item in in_flight)
    if others < 1:
        return None
    return item, others


def _warn(culprit: tuple[pytest.Item, int], kind: str, what: str) -> None:
    """Warn, in the running test's context, that ``culprit`` did ``what``."""
    __tracebackhide__ = True
    watch = _watch
    assert watch is not None
    item, others = culprit
    watch.warned.add((item, kind))
    were = "test was" if others == 1 else "tests were"
    they = "it sees" if others == 1 else "they see"
    message = (
        f"{item.nodeid} {what} while {others} other {were} in flight; {they} the change "
        f"too, as the whole process shares {_NAMES[kind]}. Use {_LAYERED[kind]} "
        "(monkeypatch takes out only this test's change when it ends), or mark the "
        "test @pytest.mark.isolated so that it runs alone (for a fixture that makes the "
        "change: list the fixture in the concurrently_isolated_fixtures ini option)."
    )
    place = users_place(_stack(), watch.rootpath)
    if place is not None:
        filename, lineno = place.filename, place.lineno
    else:
        path, line, _ = item.location
        filename, lineno = str(watch.rootpath / path), (line or 0) + 1
    warnings.warn_explicit(SharedStateWarning(message), SharedStateWarning, filename, lineno)


def _stack() -> list[Place]:
    """The places of the running thread's frames, outermost first."""
    frame: types.FrameType | None = sys._getframe(1)
    places = []
    while frame is not None:
        places.append(Place.of(frame))
        frame = frame.f_back
    places.reverse()
    return places


if TYPE_CHECKING:
    _EnvironBase = os._Environ[Any]
else:
    _EnvironBase = os._Environ


class _WatchedEnviron(_EnvironBase):
    """``os.environ`` (or ``os.environb``) during a concurrent phase."""

    def __setitem__(self, key: Any, value: Any) -> None:
        __tracebackhide__ = True
        if _watch is not None and key != _PYTEST_VARIABLE:
            culprit = _culprit(_ENVIRON)
            if culprit is not None and self.get(key) != value:
                _warn(culprit, _ENVIRON, f"set {_environ_name(key)}[{key!r}]")
        os._Environ.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        __tracebackhide__ = True
        if _watch is not None and key != _PYTEST_VARIABLE:
            culprit = _culprit(_ENVIRON)
            if culprit is not None and key in self:
                _warn(culprit, _ENVIRON, f"deleted {_environ_name(key)}[{key!r}]")
        os._Environ.__delitem__(self, key)


def _environ_name(key: object) -> str:
    return "os.environb" if isinstance(key, bytes) else "os.environ"


def _changing_directory(path: Any) -> None:
    """Note a change of the working directory to ``path``."""
    __tracebackhide__ = True
    culprit = _culprit(_CWD)
    if culprit is None:
        return
    try:
        directory = _directory(path)
        unchanged = directory == os.getcwd()
    except (OSError, TypeError, ValueError):
        # The change itself will fail, or the directory is gone: say what
        # was asked for.
        directory, unchanged = repr(path), False
    if not unchanged:
        _warn(culprit, _CWD, f"changed the working directory to {directory!r}")


_C = TypeVar("_C", bound=Callable[[Any], None])


def _watched_chdir(real: _C) -> _C:
    """``os.chdir`` or ``os.fchdir`` (``real``), noting the change first."""

    @functools.wraps(real)
    def chdir(path: Any) -> None:
        __tracebackhide__ = True
        if _watch is not None:
            _changing_directory(path)
        real(path)

    return chdir  # type: ignore[return-value]


def _directory(path: Any) -> str:
    """The absolute path of the directory ``path`` names, or of the open
    file descriptor it is."""
    if not isinstance(path, int) and hasattr(path, "fileno"):
        path = path.fileno()
    if isinstance(path, int):
        # Linux names an open descriptor's path; elsewhere the number will do.
        link = f"/proc/self/fd/{path}"
        return os.readlink(link) if os.path.islink(link) else f"<file descriptor {path}>"
    return os.path.abspath(os.fsdecode(path))


def _path_changed(what: str | Callable[[], str]) -> None:
    __tracebackhide__ = True
    culprit = _culprit(_PATH)
    if culprit is not None:
        _warn(culprit, _PATH, what if isinstance(what, str) else what())


class _WatchedPath(list[str]):
    """``sys.path`` during a concurrent phase: notes changes made in place."""

    __slots__ = ()

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[type[list[str]], tuple[list[str]]]:
        # Copied or pickled (multiprocessing hands sys.path to the processes
        # it spawns), it is a plain list.
        return list, (list(self),)

    def append(self, entry: str) -> None:
        """As ``list.append``."""
        __tracebackhide__ = True
        if _watch is not None:
            _path_changed(f"added {entry!r} to sys.path")
        super().append(entry)

    def insert(self, index: SupportsIndex, entry: str) -> None:
        """As ``list.insert``."""
        __tracebackhide__ = True
        if _watch is not None:
            _path_changed(f"added {entry!r} to sys.path")
        super().insert(index, entry)

    def extend(self, entries: Iterable[str]) -> None:
        """As ``list.extend``."""
        __tracebackhide__ = True
        entries = list(entries)
        if _watch is not None and entries:
            _path_changed(f"added {', '.join(map(repr, entries))} to sys.path")
        super().extend(entries)

    def __iadd__(self, entries: Iterable[str]) -> _WatchedPath:  # type: ignore[override,misc]
        self.extend(entries)
        return self

    def remove(self, entry: str) -> None:
        """As ``list.remove``."""
        __tracebackhide__ = True
        if _watch is not None and entry in self:
            _path_changed(f"removed {entry!r} from sys.path")
        super().remove(entry)

    def pop(self, index: SupportsIndex = -1) -> str:
        """As ``list.pop``."""
        __tracebackhide__ = True
        if _watch is not None and self:
            _path_changed(lambda: f"removed {self[index]!r} from sys.path")
        return super().pop(index)

    def clear(self) -> None:
        """As ``list.clear``."""
        __tracebackhide__ = True
        if _watch is not None and self:
            _path_changed("emptied sys.path")
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        """As ``list.sort``."""
        __tracebackhide__ = True
        if _watch is not None:
            _path_changed("reordered sys.path")
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        """As ``list.reverse``."""
        __tracebackhide__ = True
        if _watch is not None:
            _path_changed("reordered sys.path")
        super().reverse()

    def __setitem__(self, index: Any, value: Any) -> None:
        __tracebackhide__ = True
        if isinstance(index, slice):
            value = list(value)
        if _watch is not None and _culprit(_PATH) is not None:
            # Putting back the entries it has (sys.path[:] = saved) is no change.
            changed = list(self)
            changed[index] = value
            if changed != self:
                _path_changed("changed entries of sys.path")
        super().__setitem__(index, value)

    def __delitem__(self, index: Any) -> None:
        __tracebackhide__ = True
        if _watch is not None:
            _path_changed("removed entries from sys.path")
        super().__delitem__(index)

    def __imul__(self, times: SupportsIndex) -> _WatchedPath:
        __tracebackhide__ = True
        if _watch is not None:
            _path_changed("changed entries of sys.path")
        super().__imul__(times)
        return self


def _set_class(obj: object, cls: type) -> bool:
    """Make ``obj`` an instance of ``cls``; False when it cannot be."""
    try:
        obj.__class__ = cls
    except TypeError:
        return False
    return True


@contextmanager
def watching(watch: SharedStateWatch | None) -> Iterator[None]:
    """While the block runs, warn about changes of shared state made by
    concurrent tests while others are in flight, as ``watch`` says (None:
    do not watch)."""
    global _watch
    if watch is None:
        yield
        return
    environs = [
        environ
        for environ in (os.environ, getattr(os, "environb", None))
        if type(environ) is os._Environ and _set_class(environ, _WatchedEnviron)
    ]
    real_chdir = os.chdir
    real_fchdir = getattr(os, "fchdir", None)
    os.chdir = _watched_chdir(real_chdir)
    if real_fchdir is not None:
        os.fchdir = _watched_chdir(real_fchdir)
    original_path = sys.path
    watched_path = _WatchedPath(original_path) if type(original_path) is list else None
    if watched_path is not None:
        sys.path = watched_path
    outer, _watch = _watch, watch
    try:
        yield
    finally:
        _watch = outer
        if watched_path is not None and sys.path is watched_path:
            # The list others may hold on to stays sys.path.
            original_path[:] = watched_path
            sys.path = original_path
        if real_fchdir is not None:
            os.fchdir = real_fchdir
        os.chdir = real_chdir
        for environ in environs:
            if type(environ) is _WatchedEnviron:
                _set_class(environ, os._Environ)
