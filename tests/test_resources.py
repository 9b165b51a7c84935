"""Resources, limits, groups and isolation, as inner sessions see them."""

from __future__ import annotations

import itertools

import pytest
from conftest import intervals, peak_overlap, read_events

pytestmark = pytest.mark.usefixtures("recorder")

HEADER = """
import asyncio
import pytest
import pytest_concurrently
from recorder import record

pytestmark = pytest.mark.concurrent


async def span(request, seconds=0.2):
    record(request.node.name, "start")
    await asyncio.sleep(seconds)
    record(request.node.name, "end")
"""


def overlapping(spans: dict[str, tuple[float, float]], a: str, b: str) -> bool:
    return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]


def never_overlap(spans: dict[str, tuple[float, float]], names: list[str]) -> bool:
    return not any(overlapping(spans, a, b) for a, b in itertools.combinations(names, 2))


def test_exclusive_holders_never_overlap_and_others_go_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.resource("db")
@pytest.mark.parametrize("n", range(3))
async def test_db(n, request):
    await span(request)

async def test_free(request):
    await span(request, 0.3)

async def test_last():
    pass
"""
    )
    pytester.runpytest().assert_outcomes(passed=5)
    spans = intervals(read_events(pytester))
    holders = [f"test_db[{n}]" for n in range(3)]
    assert never_overlap(spans, holders)
    # The free test, after the waiting holders in collection order, did
    # not wait behind them. (The module's last test, which tears the
    # module down, starts once all the others have.)
    assert overlapping(spans, "test_free", "test_db[0]")


def test_shared_holders_overlap_but_not_with_an_exclusive_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.resource("db", mode="shared")
@pytest.mark.parametrize("n", range(3))
async def test_read(n, request):
    await span(request)

@pytest.mark.resource("db", mode="exclusive")
async def test_write(request):
    await span(request)
"""
    )
    pytester.runpytest().assert_outcomes(passed=4)
    spans = intervals(read_events(pytester))
    readers = [f"test_read[{n}]" for n in range(3)]
    assert peak_overlap({name: spans[name] for name in readers}) == 3
    assert not any(overlapping(spans, "test_write", reader) for reader in readers)


@pytest.mark.parametrize("where", ["marker", "ini"])
def test_a_limit_caps_the_holders(pytester: pytest.Pytester, where: str) -> None:
    mark = "limit=2" if where == "marker" else ""
    if where == "ini":
        pytester.makeini("[pytest]\nconcurrently_resources = browser:2 payments:1\n")
    pytester.makepyfile(
        HEADER
        + f"""
@pytest.mark.resource("browser", {mark})
@pytest.mark.parametrize("n", range(5))
async def test_browse(n, request):
    await span(request)
"""
    )
    pytester.runpytest().assert_outcomes(passed=5)
    assert peak_overlap(intervals(read_events(pytester))) == 2


def test_two_limits_for_one_resource_are_an_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_resources = browser:3\n")
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.resource("browser", limit=2)
async def test_browse(request):
    pass
"""
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*resource 'browser' has two limits: 3 in the concurrently_resources ini option "
            "and 2 in test_two_limits_for_one_resource_are_an_error.py::test_browse*"
        ]
    )


def test_groups_never_overlap_each_other_and_do_overlap_the_ungrouped(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_a=HEADER
        + """
@pytest.mark.concurrent(group="a")
@pytest.mark.parametrize("n", range(2))
async def test_a(n, request):
    await span(request)
""",
        test_b=HEADER
        + """
pytestmark = pytest.mark.concurrent(group="b")

@pytest.mark.parametrize("n", range(2))
async def test_b(n, request):
    await span(request)
""",
        test_c=HEADER
        + """
async def test_free(request):
    await span(request, 0.5)
""",
    )
    pytester.runpytest().assert_outcomes(passed=5)
    spans = intervals(read_events(pytester))
    group_a, group_b = ["test_a[0]", "test_a[1]"], ["test_b[0]", "test_b[1]"]
    assert overlapping(spans, *group_a)
    assert overlapping(spans, *group_b)
    assert not any(overlapping(spans, a, b) for a in group_a for b in group_b)
    assert any(overlapping(spans, "test_free", name) for name in group_a + group_b)


def test_class_and_method_resources_stack(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.resource("x")
class TestBoth:
    @pytest.mark.resource("y")
    async def test_both(self, request):
        await span(request)

@pytest.mark.resource("x")
async def test_x(request):
    await span(request)

@pytest.mark.resource("y")
async def test_y(request):
    await span(request)

async def test_free(request):
    await span(request)

async def test_last():
    pass
"""
    )
    pytester.runpytest().assert_outcomes(passed=5)
    spans = intervals(read_events(pytester))
    assert not overlapping(spans, "test_both", "test_x")
    assert not overlapping(spans, "test_both", "test_y")
    assert overlapping(spans, "test_x", "test_y")
    assert overlapping(spans, "test_both", "test_free")


def test_resources_from_a_conftest_hook(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        if "serial" in item.name:
            item.add_marker(pytest.mark.resource("service"))
"""
    )
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.parametrize("n", range(3))
async def test_serial(n, request):
    await span(request)

@pytest.mark.parametrize("n", range(2))
async def test_parallel(n, request):
    await span(request)

async def test_last():
    pass
"""
    )
    pytester.runpytest().assert_outcomes(passed=6)
    spans = intervals(read_events(pytester))
    assert never_overlap(spans, [f"test_serial[{n}]" for n in range(3)])
    assert overlapping(spans, "test_parallel[0]", "test_parallel[1]")


