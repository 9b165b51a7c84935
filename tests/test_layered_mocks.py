"""pytest-mock's ``mocker`` in overlapping tests: each patch's stop takes out
that patch alone, whatever order the tests end in, and nothing leaks; one
test at a time, it behaves as pytest-mock's own."""

from __future__ import annotations

import colorsys
import os
import sys
import unittest.mock

import pytest
from conftest import read_events

pytest.importorskip("pytest_mock")

from pytest_mock import MockerFixture

from pytest_concurrently._pytest_adapter.layered_mocks import LayeredMockerFixture
from pytest_concurrently._pytest_adapter.layered_patches import patched_targets

INI = "[pytest]\nconcurrently_isolated_fixtures =\n"

SUITE = """
import asyncio
import colorsys
import os
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

from pytest_concurrently._pytest_adapter.layered_patches import patched_targets

REAL_FUNCTION = colorsys.rgb_to_hsv
# The session around this one (pytester's) may have patches of its own.
TARGETS_BEFORE = patched_targets()
TABLE = {{"key": "original", "other": "original"}}
CLEARED = {{"keep": "original"}}
SPIES = {{}}

class Holder:
    value = "original"

class Child(Holder):
    pass

class Multi:
    x = "original"
    y = "original"

class Context:
    value = "original"

class Spied:
    def method(self):
        return "original"

REAL_METHOD = vars(Spied)["method"]

@pytest.fixture
def witness(request):
    yield
    record(request.node.callspec.id, "undone")

@pytest.mark.parametrize(
    ("name", "start", "end"), [("a", 0.0, {a_end}), ("b", 0.05, {b_end}), ("c", 0.1, {c_end})],
    ids=["a", "b", "c"],
)
async def test_patches(witness, mocker, name, start, end):
    await asyncio.sleep(start)
    mocker.patch("colorsys.rgb_to_hsv", lambda *args: name)
    mocker.patch.object(Holder, "value", name)
    mocker.patch.object(Child, "value", name)
    mocker.patch.multiple(Multi, x=name, y=name)
    mocker.patch.context_manager(Context, "value", name)
    mocker.patch.dict(TABLE, {{"key": name}})
    mocker.patch.dict(os.environ, {{"LAYERED_MOCK": name}})
    mocker.patch.dict(CLEARED, {{"key": name}}, clear=True)
    # Two spies of one method cannot be in place at once, with or without
    # layers (pytest-mock cannot autospec a spy): one test spies, the others
    # patch the same method.
    if name == "a":
        SPIES[name] = mocker.spy(Spied, "method")
    else:
        SPIES[name] = mocker.patch.object(Spied, "method", lambda self: name)
    record(name, "patched")
    await asyncio.sleep(end - start)
    spied = next((owner for owner, spy in SPIES.items() if vars(Spied)["method"] is spy), "nobody")
    seen = [
        colorsys.rgb_to_hsv(0, 0, 0), Holder.value, Child.value, Multi.x, Multi.y,
        Context.value, TABLE.get("key"), os.environ.get("LAYERED_MOCK"), spied,
    ]
    record(name, "end", seen=seen, cleared=dict(CLEARED))

@pytest.mark.isolated
async def test_zz_everything_is_back():
    assert colorsys.rgb_to_hsv is REAL_FUNCTION
    assert Holder.value == "original"
    assert "value" not in vars(Child)
    assert (Multi.x, Multi.y, Context.value) == ("original", "original", "original")
    assert list(TABLE.items()) == [("key", "original"), ("other", "original")]
    assert "LAYERED_MOCK" not in os.environ
    assert CLEARED == {{"keep": "original"}}
    assert vars(Spied)["method"] is REAL_METHOD
    assert patched_targets() == TARGETS_BEFORE
"""

ORDERS = pytest.mark.parametrize(
    ("a_end", "b_end", "c_end"),
    [(0.4, 0.2, 0.3), (0.2, 0.3, 0.4), (0.4, 0.3, 0.2)],
    ids=["middle-first", "in-order", "reverse"],
)


@ORDERS
@pytest.mark.usefixtures("recorder")
def test_overlapping_mocks_come_off_in_any_order(
    pytester: pytest.Pytester, a_end: float, b_end: float, c_end: float
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(SUITE.format(a_end=a_end, b_end=b_end, c_end=c_end))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    # Replay the patches and stops in the order they happened: at each
    # test's end, what it saw is the newest patch still in place.
    in_place: list[str] = []
    for event in read_events(pytester):
        if event.what == "patched":
            in_place.append(event.name)
        elif event.what == "undone":
            in_place.remove(event.name)
        elif event.what == "end":
            assert event.extra["seen"] == [in_place[-1]] * 9, (event, in_place)
            assert event.extra["cleared"] == {"key": in_place[-1]}, (event, in_place)
    assert in_place == []
    ends = [event.name for event in read_events(pytester) if event.what == "end"]
    expected = [name for _, name in sorted([(a_end, "a"), (b_end, "b"), (c_end, "c")])]
    assert ends == expected  # the tests did overlap and end in the order chosen


@pytest.mark.usefixtures("recorder")
def test_pytest_mocks_own_mocker_would_leak(pytester: pytest.Pytester) -> None:
    # The suite above, with this plugin's mocker fixtures blocked: the first
    # test to end puts the original back under the others, and each later
    # stop puts back the value of a test that has ended.
    pytester.makeini(INI)
    pytester.makepyfile(SUITE.format(a_end=0.2, b_end=0.3, c_end=0.4))
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:concurrently-mockers")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED *test_zz_everything_is_back*"])
    seen = {
        event.name: event.extra["seen"] for event in read_events(pytester) if event.what == "end"
    }
    assert seen["c"] != ["c"] * 9


