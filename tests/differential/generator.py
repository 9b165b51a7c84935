"""A seeded generator of random pytest suites that stress fixture lifetimes.

:func:`generate_suite` is a pure function of its seed: it returns the files of
a small suite (5 to 40 tests) and its ini text. Suites mix fixtures of every
scope, sync and ``async def``, ``yield`` and ``return`` (with and without
``request.addfinalizer``), parametrized directly and indirectly, overridden in
conftests, modules and classes, autouse, requested dynamically with
``request.getfixturevalue`` from sync fixtures, and failing, skipping or
xfailing in setup, call and teardown. Most tests are ``async def``.

Some tests, sync and async, also act on state the whole process shares,
each with values of its own (its node id): they patch an attribute, a
mapping key, an environment variable, the working directory and
``sys.path`` with ``monkeypatch``, lower a logger's level with
``caplog.set_level`` and log, print (in the body and in a fixture of their
own) and read their output with ``capsys``, warn (plainly, twice from one
line, inside ``pytest.warns``, under ``recwarn``, or under a
``filterwarnings("error")`` marker, which fails them), and patch with
``unittest.mock.patch`` (those are marked ``isolated``, as documented). Each
checks what it changed at once, never across an ``await``. The suite's
``pytest.ini`` empties ``concurrently_isolated_fixtures`` so that tests that
use ``monkeypatch`` overlap.

Every suite carries a helper module, :data:`RECORDER_MODULE`, that appends one
JSON line per event to the file named by the :data:`LOG_ENV` environment
variable (or ``events.jsonl`` beside it):

- ``setup`` / ``setup_error`` / ``teardown`` of a fixture instance. An
  instance id is ``label|scope node id|param repr#n``: the label names the
  definition (``name@where``), and ``n`` counts the setups of that (label,
  scope node, param) in the run, so ids are stable across runs and a second
  setup of the same thing is visible.
- ``start`` / ``end`` of a test body, with the ids of every fixture instance
  the test received (its fixture values and everything they were built from).
- ``report`` for every ``pytest_runtest_logreport`` (with the output and
  log markers, ``OUT<...>`` and ``LOG<...>``, in each captured section),
  ``logstart`` / ``logfinish``, ``collected`` (the run order),
  ``collect_error`` and ``sessionfinish``.
- ``warning`` for every ``pytest_warning_recorded``: the test and the
  message.
- ``final_state`` at ``pytest_unconfigure``, after everything is torn down:
  the state the tests patch, and what it was when the suite was imported.

Failures raised by the suite carry a token ``DT<phase|fx|instance id>`` or
``DT<phase|test|node id>`` so the comparer can tell which fixture or test a
failure in a report came from.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = [
    "LOG_ENV",
    "MAX_TESTS",
    "MIN_TESTS",
    "MODULE_HEADER",
    "RECORDER_MODULE",
    "RECORDER_SOURCE",
    "ROOT_CONFTEST_HEADER",
    "SCOPES",
    "GeneratedSuite",
    "generate_suite",
    "write_suite",
]

#: Fixture scopes from narrowest to widest.
SCOPES: Final = ("function", "class", "module", "package", "session")
_RANK: Final = {scope: rank for rank, scope in enumerate(SCOPES)}

#: The helper module written into every suite.
RECORDER_MODULE: Final = "dt_recorder"
#: The environment variable that names the event log of a run.
LOG_ENV: Final = "DIFFTEST_LOG"
#: Bounds on the number of tests (items) of a generated suite.
MIN_TESTS: Final = 5
MAX_TESTS: Final = 40

#: The recorder module written into every suite (see the module docstring).
RECORDER_SOURCE: Final = '''"""Records what this generated suite does, one JSON line per event."""

import json
import logging
import os
import re
import sys

import pytest

LOG_PATH = os.environ.get("DIFFTEST_LOG") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "events.jsonl"
)
# Built by concatenation so that source lines shown in tracebacks never
# contain a token.
MARK = "DT" + "<"
TOKEN = re.compile(re.escape(MARK) + r"([^<>\\n]*)>")

# What tests patch, print, log and warn carries the test's node id, so that
# whatever ends up in a report or a warning can be traced to its test.
MARKERS = re.compile(r"(?:OUT|LOG)<[^<>\\n]*>")
STATE_LOGGER = "dt.shared"
STATE_ENV = "DT_SHARED"
PATH_MARK = "dt-path"

_setups = {}
_phase_test = None


class Shared:
    """An object whose attribute tests patch."""

    def __init__(self):
        self.value = "original"


SHARED = Shared()
SHARED_MOCK = Shared()
TABLE = {"key": "original"}
_START_CWD = os.getcwd()


class Value:
    """A fixture value: its instance id and the ids it was built from."""

    __slots__ = ("instance", "closure")

    def __init__(self, instance, closure):
        self.instance = instance
        self.closure = closure

    def __repr__(self):
        return "Value(" + self.instance + ")"


def write(event):
    with open(LOG_PATH, "a", encoding="utf-8") as log:
        log.write(json.dumps(event) + "\\n")


def set_phase_test(nodeid):
    global _phase_test
    _phase_test = nodeid


def in_flight():
    """The test the running code belongs to: the plugin's notion of it when
    it has one (several tests may be in flight), else the test whose phase
    pytest is running."""
    try:
        from pytest_concurrently.current import running_test
    except ImportError:
        running = None
    else:
        running = running_test.get()
    if running is not None:
        return running.item.nodeid
    return _phase_test


def param_of(request):
    return repr(request.param) if hasattr(request, "param") else None


def on_param(request, value, how):
    """``how`` when the fixture runs with parameter ``value``, else None."""
    if hasattr(request, "param") and request.param == value:
        return how
    return None


def act(how, token):
    if how is None:
        return
    message = MARK + token + ">"
    if how == "raise":
        raise RuntimeError(message)
    if how == "fail":
        raise AssertionError(message)
    if how == "skip":
        pytest.skip(message)
    if how == "xfail":
        pytest.xfail(message)
    raise ValueError(how)


def setup(request, label, deps, fail=None, finalized=True):
    node = request.node.nodeid
    param = param_of(request)
    key = (label, node, param)
    count = _setups[key] = _setups.get(key, 0) + 1
    instance = f"{label}|{node}|{param}#{count}"
    closure = {instance}
    for dep in deps:
        closure.update(dep.closure)
    write(
        {
            "kind": "setup" if fail is None else "setup_error",
            "instance": instance,
            "label": label,
            "node": node,
            "param": param,
            "scope": request.scope,
            "test": in_flight(),
            "deps": [dep.instance for dep in deps],
            "finalized": finalized,
        }
    )
    act(fail, "setup|fx|" + instance)
    return Value(instance, sorted(closure))


def teardown(value, fail=None):
    write({"kind": "teardown", "instance": value.instance, "test": in_flight()})
    act(fail, "teardown|fx|" + value.instance)


def finalizer(value, fail=None):
    return lambda: teardown(value, fail)


def start(request):
    received = sorted(
        {
            instance
            for value in request.node.funcargs.values()
            if isinstance(value, Value)
            for instance in value.closure
        }
    )
    write({"kind": "start", "test": request.node.nodeid, "received": received})
    return received


def end(request, received):
    write({"kind": "end", "test": request.node.nodeid, "received": received})


def check(request, how):
    act(how, "call|test|" + request.node.nodeid)


def test_finalizer(request, fail=None):
    nodeid = request.node.nodeid

    def finalize():
        write({"kind": "test_finalizer", "test": nodeid})
        act(fail, "teardown|test|" + nodeid)

    return finalize


def token(request):
    return request.node.nodeid


def path_entry(token):
    return os.path.join(os.sep, "nonexistent", PATH_MARK, token)


def markers(text):
    return MARKERS.findall(text)


def report(report):
    text = report.longreprtext if report.longrepr is not None else ""
    wasxfail = getattr(report, "wasxfail", None)
    lines = [line for line in text.splitlines() if line.strip()]
    # Section name ("Captured stdout call", "Captured log setup"...) -> the
    # markers in it; a report carries the sections of its test's earlier
    # phases too.
    out = {}
    for name, content in report.sections:
        if name.startswith(("Captured stdout", "Captured log")):
            found = markers(content)
            if found:
                out[name] = sorted(found)
    write(
        {
            "kind": "report",
            "test": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "wasxfail": wasxfail,
            "tokens": sorted(set(TOKEN.findall(text + "\\n" + (wasxfail or "")))),
            "summary": lines[-1][:300] if lines else "",
            "out": out,
        }
    )


def warning(warning_message, when, nodeid):
    # Each run has a directory of its own: a path in a message must not
    # make the runs differ.
    text = str(warning_message.message).replace(os.path.dirname(LOG_PATH), "<suite>")
    lines = text.splitlines() or [""]
    message = warning_message.category.__name__ + ": " + lines[0][:300]
    write({"kind": "warning", "test": nodeid, "when": when, "message": message})


def process_state():
    """What tests patch that the whole process shares."""
    cwd = os.getcwd()
    return {
        "SHARED.value": SHARED.value,
        "SHARED_MOCK.value": SHARED_MOCK.value,
        "TABLE": sorted(TABLE.items()),
        "environ " + STATE_ENV: os.environ.get(STATE_ENV),
        # The directory of the run differs between runs; where it went
        # otherwise (a tmp_path) is named after its test.
        "cwd": "start" if cwd == _START_CWD else "moved to " + os.path.basename(cwd),
        "sys.path": sorted(entry for entry in sys.path if PATH_MARK in str(entry)),
        "level of " + STATE_LOGGER: logging.getLogger(STATE_LOGGER).level,
    }


ORIGINAL_STATE = process_state()


def final_state():
    write({"kind": "final_state", "state": process_state(), "original": ORIGINAL_STATE})
'''

#: The start of a suite's root ``conftest.py``: the hooks that record collection,
#: reports and the test each phase runs for.
ROOT_CONFTEST_HEADER: Final = f"""import asyncio

