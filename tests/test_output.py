"""Output and log records are attributed to the test that produced them."""

from __future__ import annotations

import pytest
from conftest import all_overlap, intervals, read_events

INTERLEAVED = """
import asyncio
import logging
import sys
import pytest

pytestmark = pytest.mark.concurrent
log = logging.getLogger("app")

@pytest.fixture
async def noisy_fixture(request):
    print(f"setup of {request.node.name}")
    await asyncio.sleep(0.05)
    yield
    print(f"teardown of {request.node.name}")

@pytest.mark.parametrize("n", range(4))
async def test_talks(n, noisy_fixture, caplog):
    for step in range(5):
        print(f"out test_talks[{n}] step {step}")
        print(f"err test_talks[{n}] step {step}", file=sys.stderr)
        log.warning("log test_talks[%d] step %d", n, step)
        await asyncio.sleep(0.01)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [f"log test_talks[{n}] step {step}" for step in range(5)]
    assert n != 3, "fail to show sections"
"""


def test_output_sections_belong_to_their_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(INTERLEAVED)
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=3, failed=1)
    reports = [
        report
        for report in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    ]
    assert len(reports) == 12
    for report in reports:
        name = report.nodeid.split("::")[-1]
        sections = dict(report.sections)
        if report.when == "call":
            out = sections[f"Captured stdout {report.when}"]
            err = sections[f"Captured stderr {report.when}"]
            log = sections[f"Captured log {report.when}"]
            assert out.splitlines() == [f"out {name} step {step}" for step in range(5)]
            assert err.splitlines() == [f"err {name} step {step}" for step in range(5)]
            assert [line.split(" ", 3)[-1] for line in log.splitlines()] == [
                f"log {name} step {step}" for step in range(5)
            ]
        elif report.when == "setup":
            assert sections["Captured stdout setup"] == f"setup of {name}\n"
        else:
            assert f"teardown of {name}\n" in sections["Captured stdout teardown"]


def test_capture_disabled_with_s(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrent
        async def test_prints():
            print("straight to the terminal")
        """
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*straight to the terminal*"])


def test_caplog_set_level_is_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import logging
        import pytest

        pytestmark = pytest.mark.concurrent

        async def test_debug(caplog):
            caplog.set_level(logging.DEBUG, logger="mine")
            await asyncio.sleep(0.05)
            logging.getLogger("mine").debug("debug from test_debug")
            await asyncio.sleep(0.05)
            assert [r.getMessage() for r in caplog.records] == ["debug from test_debug"]

        async def test_info(caplog):
            caplog.set_level(logging.INFO, logger="other")
            await asyncio.sleep(0.02)
            logging.getLogger("other").info("info from test_info")
            await asyncio.sleep(0.1)
            assert [r.getMessage() for r in caplog.records] == ["info from test_info"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_caplog_level_set_in_a_fixture_lasts_into_the_call(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import logging
        import pytest

        @pytest.fixture
        def debug_logs(caplog):
            caplog.set_level(logging.DEBUG)

        @pytest.mark.concurrent
        async def test_debug(debug_logs, caplog):
            logging.getLogger("app").debug("seen")
            assert [r.getMessage() for r in caplog.records] == ["seen"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.usefixtures("recorder")
def test_log_records_of_a_shared_server_reach_the_tests_in_flight(
    pytester: pytest.Pytester,
) -> None:
    # A session fixture's server task logs each request it serves; each test
    # checks with caplog that its request was served, as it would pass in a
    # sequential run. Records a test emits itself stay its own.
    pytester.makepyfile(
        """
        import asyncio
        import logging
        import pytest
        from recorder import record

        log = logging.getLogger("server")

        @pytest.fixture(scope="session")
        async def server():
            requests = asyncio.Queue()
            async def serve():
                while True:
                    name, reply = await requests.get()
                    log.warning("served %s", name)
                    reply.set_result(None)
            task = asyncio.create_task(serve())
            yield requests
            task.cancel()

        @pytest.mark.parametrize("n", range(3))
        async def test_asks(n, server, caplog):
            record(f"asks{n}", "start")
            logging.getLogger("me").warning("mine %s", n)
            reply = asyncio.get_running_loop().create_future()
            await server.put((f"test {n}", reply))
            await reply
            await asyncio.sleep(0.05)
            record(f"asks{n}", "end")
            assert f"served test {n}" in caplog.messages
            assert [m for m in caplog.messages if m.startswith("mine")] == [f"mine {n}"]
        """
    )
    for mode in ("off", "auto"):
        pytester.runpytest(f"--concurrently-mode={mode}").assert_outcomes(passed=3)
    assert all_overlap(intervals(read_events(pytester)[-6:]))


def test_tee_sys_captures_and_passes_output_through(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("n", range(2))
        async def test_prints(n):
            await asyncio.sleep(0.05)
            print(f"teed by {n}")
            assert False
        """
    )
    result = pytester.runpytest_subprocess("--capture=tee-sys")
    result.assert_outcomes(failed=2)
    # Once on the terminal as it happens, once in the failure's section.
    for n in range(2):
        assert result.stdout.str().count(f"teed by {n}") == 2