def test_the_layered_fixtures_are_the_ones_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_concurrently._pytest_adapter.layered_mocks import LayeredMockerFixture

class TestScopes:
    def test_every_scope(self, mocker, class_mocker, module_mocker, package_mocker,
                         session_mocker):
        for fixture in (mocker, class_mocker, module_mocker, package_mocker, session_mocker):
            assert isinstance(fixture, LayeredMockerFixture)
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "plugins",
    [
        ["-p", "pytest_concurrently.plugin", "-p", "pytest_mock"],
        ["-p", "pytest_mock", "-p", "pytest_concurrently.plugin"],
    ],
    ids=["ours-first", "pytest-mock-first"],
)
def test_the_layered_mocker_wins_whichever_plugin_loads_first(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, plugins: list[str]
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        """
from pytest_concurrently._pytest_adapter.layered_mocks import LayeredMockerFixture

def test_layered(mocker):
    assert isinstance(mocker, LayeredMockerFixture)
"""
    )
    pytester.runpytest("-p", "no:cacheprovider", *plugins).assert_outcomes(passed=1)


def test_the_plugin_works_without_pytest_mock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
def test_plain(monkeypatch):
    monkeypatch.setenv("LAYERED_MOCK_ABSENT", "1")
"""
    )
    # A process in which pytest-mock cannot be imported.
    pytester.makepyfile(
        run="""
import sys

import pytest

class NoPytestMock:
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] == "pytest_mock":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoPytestMock())
import pytest_concurrently.plugin as plugin

assert not plugin._HAS_PYTEST_MOCK
sys.exit(pytest.main(["-p", "no:pytest_mock", "-p", "no:cacheprovider", "test_plain.py"]))
"""
    )
    result = pytester.run(sys.executable, "run.py")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*1 passed*"])


def test_no_mocker_without_pytest_mock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
def test_uses_mocker(mocker):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:pytest_mock")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mocker' not found*"])


WIDER_SUITE_A = """
import asyncio
import pytest
from recorder import record
from shared import Holder

pytestmark = pytest.mark.concurrent

async def test_long(mocker):
    await asyncio.sleep(0.1)
    mocker.patch.object(Holder, "value", "a")
    await asyncio.sleep(0.5)
    record("a", "end", seen=Holder.value)
"""

WIDER_SUITE_B = """
import asyncio
import pytest
from recorder import record
from shared import Holder

pytestmark = pytest.mark.concurrent

@pytest.fixture(scope="module", autouse=True)
def patched_for_the_module(module_mocker):
    module_mocker.patch.object(Holder, "value", "module")
    yield
    record("b", "module-undone")

async def test_short():
    await asyncio.sleep(0.2)
    record("b", "end", seen=Holder.value)
"""

WIDER_SUITE_Z = """
import pytest
from shared import Holder

@pytest.mark.isolated
def test_zz_back():
    assert Holder.value == "original"