import pytest

import {RECORDER_MODULE} as recorder


def pytest_collection_finish(session):
    recorder.write({{"kind": "collected", "items": [item.nodeid for item in session.items]}})


def pytest_collectreport(report):
    if report.failed:
        error = {{"kind": "collect_error", "node": report.nodeid, "text": report.longreprtext}}
        recorder.write(error)


def pytest_runtest_logstart(nodeid, location):
    recorder.write({{"kind": "logstart", "test": nodeid}})


def pytest_runtest_logfinish(nodeid, location):
    recorder.write({{"kind": "logfinish", "test": nodeid}})


def pytest_runtest_logreport(report):
    recorder.report(report)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    # Runs before pytest tears down whatever is still set up.
    recorder.write({{"kind": "sessionfinish"}})


def pytest_warning_recorded(warning_message, when, nodeid, location):
    recorder.warning(warning_message, when, nodeid)


def pytest_unconfigure(config):
    # After the session's end, when every fixture (monkeypatch's undo
    # included) has been torn down.
    recorder.final_state()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    recorder.set_phase_test(item.nodeid)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    recorder.set_phase_test(item.nodeid)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    recorder.set_phase_test(item.nodeid)
    return (yield)
"""

#: The start of every other generated file.
MODULE_HEADER: Final = f"""import asyncio
import logging
import os
import re
import sys
import unittest.mock
import warnings

