"""``capsys``, ``capsysbinary`` and ``capteesys`` in overlapping concurrent
tests: each sees its own test's output alone, and what it does not read
lands in its own report."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from conftest import all_overlap, intervals, read_events

pytestmark = pytest.mark.usefixtures("recorder")

HAS_CAPTEESYS = tuple(int(part) for part in pytest.__version__.split(".")[:2]) >= (8, 4)

SUITE = """
import asyncio
import sys
import threading
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

@pytest.fixture
def noisy(request):
    name = request.node.callspec.id
    print(f"setup-{name}")
    yield
    print(f"teardown-{name}")

@pytest.mark.parametrize("end", [ENDS], ids=["a", "b", "c"])
async def test_prints(noisy, capsys, request, end):
    name = request.node.callspec.id
    record(name, "start")
    print(f"call-{name}")
    await asyncio.sleep(0.1)

    async def helper():
        print(f"task-{name}", file=sys.stderr)

    await asyncio.create_task(helper())
    await asyncio.sleep(end)
    got = capsys.readouterr()
    record(name, "end", out=got.out, err=got.err)
    print(f"unread-{name}")
    assert name != "b", "fails to show its sections"
"""


@pytest.mark.parametrize("ends", ["0.0, 0.1, 0.2", "0.2, 0.1, 0.0", "0.1, 0.0, 0.2"])
def test_capsys_sees_its_own_test_alone(pytester: pytest.Pytester, ends: str) -> None:
    pytester.makepyfile(test_capsys=SUITE.replace("ENDS", ends))
    result = pytester.runpytest(
        "-p", "no:randomly", "--junitxml=report.xml", "-o", "junit_logging=all", "-rA"
    )
    result.assert_outcomes(passed=2, failed=1)
    events = read_events(pytester)
    assert all_overlap(intervals(events))
    for event in events:
        if event.what == "end":
            name = event.name
            # Its fixture's setup ran before capsys started; its call and
            # its task's output are its own.
            assert event.extra["out"] == f"call-{name}\n"
            assert event.extra["err"] == f"task-{name}\n"
    xml = ET.parse(pytester.path / "report.xml")
    for case in xml.iter("testcase"):
        name = case.attrib["name"][-2]
        text = "".join(case.itertext())
        assert f"unread-{name}" in text
        assert f"setup-{name}" in text
        others = {"a", "b", "c"} - {name}
        for other in others:
            assert f"-{other}\n" not in text, (name, text)
    output = result.stdout.str()
    failure = output[output.index("___ test_prints[b] ___") :]
    failure = failure[: failure.index("=====")]
    assert "unread-b" in failure
    assert "unread-a" not in failure
    assert "unread-c" not in failure


def test_capsysbinary_and_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        async def test_binary(capsysbinary):
            record("binary", "start")
            print("bytes-é")
            await asyncio.sleep(0.2)
            assert capsysbinary.readouterr().out == "bytes-é\\n".encode()
            record("binary", "end")

        async def test_disabled(capsys):
            record("disabled", "start")
            await asyncio.sleep(0.1)
            with capsys.disabled():
                print("to-the-terminal")
            print("captured")
            await asyncio.sleep(0.1)
            assert capsys.readouterr().out == "captured\\n"
            record("disabled", "end")
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-q")
    result.assert_outcomes(passed=2)
    assert all_overlap(intervals(read_events(pytester)))
    assert "to-the-terminal" in result.stdout.str()
    assert "bytes-" not in result.stdout.str()


@pytest.mark.skipif(not HAS_CAPTEESYS, reason="capteesys is new in pytest 8.4")
def test_capteesys_passes_its_output_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("name", ["x", "y"])
        async def test_tee(capteesys, name):
            record(name, "start")
            print(f"tee-{name}")
            await asyncio.sleep(0.2)
            assert capteesys.readouterr().out == f"tee-{name}\\n"
            record(name, "end")
            assert 0
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=2)
    assert all_overlap(intervals(read_events(pytester)))
    output = result.stdout.str()
    for name, other in (("x", "y"), ("y", "x")):
        section = output[output.index(f"___ test_tee[{name}] ___") :].split("\n", 1)[1]
        section = section[: min(section.find("___ test_tee"), section.find("concurrently:"))]
        assert f"tee-{name}" in section
        assert f"tee-{other}" not in section


def test_two_capture_fixtures_in_one_test_are_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrent
        async def test_both(capsys, capsysbinary):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot use capsysbinary and capsys at the same time*"])


def test_threads_a_test_starts_write_to_that_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import threading
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        def in_a_thread(text):
            thread = threading.Thread(target=print, args=(text,))
            thread.start()
            thread.join()

        async def test_reads_its_thread(capsys):
            record("reads", "start")
            await asyncio.sleep(0.1)
            in_a_thread("thread-of-reads")
            await asyncio.sleep(0.1)
            assert capsys.readouterr().out == "thread-of-reads\\n"
            record("reads", "end")

        async def test_neighbour():
            record("neighbour", "start")
            await asyncio.sleep(0.05)
            in_a_thread("thread-of-neighbour")
            await asyncio.sleep(0.1)
            record("neighbour", "end")
            assert 0
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    assert all_overlap(intervals(read_events(pytester)))
    output = result.stdout.str()
    section = output[output.index("Captured stdout call") :]
    assert "thread-of-neighbour" in section
    assert "thread-of-reads" not in output


def test_capsys_with_capture_off(pytester: pytest.Pytester) -> None:
    """With -s, capsys still takes its own test's writes alone; what the
    test does not read goes to the terminal, tagged with the test."""
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("name", ["x", "y"])
        async def test_reads(capsys, name):
            record(name, "start")
            print(f"read-{name}")
            await asyncio.sleep(0.2)
            assert capsys.readouterr().out == f"read-{name}\\n"
            print(f"unread-{name}")
            record(name, "end")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-s")
    result.assert_outcomes(passed=2)
    assert all_overlap(intervals(read_events(pytester)))
    output = result.stdout.str()
    assert "read-x" not in output.replace("unread-x", "")
    result.stdout.fnmatch_lines_random(
        [
            "[[]test_*.py::test_reads[[]x[]][]] unread-x*",
            "[[]test_*.py::test_reads[[]y[]][]] unread-y*",
        ]
    )