"""


@pytest.mark.usefixtures("recorder")
def test_a_module_mocker_patch_is_a_layer_too(pytester: pytest.Pytester) -> None:
    # Module b's patch starts before test a's and is stopped while a is in
    # flight: as a layer under a's, it leaves a's patch in place, and after
    # both the attribute is the original.
    pytester.makeini(INI)
    pytester.makepyfile(
        shared="class Holder:\n    value = 'original'\n",
        test_a=WIDER_SUITE_A,
        test_b=WIDER_SUITE_B,
        test_z=WIDER_SUITE_Z,
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "test_a.py", "test_b.py", "test_z.py")
    result.assert_outcomes(passed=3)
    events = {(event.name, event.what): event for event in read_events(pytester)}
    assert events[("b", "end")].extra["seen"] == "a"
    assert events[("a", "end")].extra["seen"] == "a"
    # The module's patch did come off while a was in flight.
    assert events[("b", "module-undone")].t < events[("a", "end")].t


# One test at a time, the layered fixture gives what pytest-mock's gives.


class Holder:
    value = "original"


class Child(Holder):
    pass


def _scenario(mocker: MockerFixture) -> list[object]:
    try:
        return _steps(mocker)
    finally:
        mocker.stopall()


def _steps(mocker: MockerFixture) -> list[object]:
    seen: list[object] = []
    table = {"a": 1, "b": 2, "c": 3}

    def shown(value: object) -> object:
        return "a mock" if isinstance(value, unittest.mock.Mock) else value

    def look() -> None:
        seen.append((Holder.value, "value" in vars(Child), shown(Child.value), list(table.items())))

    # Nested patches of one target, the newest stopped first.
    mocker.patch.object(Holder, "value", "outer")
    inner = mocker.patch.object(Holder, "value", new_callable=lambda: "inner")
    mocker.patch.object(Child, "value", "child-outer")
    child_inner = mocker.patch.object(Child, "value")
    look()
    mocker.stop(child_inner)
    look()
    mocker.stop(inner)
    look()
    # patch.dict with clear, and a patch.dict in it that code changes under.
    mocker.patch.dict(table, {"z": 26}, clear=True)
    look()
    guard = mocker.patch.dict(table, {"y": 25})
    guard["x"] = 24
    del guard["z"]
    look()
    mocker.stopall()
    look()
    # A spy and patch.multiple, stopped one by one and by stopall.
    spy = mocker.spy(colorsys, "rgb_to_hsv")
    seen.append(colorsys.rgb_to_hsv(0, 0, 0))
    seen.append(spy.call_count)
    mocker.resetall()
    seen.append(spy.call_count)
    mocker.patch.multiple(Child, value="multiple", other="new", create=True)
    seen.append((Child.value, getattr(Child, "other", None)))
    mocker.stop(spy)
    seen.append(colorsys.rgb_to_hsv is REAL_RGB_TO_HSV)
    mocker.patch.dict(os.environ, {"LAYERED_MOCK_SEQUENTIAL": "1"})
    seen.append(os.environ.get("LAYERED_MOCK_SEQUENTIAL"))
    mocker.stopall()
    mocker.stopall()
    look()
    seen.append((hasattr(Child, "other"), "LAYERED_MOCK_SEQUENTIAL" in os.environ))
    return seen


REAL_RGB_TO_HSV = colorsys.rgb_to_hsv


def test_one_test_at_a_time_it_is_pytest_mock(pytestconfig: pytest.Config) -> None:
    environ = dict(os.environ)
    targets = patched_targets()
    expected = _scenario(MockerFixture(pytestconfig))
    assert dict(os.environ) == environ
    assert _scenario(LayeredMockerFixture(pytestconfig)) == expected
    assert expected[0] == ("inner", True, "a mock", [("a", 1), ("b", 2), ("c", 3)])
    assert expected[-2] == ("original", False, "original", [("a", 1), ("b", 2), ("c", 3)])
    assert dict(os.environ) == environ
    assert patched_targets() == targets


def test_an_older_patch_stopped_first_leaves_the_newer_in_place(
    pytestconfig: pytest.Config,
) -> None:
    # Where the two differ: pytest-mock puts the older patch's value from
    # before back at once, and the older's value back for good at the end.
    plain = MockerFixture(pytestconfig)
    older = plain.patch.object(Holder, "value")
    plain.patch.object(Holder, "value", "newer")
    plain.stop(older)
    assert Holder.value == "original"
    plain.stopall()
    assert Holder.value is older
    Holder.value = "original"

    layered = LayeredMockerFixture(pytestconfig)
    older = layered.patch.object(Holder, "value")
    layered.patch.object(Holder, "value", "newer")
    layered.stop(older)
    assert Holder.value == "newer"
    layered.stopall()
    assert Holder.value == "original"


def test_mocker_and_monkeypatch_layer_together(pytestconfig: pytest.Config) -> None:
    from pytest_concurrently._pytest_adapter import LayeredMonkeyPatch

    mocker = LayeredMockerFixture(pytestconfig)
    patcher = LayeredMonkeyPatch()
    mocker.patch.object(Holder, "value", "mocker")
    patcher.setattr(Holder, "value", "monkeypatch")
    patcher.setenv("LAYERED_MOCK_MIXED", "monkeypatch")
    mocker.patch.dict(os.environ, {"LAYERED_MOCK_MIXED": "mocker"})
    patcher.undo()
    assert (Holder.value, os.environ["LAYERED_MOCK_MIXED"]) == ("mocker", "mocker")
    mocker.stopall()
    assert Holder.value == "original"
    assert "LAYERED_MOCK_MIXED" not in os.environ


def test_what_code_changes_under_patch_dict_is_undone_by_the_last_one(
    pytestconfig: pytest.Config,
) -> None:
    # Two tests' patch.dict of one dictionary, as if in flight at once; the
    # code under test adds a key the patches know nothing of.
    targets = patched_targets()
    table: dict[str, object] = {"a": 1, "b": 2}
    first, second = LayeredMockerFixture(pytestconfig), LayeredMockerFixture(pytestconfig)
    first.patch.dict(table, {"a": "first"})
    second.patch.dict(table, {"b": "second"}, clear=True)
    table["added"] = "by the code"
    assert table == {"b": "second", "added": "by the code"}
    first.stopall()
    # The first's key is still hidden by the second's clear, and what the
    # code added stays while a patch.dict of the dictionary is in place.
    assert table == {"b": "second", "added": "by the code"}
    second.stopall()
    assert list(table.items()) == [("a", 1), ("b", 2)]
    assert patched_targets() == targets