import pytest

import {RECORDER_MODULE} as recorder
"""

#: Sleeps of async fixtures and tests: often none, always short.
_SLEEPS: Final = (0, 0, 0, 0.001, 0.002, 0.005, 0.01, 0.02)

Param = int | str


@dataclass(frozen=True)
class GeneratedSuite:
    """One generated suite.

    :param seed: the seed it was generated from.
    :param files: relative path -> file text, ``conftest.py`` and the
        recorder module included.
    :param ini: the text of its ``pytest.ini``.
    :param test_count: how many tests pytest will collect (-1 for a suite
        that was not generated: read back from a directory, or written by hand).
    """

    seed: int
    files: dict[str, str]
    ini: str
    test_count: int


@dataclass(frozen=True)
class _Location:
    """Where fixtures or tests are defined: the root, a package, a module or a
    class. ``path`` is unique (a node id for modules and classes)."""

    kind: str
    path: str
    parent: _Location | None = field(compare=False, repr=False)

    def ancestors(self) -> Iterator[_Location]:
        """This location and every location that encloses it."""
        location: _Location | None = self
        while location is not None:
            yield location
            location = location.parent

    def contains(self, other: _Location) -> bool:
        return any(ancestor == self for ancestor in other.ancestors())

    @property
    def depth(self) -> int:
        return sum(1 for _ in self.ancestors())


@dataclass(frozen=True)
class _Failure:
    """Raise, skip or xfail; ``when`` restricts it to one parameter value."""

    how: str
    when: Param | None = None


@dataclass
class _Fixture:
    name: str
    location: _Location
    scope: str
    is_async: bool
    style: str  # "yield", "finalizer" (return + request.addfinalizer) or "return"
    params: list[Param] | None
    autouse: bool
    setup_failure: _Failure | None
    teardown_failure: _Failure | None
    setup_sleep: float
    teardown_sleep: float
    deps: list[str] = field(default_factory=list)
    dynamic: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.location.path or 'root'}"

    @property
    def requests_super(self) -> bool:
        return self.name in self.deps


@dataclass
class _Test:
    name: str
    location: _Location
    is_async: bool
    args: list[str]
    usefixtures: list[str]
    indirect: tuple[str, list[str]] | None
    direct: list[int] | None
    marks: list[str]
    failure: _Failure | None
    finalizer_failure: _Failure | None
    has_finalizer: bool
    sleep: float
    state: _StateActions | None = None


@dataclass
class _StateActions:
    """What a test does to state the whole process shares, in order.

    :param steps: names from :data:`_STEP_FIXTURES`, each rendered as a few
        lines that change something and at once check that the change is
        seen (never across an ``await``: a neighbour's patch may be what is
        seen then), or check what only the test itself can have caused.
    :param pauses: the ``asyncio.sleep`` before each step (async tests; None
        for no await).
    :param fixture: ``"sync"`` or ``"async"`` for a function-scoped fixture of
        the test's own that prints in its setup and its teardown.
    """

    steps: list[str]
    pauses: list[float | None]
    fixture: str | None


@dataclass
class _Suite:
    root: _Location
    packages: list[_Location]
    modules: list[_Location]
    classes: list[_Location]
    fixtures: dict[str, list[_Fixture]]
    tests: list[_Test]
    xfail_strict: bool

    def chain(self, name: str, location: _Location) -> list[_Fixture]:
        """The definitions of ``name`` visible from ``location``, farthest
        first (pytest uses the last and reaches the others through a fixture
        that requests its own name)."""
        visible = [d for d in self.fixtures.get(name, []) if d.location.contains(location)]
        return sorted(visible, key=lambda d: d.location.depth)

    def closure(self, test: _Test) -> set[str]:
        """The fixture names pytest sets up for ``test`` before its body."""
        autouse = {
            d.name
            for definitions in self.fixtures.values()
            for d in definitions
            if d.autouse and d.location.contains(test.location)
        }
        pending = [*autouse, *test.args, *test.usefixtures]
        seen: set[str] = set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            for definition in reversed(self.chain(name, test.location)):
                pending.extend(dep for dep in definition.deps if dep != name)
                if not definition.requests_super:
                    break
        return seen

    def item_count(self, test: _Test) -> int:
        """How many items pytest makes of ``test``: one per combination of
        its own and its fixtures' parameters."""
        count = len(test.direct) if test.direct else 1
        for name in self.closure(test):
            if test.indirect is not None and test.indirect[0] == name:
                count *= len(test.indirect[1])
                continue
            for definition in reversed(self.chain(name, test.location)):
                if definition.params is not None:
                    count *= len(definition.params)
                    break
                if not definition.requests_super:
                    break
        return count

    def test_count(self) -> int:
        return sum(self.item_count(test) for test in self.tests)