def test_caplog_levels_of_tests_in_flight_are_layered(pytester: pytest.Pytester) -> None:
    # Each test raises the "app" logger's level for itself; whichever ends
    # first must not put back a level that hides the others' records, and
    # after the last, the level from before is back.
    pytester.makepyfile(
        """
        import asyncio
        import logging
        import pytest

        logger = logging.getLogger("app")

        @pytest.mark.concurrent
        @pytest.mark.parametrize("delay", [0.05, 0.2])
        async def test_set_level(caplog, delay):
            caplog.set_level(logging.INFO, logger="app")
            await asyncio.sleep(delay)
            logger.info("done after %s", delay)
            assert f"done after {delay}" in caplog.messages

        @pytest.mark.concurrent
        async def test_at_level(caplog):
            with caplog.at_level(logging.DEBUG, logger="app"):
                await asyncio.sleep(0.1)
                logger.debug("debug inside")
            assert "debug inside" in caplog.messages

        @pytest.mark.concurrent
        async def test_root_level(caplog):
            caplog.set_level(logging.INFO)
            await asyncio.sleep(0.15)
            logging.getLogger("other").info("root info")
            assert "root info" in caplog.messages

        @pytest.mark.isolated
        def test_levels_are_back():
            assert logging.getLogger("app").level == logging.NOTSET
            assert logging.getLogger().level == logging.WARNING
        """
    )
    for mode in ("off", "auto"):
        pytester.runpytest(f"--concurrently-mode={mode}").assert_outcomes(passed=5)


def test_child_process_output_goes_to_the_terminal(pytester: pytest.Pytester) -> None:
    """A child process that inherits stdout writes to file descriptor 1,
    which concurrent tests share: as documented, its output is not any
    test's and reaches the terminal."""
    pytester.makepyfile(
        """
        import asyncio
        import subprocess
        import sys
        import pytest

        pytestmark = pytest.mark.concurrent

        async def test_runs_a_child():
            print("own-output")
            subprocess.run([sys.executable, "-c", "print('child-output')"], check=True)
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "print('async-child-output')"
            )
            await process.wait()
            assert 0

        async def test_neighbour():
            await asyncio.sleep(0.1)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    section = output[output.index("Captured stdout call") :]
    assert "own-output" in section
    assert "child-output" not in section
    assert "child-output" in output[: output.index("FAILURES")]
    assert "async-child-output" in output[: output.index("FAILURES")]


def test_a_routed_stream_outliving_its_fallback_closes_quietly() -> None:
    """Collected after the stream it falls back to was closed (an inner
    session's capture, say), a routed stream closes without an error."""
    import io

    from pytest_concurrently.routing import RoutedStream

    fallback = io.StringIO()
    stream = RoutedStream("stdout", fallback)
    fallback.close()
    stream.close()
    assert stream.closed