def test_a_function_fixture_declares_a_resource_for_its_users(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest_concurrently.resource("db")
@pytest.fixture
async def table():
    return "table"

@pytest.fixture
def repository(table):
    return table

async def test_direct(table, request):
    await span(request)

async def test_through_another_fixture(repository, request):
    await span(request)

async def test_free(request):
    await span(request)

async def test_last():
    pass
"""
    )
    pytester.runpytest().assert_outcomes(passed=4)
    spans = intervals(read_events(pytester))
    assert not overlapping(spans, "test_direct", "test_through_another_fixture")
    assert overlapping(spans, "test_direct", "test_free")


def test_a_wide_fixture_holds_its_resource_from_setup_to_teardown(
    pytester: pytest.Pytester,
) -> None:
    """The users of a session fixture that holds ``db`` share it; a test
    that needs ``db`` itself waits until the instance is torn down, and
    the next user gets a new instance."""
    pytester.makepyfile(
        HEADER
        + """
@pytest.fixture(scope="session")
@pytest_concurrently.resource("db")
async def database():
    record("database", "start")
    yield "db"
    record("database", "end")

@pytest.mark.parametrize("n", range(2))
async def test_user(n, database, request):
    await span(request)

@pytest.mark.resource("db")
async def test_migration(request):
    await span(request)

async def test_later_user(database, request):
    await span(request)
"""
    )
    pytester.runpytest().assert_outcomes(passed=4)
    events = read_events(pytester)
    spans = intervals(events)
    assert overlapping(spans, "test_user[0]", "test_user[1]")
    made = [e.t for e in events if e.name == "database" and e.what == "start"]
    ended = [e.t for e in events if e.name == "database" and e.what == "end"]
    assert len(made) == len(ended) == 2
    assert ended[0] < spans["test_migration"][0]
    assert spans["test_migration"][1] < made[1] < spans["test_later_user"][0]


def test_an_isolated_test_overlaps_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.parametrize("n", range(2))
async def test_before(n, request):
    await span(request)

@pytest.mark.isolated
async def test_alone(request):
    await span(request)

@pytest.mark.parametrize("n", range(2))
async def test_after(n, request):
    await span(request)
"""
    )
    pytester.runpytest().assert_outcomes(passed=5)
    spans = intervals(read_events(pytester))
    others = [name for name in spans if name != "test_alone"]
    assert not any(overlapping(spans, "test_alone", name) for name in others)


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        ("@pytest.mark.resource()", "*@pytest.mark.resource() names no resource*"),
        (
            "@pytest.mark.resource('db', mode='sole')",
            "*mode must be 'exclusive' or 'shared', got 'sole'*",
        ),
        ("@pytest.mark.resource('db', limit=0)", "*limit must be a whole number*got 0*"),
        ("@pytest.mark.resource('db', size=2)", "*unknown argument size*"),
        ("@pytest.mark.resource(3)", "*resource names are non-empty strings*got 3*"),
        ("@pytest.mark.concurrent(group=3)", "*group=...) needs a non-empty string, got 3*"),
    ],
)
def test_misused_resource_markers_name_the_test(
    pytester: pytest.Pytester, mark: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
import pytest

{mark}
async def test_marked():
    pass
"""
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message, "Fix: *", "    *::test_marked"])


def test_misused_resource_decorator_fails_at_import(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest
import pytest_concurrently

@pytest_concurrently.resource("db", mode="sole")
@pytest.fixture
def table():
    pass

async def test_table(table):
    pass
"""
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*pytest_concurrently.resource('db', mode='sole'): mode must be*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_bad_ini_limits_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_resources = browser:many\n")
    pytester.makepyfile("async def test_nothing(): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*concurrently_resources entries are name:N*'browser:many'*"])


def test_the_fixture_decorator_on_a_test_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest_concurrently

@pytest_concurrently.resource("db")
async def test_decorated():
    pass
"""
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "This test is decorated with pytest_concurrently.resource, which is for fixtures.",
            "Fix: mark the test @pytest.mark.resource(...) instead.",
            "    *::test_decorated",
        ]
    )


def test_a_resource_fixture_asked_for_dynamically_fails_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest_concurrently.resource("db")
@pytest.fixture
def table():
    return "table"

async def test_dynamic(request):
    request.getfixturevalue("table")

async def test_static(table):
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*the fixture 'table' holds 'db', but was asked for with request.getfixturevalue*"]
    )


def test_one_resource_named_twice_is_held_in_the_stronger_mode(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.resource("db", mode="shared")
class TestStacked:
    @pytest.mark.resource("db")
    async def test_writer(self, request):
        await span(request)

@pytest.mark.resource("db", mode="shared")
async def test_reader(request):
    await span(request)

async def test_last():
    pass
"""
    )
    pytester.runpytest().assert_outcomes(passed=3)
    spans = intervals(read_events(pytester))
    assert not overlapping(spans, "test_writer", "test_reader")


def test_a_test_that_ends_an_instance_waits_for_its_earlier_users(
    pytester: pytest.Pytester,
) -> None:
    """An earlier user held back by another resource still gets the first
    instance: the test that ends it waits for that user."""
    pytester.makepyfile(
        HEADER
        + """
@pytest.fixture(scope="session")
@pytest_concurrently.resource("db")
async def database():
    record("database", "start")
    yield "db"
    record("database", "end")

@pytest.mark.resource("x")
async def test_holds_x(request):
    await span(request, 0.3)

@pytest.mark.resource("x")
async def test_user(database, request):
    await span(request)

@pytest.mark.resource("db")
async def test_migration(request):
    await span(request)

async def test_later_user(database, request):
    await span(request)
"""
    )
    pytester.runpytest().assert_outcomes(passed=4)
    events = read_events(pytester)
    spans = intervals(events)
    assert len([e for e in events if e.name == "database" and e.what == "start"]) == 2
    assert spans["test_user"][1] < spans["test_migration"][0]