def generate_suite(seed: int) -> GeneratedSuite:
    """The suite for ``seed``: always the same files for the same seed."""
    attempt = 0
    while True:
        # A string seed hashes with SHA-512, independent of PYTHONHASHSEED.
        rng = random.Random(f"differential:{seed}:{attempt}")
        suite = _build(rng)
        count = suite.test_count()
        if MIN_TESTS <= count <= MAX_TESTS:
            _declare_resources(random.Random(f"differential-resources:{seed}"), suite)
            _declare_state(random.Random(f"differential-state:{seed}"), suite)
            return GeneratedSuite(seed, _render(suite, seed), _render_ini(suite), count)
        attempt += 1


def _declare_resources(rng: random.Random, suite: _Suite) -> None:
    """Mark some async tests as holders of resources or members of groups.

    Declarations change only who overlaps whom, never what a test sees, so
    the outcomes must stay those of the sequential run. A generator of its
    own keeps the rest of each seed's suite as it was.
    """
    for test in suite.tests:
        if not test.is_async:
            continue
        roll = rng.random()
        if roll < 0.2:
            names = rng.sample(["r0", "r1", "r2"], rng.choice([1, 1, 2]))
            mode = rng.choice(["exclusive", "exclusive", "shared"])
            arguments = ", ".join(repr(name) for name in names)
            test.marks.append(f"pytest.mark.resource({arguments}, mode={mode!r})")
        elif roll < 0.3 and "pytest.mark.isolated" not in test.marks:
            test.marks.append(f"pytest.mark.concurrent(group={rng.choice(['g0', 'g1'])!r})")


#: Steps that patch what the whole process shares, through ``monkeypatch``.
_PATCH_STEPS: Final = ("setattr", "setenv", "setitem", "chdir", "syspath")
#: How a test with state actions warns (at most one way each, so that what
#: ``recwarn`` or ``pytest.warns`` catches is known) -> weight.
_WARNING_STEPS: Final = {
    "none": 8,
    "warn": 3,
    "warn-twice": 2,
    "warns": 2,
    "warn-error": 1,
    "recwarn": 2,
}
#: Step -> the fixtures it needs.
_STEP_FIXTURES: Final[dict[str, tuple[str, ...]]] = {
    "setattr": ("monkeypatch",),
    "setenv": ("monkeypatch",),
    "setitem": ("monkeypatch",),
    "chdir": ("monkeypatch", "tmp_path"),
    "syspath": ("monkeypatch",),
    "caplog": ("caplog",),
    "caplog-check": ("caplog",),
    "print": (),
    "capsys-check": ("capsys",),
    "warn": (),
    "warn-twice": (),
    "warns": (),
    "warn-error": (),
    "recwarn": ("recwarn",),
    "recwarn-check": ("recwarn",),
    "mock": (),
}
#: A check step -> the step whose effect it checks.
_CHECKS: Final = {"caplog-check": "caplog", "recwarn-check": "recwarn"}
#: Awaits before a step of an async test; a check of what the test did
#: always comes after one, since what it checks must survive the neighbours.
_PAUSES: Final = (None, 0, 0, 0.001, 0.002, 0.005)
_CHECK_PAUSES: Final = (0, 0.001, 0.002)


def _declare_state(rng: random.Random, suite: _Suite) -> None:
    """Give some tests state actions: patches of process-wide state,
    ``caplog`` levels, output, warnings, ``unittest.mock.patch``.

    Each action works on values of the test's own (its node id), so the
    outcomes, the report sections and the warnings must stay those of the
    sequential run, and the process must end as it started. A generator of
    its own keeps the rest of each seed's suite as it was.
    """
    for test in suite.tests:
        if rng.random() >= 0.3:
            continue
        producers = [step for step in _PATCH_STEPS if rng.random() < 0.3]
        if rng.random() < 0.25:
            producers.append("caplog")
        producers += ["print"] * rng.choice([0, 0, 1, 2])
        warning = _weighted(rng, _WARNING_STEPS)
        if warning not in ("none", "warn-error"):
            producers.append(warning)
        # unittest.mock.patch restores what it found, which may be a
        # neighbour's patch: the documented fix is to run such tests alone
        # (and a test may not be both isolated and in a group).
        if rng.random() < 0.08 and not any(
            mark.startswith("pytest.mark.concurrent") for mark in test.marks
        ):
            producers.append("mock")
            if "pytest.mark.isolated" not in test.marks:
                test.marks.append("pytest.mark.isolated")
        capsys = rng.random() < 0.3
        if not producers and not capsys and warning == "none":
            producers.append("print")
        rng.shuffle(producers)
        checks = [check for check, producer in _CHECKS.items() if producer in producers]
        if capsys:
            checks.append("capsys-check")
        rng.shuffle(checks)
        steps = producers + checks
        if warning == "warn-error":
            # The warning fails the test where it is issued: nothing after
            # it runs.
            steps.append("warn-error")
            test.marks.append('pytest.mark.filterwarnings("error::UserWarning")')
        pauses: list[float | None] = [
            rng.choice(_CHECK_PAUSES if step.endswith("-check") else _PAUSES)
            if test.is_async
            else None
            for step in steps
        ]
        fixture = rng.choice(["sync", "async"]) if rng.random() < 0.2 else None
        test.state = _StateActions(steps, pauses, fixture)


def write_suite(suite: GeneratedSuite, directory: Path) -> None:
    """Write the suite's files and ``pytest.ini`` under ``directory``."""
    for relative, text in {**suite.files, "pytest.ini": suite.ini}.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# -- building the model ------------------------------------------------------


def _weighted(rng: random.Random, choices: dict[str, int]) -> str:
    return rng.choices(list(choices), weights=list(choices.values()))[0]


def _build(rng: random.Random) -> _Suite:
    root = _Location("root", "", None)
    packages: list[_Location] = []
    for letter in "ab"[: rng.choice([0, 1, 1, 2])]:
        package = _Location("package", f"pkg_{letter}", root)
        packages.append(package)
        if rng.random() < 0.4:
            packages.append(_Location("package", f"{package.path}/sub", package))
    # Every package holds a module (deepest first), the rest go anywhere.
    homes = sorted(packages, key=lambda p: -p.depth)
    homes += [rng.choice([root, *packages]) for _ in range(rng.randint(1, 3))]
    modules: list[_Location] = []
    classes: list[_Location] = []
    for index, home in enumerate(homes):
        path = f"{home.path}/test_m{index}.py" if home.path else f"test_m{index}.py"
        module = _Location("module", path, home)
        modules.append(module)
        for class_index in range(rng.choice([0, 0, 1, 1, 2])):
            classes.append(_Location("class", f"{path}::TestC{class_index}", module))
    suite = _Suite(root, packages, modules, classes, {}, [], rng.random() < 0.3)
    _add_fixtures(rng, suite)
    _add_tests(rng, suite)
    return suite


def _allowed_scopes(location: _Location) -> list[str]:
    # A fixture method of a class only makes sense for the class or its tests.
    return ["function", "class"] if location.kind == "class" else list(SCOPES)


def _new_fixture(rng: random.Random, name: str, location: _Location, scope: str) -> _Fixture:
    params: list[Param] | None = None
    if rng.random() < (0.15 if scope == "function" else 0.3):
        params = list(rng.choice([[0, 1], [0, 1, 2], ["a", "b"]]))
    wide = scope != "function"

    def failure(probability: float) -> _Failure | None:
        if rng.random() >= probability:
            return None
        how = _weighted(rng, {"raise": 6, "skip": 2, "xfail": 2})
        when = rng.choice(params) if params is not None and rng.random() < 0.6 else None
        return _Failure(how, when)

    return _Fixture(
        name=name,
        location=location,
        scope=scope,
        is_async=rng.random() < 0.6,
        style=_weighted(rng, {"yield": 5, "finalizer": 3, "return": 2}),
        params=params,
        autouse=rng.random() < 0.12,
        setup_failure=failure(0.05 if wide else 0.1),
        teardown_failure=failure(0.08 if wide else 0.1),
        setup_sleep=rng.choice(_SLEEPS),
        teardown_sleep=rng.choice(_SLEEPS),
    )


def _add_fixtures(rng: random.Random, suite: _Suite) -> None:
    places = [suite.root, *suite.packages, *suite.modules, *suite.classes]
    names = [f"fx{index}" for index in range(rng.randint(3, 8))]
    for name in names:
        scope = _weighted(
            rng, {"function": 30, "class": 12, "module": 20, "package": 13, "session": 25}
        )
        homes = [p for p in places if scope in _allowed_scopes(p)]
        home = suite.root if rng.random() < 0.5 else rng.choice(homes)
        base = _new_fixture(rng, name, home, scope)
        definitions = [base]
        if rng.random() < 0.3:
            # Overrides deeper down, shallowest first so that a fixture that
            # requests its own name finds the definition above it.
            inner = [p for p in places if base.location.contains(p) and p != base.location]
            for place in sorted(
                rng.sample(inner, min(len(inner), rng.choice([1, 1, 2]))), key=lambda p: p.depth
            ):
                above = [d for d in definitions if d.location.contains(place)]
                requests_super = rng.random() < 0.6
                # Requesting the definition above needs it to be at least as wide.
                ceiling = min(_RANK[d.scope] for d in above) if requests_super else len(SCOPES)
                scopes = [s for s in _allowed_scopes(place) if _RANK[s] <= ceiling]
                if not scopes or any(d.location == place for d in definitions):
                    continue
                override = _new_fixture(rng, name, place, rng.choice(scopes))
                if requests_super:
                    override.deps.append(name)
                definitions.append(override)
        suite.fixtures[name] = definitions
    _add_dependencies(rng, suite, names)


def _param_free(suite: _Suite, name: str, known: dict[str, bool]) -> bool:
    """Whether no definition of ``name`` or of anything it needs has params:
    only such fixtures can be requested with ``getfixturevalue`` (pytest needs
    a parameter of every parametrized fixture before the test is set up)."""
    if name not in known:
        known[name] = all(
            d.params is None
            and all(_param_free(suite, dep, known) for dep in (*d.deps, *d.dynamic) if dep != name)
            for d in suite.fixtures[name]
        )
    return known[name]


def _add_dependencies(rng: random.Random, suite: _Suite, names: list[str]) -> None:
    narrowest = {name: min(_RANK[d.scope] for d in suite.fixtures[name]) for name in names}
    param_free: dict[str, bool] = {}
    for index, name in enumerate(names):
        for definition in suite.fixtures[name]:
            # Only earlier names (no cycles), visible where the definition is
            # (its base definition encloses it), and never of a narrower scope
            # than the definition in any place it may resolve to.
            eligible = [
                other
                for other in names[:index]
                if suite.fixtures[other][0].location.contains(definition.location)
                and narrowest[other] >= _RANK[definition.scope]
            ]
            count = min(len(eligible), rng.choice([0, 0, 1, 1, 1, 2, 2]))
            definition.deps.extend(rng.sample(eligible, count))
            if not definition.is_async and rng.random() < 0.5:
                dynamic = [
                    other
                    for other in eligible
                    if other not in definition.deps and _param_free(suite, other, param_free)
                ]
                if dynamic:
                    definition.dynamic.append(rng.choice(dynamic))


def _add_tests(rng: random.Random, suite: _Suite) -> None:
    number = 0
    for holder in [*suite.modules, *suite.classes]:
        has_classes = any(c.parent == holder for c in suite.classes)
        low = 0 if holder.kind == "module" and has_classes else 1
        for _ in range(rng.randint(low, 3)):
            suite.tests.append(_new_test(rng, suite, holder, f"test_t{number}"))
            number += 1


def _new_test(rng: random.Random, suite: _Suite, location: _Location, name: str) -> _Test:
    visible = [n for n, defs in suite.fixtures.items() if defs[0].location.contains(location)]
    args = rng.sample(visible, min(len(visible), rng.choice([0, 1, 1, 2, 2, 3])))
    unused = [n for n in visible if n not in args]
    usefixtures = [rng.choice(unused)] if unused and rng.random() < 0.2 else []
    indirect = None
    if args and rng.random() < 0.25:
        # Prefer wide fixtures: an indirect value of a shared fixture that
        # other tests use plainly is where lifetimes get interesting.
        weights = [1 + _RANK[suite.chain(n, location)[-1].scope] for n in args]
        target = rng.choices(args, weights=weights)[0]
        indirect = (target, list(rng.choice([["i0"], ["i0", "i1"], ["i1", "i0", "i2"]])))
    direct = list(rng.choice([[0, 1], [0, 1, 2]])) if rng.random() < 0.3 else None
    is_async = rng.random() < 0.75
    marks = []
    roll = rng.random()
    if roll < 0.08:
        marks.append(f'pytest.mark.xfail(strict={rng.random() < 0.5}, reason="xfail mark")')
    elif roll < 0.11:
        marks.append('pytest.mark.skip(reason="skip mark")')
    elif roll < 0.17:
        marks.append(f'pytest.mark.skipif({rng.random() < 0.5}, reason="skipif mark")')
    if is_async and rng.random() < 0.06:
        marks.append("pytest.mark.isolated")

    def failure(probability: float, hows: dict[str, int]) -> _Failure | None:
        if rng.random() >= probability:
            return None
        when = rng.choice(direct) if direct is not None and rng.random() < 0.6 else None
        return _Failure(_weighted(rng, hows), when)

    return _Test(
        name=name,
        location=location,
        is_async=is_async,
        args=args,
        usefixtures=usefixtures,
        indirect=indirect,
        direct=direct,
        marks=marks,
        failure=failure(0.2, {"fail": 6, "skip": 2, "xfail": 2}),
        finalizer_failure=failure(0.5, {"raise": 6, "skip": 2, "xfail": 2}),
        has_finalizer=rng.random() < 0.12,
        sleep=rng.choice(_SLEEPS),
    )


# -- rendering ---------------------------------------------------------------


def _fixture_failure(failure: _Failure | None) -> str:
    if failure is None:
        return "None"
    if failure.when is None:
        return repr(failure.how)
    return f"recorder.on_param(request, {failure.when!r}, {failure.how!r})"


def _test_failure(failure: _Failure | None) -> str:
    if failure is None:
        return "None"
    if failure.when is None:
        return repr(failure.how)
    return f"{failure.how!r} if n == {failure.when!r} else None"


def _render_fixture(fixture: _Fixture) -> list[str]:
    arguments = ["request", *fixture.deps]
    if fixture.location.kind == "class":
        arguments.insert(0, "self")
    options = [f"scope={fixture.scope!r}"]
    if fixture.params is not None:
        options.append(f"params={fixture.params!r}")
    if fixture.autouse:
        options.append("autouse=True")
    keyword = "async def" if fixture.is_async else "def"
    body = [f"deps = [{', '.join(fixture.deps)}]"]
    body += [f"deps.append(request.getfixturevalue({name!r}))" for name in fixture.dynamic]
    if fixture.is_async:
        body.append(f"await asyncio.sleep({fixture.setup_sleep})")
    finalized = fixture.style != "return"
    body.append(
        f"value = recorder.setup(request, {fixture.label!r}, deps, "
        f"fail={_fixture_failure(fixture.setup_failure)}, finalized={finalized})"
    )
    teardown_failure = _fixture_failure(fixture.teardown_failure)
    if fixture.style == "yield":
        body.append("yield value")
        if fixture.is_async:
            body.append(f"await asyncio.sleep({fixture.teardown_sleep})")
        body.append(f"recorder.teardown(value, fail={teardown_failure})")
    elif fixture.style == "finalizer":
        body.append(f"request.addfinalizer(recorder.finalizer(value, fail={teardown_failure}))")
        body.append("return value")
    else:
        body.append("return value")
    return [
        f"@pytest.fixture({', '.join(options)})",
        f"{keyword} {fixture.name}({', '.join(arguments)}):",
        *(f"    {line}" for line in body),
    ]


def _render_test(test: _Test) -> list[str]:
    decorators = []
    if test.direct is not None:
        decorators.append(f'pytest.mark.parametrize("n", {test.direct!r})')
    if test.indirect is not None:
        name, values = test.indirect
        decorators.append(f"pytest.mark.parametrize({name!r}, {values!r}, indirect=True)")
    if test.usefixtures:
        decorators.append(f"pytest.mark.usefixtures({', '.join(map(repr, test.usefixtures))})")
    decorators += test.marks
    arguments = ["request", *test.args]
    if test.direct is not None:
        arguments.append("n")
    if test.state is not None:
        arguments += _state_fixtures(test, test.state)
    if test.location.kind == "class":
        arguments.insert(0, "self")
    body = ["received = recorder.start(request)"]
    if test.has_finalizer:
        body.append(
            "request.addfinalizer(recorder.test_finalizer("
            f"request, fail={_test_failure(test.finalizer_failure)}))"
        )
    if test.state is not None:
        body += _render_state(test.state, test.is_async)
    if test.is_async:
        body.append(f"await asyncio.sleep({test.sleep})")
    body.append("recorder.end(request, received)")
    body.append(f"recorder.check(request, {_test_failure(test.failure)})")
    keyword = "async def" if test.is_async else "def"
    return [
        *(f"@{decorator}" for decorator in decorators),
        f"{keyword} {test.name}({', '.join(arguments)}):",
        *(f"    {line}" for line in body),
    ]


def _output_fixture(test: _Test) -> str:
    return f"dt_out_{test.name}"


def _state_fixtures(test: _Test, state: _StateActions) -> list[str]:
    """The fixtures a test's state actions need. Its own printing fixture
    comes before ``capsys``, so that pytest sets it up first and its output
    goes to the report, not to ``capsys``."""
    names = [_output_fixture(test)] if state.fixture is not None else []
    for step in state.steps:
        names += [name for name in _STEP_FIXTURES[step] if name not in names]
    return names


def _render_output_fixture(test: _Test, kind: str) -> list[str]:
    """A function-scoped fixture of ``test``'s own that prints in its setup
    and in its teardown; ``kind`` is ``"sync"`` or ``"async"``."""
    is_async = kind == "async"
    pause = ["await asyncio.sleep(0)"] if is_async else []
    body = [
        *pause,
        'print(f"OUT<{recorder.token(request)}:fixture-setup>")',
        "yield",
        *pause,
        'print(f"OUT<{recorder.token(request)}:fixture-teardown>")',
    ]
    arguments = ["self", "request"] if test.location.kind == "class" else ["request"]
    keyword = "async def" if is_async else "def"
    return [
        "@pytest.fixture",
        f"{keyword} {_output_fixture(test)}({', '.join(arguments)}):",
        *(f"    {line}" for line in body),
    ]


def _render_state(state: _StateActions, is_async: bool) -> list[str]:
    """The lines of a test body that carry out ``state``'s steps."""
    lines = ["token = recorder.token(request)"]
    printed: list[str] = []
    for step, pause in zip(state.steps, state.pauses, strict=True):
        if is_async and pause is not None:
            lines.append(f"await asyncio.sleep({pause})")
        lines += _render_step(step, is_async, printed)
    return lines


def _render_step(step: str, is_async: bool, printed: list[str]) -> list[str]:
    """One step's lines; ``printed`` collects the markers the body printed,
    which a ``capsys`` check expects."""
    wait = ["    await asyncio.sleep(0.001)"] if is_async else []
    if step == "setattr":
        return [
            'monkeypatch.setattr(recorder.SHARED, "value", token)',
            "assert recorder.SHARED.value == token",
        ]
    if step == "setenv":
        return [
            "monkeypatch.setenv(recorder.STATE_ENV, token)",
            "assert os.environ[recorder.STATE_ENV] == token",
        ]
    if step == "setitem":
        return [
            'monkeypatch.setitem(recorder.TABLE, "key", token)',
            'assert recorder.TABLE["key"] == token',
        ]
    if step == "chdir":
        return [
            "monkeypatch.chdir(tmp_path)",
            "assert os.path.samefile(os.getcwd(), tmp_path)",
        ]
    if step == "syspath":
        return [
            "monkeypatch.syspath_prepend(recorder.path_entry(token))",
            "assert sys.path[0] == recorder.path_entry(token)",
        ]
    if step == "caplog":
        return [
            "caplog.set_level(logging.DEBUG, logger=recorder.STATE_LOGGER)",
            "assert logging.getLogger(recorder.STATE_LOGGER).level == logging.DEBUG",
            'logging.getLogger(recorder.STATE_LOGGER).debug("LOG<%s:log>", token)',
        ]
    if step == "caplog-check":
        return ['assert f"LOG<{token}:log>" in caplog.text']
    if step == "print":
        marker = f"OUT<{{token}}:body{len(printed)}>"
        printed.append(marker)
        return [f'print(f"{marker}")']
    if step == "capsys-check":
        expected = ", ".join(f'f"{marker}"' for marker in printed)
        return [f"assert recorder.markers(capsys.readouterr().out) == [{expected}]"]
    if step == "warn":
        return ['warnings.warn(f"W<{token}:warn>")']
    if step == "warn-twice":
        # The "default" action shows a warning once per test and location.
        return ["for _ in range(2):", '    warnings.warn(f"W<{token}:twice>")']
    if step == "warns":
        return [
            'with pytest.warns(UserWarning, match=re.escape(f"W<{token}:warns>")):',
            *wait,
            '    warnings.warn(f"W<{token}:warns>")',
        ]
    if step == "warn-error":
        return ['warnings.warn(f"W<{token}:error>")']
    if step == "recwarn":
        return ['warnings.warn(f"W<{token}:recwarn>")']
    if step == "recwarn-check":
        return [
            'mine = [str(w.message) for w in recwarn if str(w.message).startswith("W<")]',
            'assert mine == [f"W<{token}:recwarn>"]',
        ]
    if step == "mock":
        return [
            'with unittest.mock.patch.object(recorder.SHARED_MOCK, "value", token):',
            "    assert recorder.SHARED_MOCK.value == token",
            *wait,
        ]
    raise ValueError(step)


def _test_blocks(test: _Test) -> list[list[str]]:
    """A test, after the fixture of its own that prints, if it has one."""
    if test.state is not None and test.state.fixture is not None:
        return [_render_output_fixture(test, test.state.fixture), _render_test(test)]
    return [_render_test(test)]


def _blocks(blocks: Sequence[list[str]], indent: str = "") -> list[str]:
    lines: list[str] = []
    for block in blocks:
        lines += ["", ""] if not indent else [""]
        lines += [f"{indent}{line}" for line in block]
    return lines


def _fixtures_at(suite: _Suite, location: _Location) -> list[list[str]]:
    return [
        _render_fixture(d)
        for definitions in suite.fixtures.values()
        for d in definitions
        if d.location == location
    ]


def _render(suite: _Suite, seed: int) -> dict[str, str]:
    banner = f'"""Generated by tests/differential/generator.py from seed {seed}."""\n\n'
    files = {f"{RECORDER_MODULE}.py": RECORDER_SOURCE}
    root_lines = _blocks(_fixtures_at(suite, suite.root))
    files["conftest.py"] = banner + ROOT_CONFTEST_HEADER + "\n".join(root_lines) + "\n"
    for package in suite.packages:
        files[f"{package.path}/__init__.py"] = ""
        lines = _blocks(_fixtures_at(suite, package))
        files[f"{package.path}/conftest.py"] = banner + MODULE_HEADER + "\n".join(lines) + "\n"
    for module in suite.modules:
        blocks = _fixtures_at(suite, module)
        blocks += [block for t in suite.tests if t.location == module for block in _test_blocks(t)]
        lines = _blocks(blocks)
        for cls in (c for c in suite.classes if c.parent == module):
            members = _fixtures_at(suite, cls)
            members += [
                block for t in suite.tests if t.location == cls for block in _test_blocks(t)
            ]
            lines += ["", "", f"class {cls.path.rsplit('::', 1)[1]}:", *_blocks(members, "    ")]
        files[module.path] = banner + MODULE_HEADER + "\n".join(lines) + "\n"
    return files


def _render_ini(suite: _Suite) -> str:
    # No fixture makes a test run alone: tests that use monkeypatch overlap,
    # which is what the state actions are there to try.
    return (
        f"[pytest]\nxfail_strict = {str(suite.xfail_strict).lower()}\n"
        "concurrently_isolated_fixtures =\n"
    )
