"""Tests admitted together start a few per turn of the event loop, so the
tests already in flight go on in between (see :mod:`pytest_concurrently.pacing`)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from pytest_concurrently.pacing import STARTS_PER_TURN, StartPacer


async def _start_all(pacer: StartPacer, count: int, cancel: set[int]) -> list[tuple[int, int]]:
    """Start ``count`` tasks through ``pacer``, cancelling those in
    ``cancel`` while they wait; return (turn, task) for every start, where
    turn counts the loop's turns."""
    loop = asyncio.get_running_loop()
    turn = 0
    started: list[tuple[int, int]] = []

    def count_turn() -> None:
        nonlocal turn
        turn += 1
        if len(started) + len(cancel) < count:
            loop.call_soon(count_turn)

    async def start(index: int) -> None:
        waiter = pacer.wait_for_turn()
        if waiter is not None:
            if index in cancel:
                waiter.cancel()
                return
            await waiter
        started.append((turn, index))

    loop.call_soon(count_turn)
    await asyncio.gather(*(start(index) for index in range(count)))
    return started


def _starts_per_turn(started: list[tuple[int, int]]) -> list[int]:
    """How many started in each turn that saw a start, in turn order."""
    return list(Counter(turn for turn, _ in started).values())


def test_a_bounded_number_start_per_turn_in_order() -> None:
    async def run(count: int) -> list[tuple[int, int]]:
        return await _start_all(StartPacer(asyncio.get_running_loop(), 4), count, set())

    assert asyncio.run(run(0)) == []
    started = asyncio.run(run(30))
    assert [index for _, index in started] == list(range(30))
    per_turn = _starts_per_turn(started)
    assert max(per_turn) == 4
    assert len(per_turn) == 8  # 30 starts, 4 a turn


def test_a_cancelled_wait_gives_its_turn_up() -> None:
    async def run() -> list[tuple[int, int]]:
        return await _start_all(StartPacer(asyncio.get_running_loop(), 4), 20, {5, 6, 7, 12})

    started = asyncio.run(run())
    indices = [index for _, index in started]
    assert indices == [i for i in range(20) if i not in {5, 6, 7, 12}]
    per_turn = _starts_per_turn(started)
    # The cancelled ones take no turn: every turn but the last starts 4.
    assert sorted(per_turn)[1:] == [4] * (len(per_turn) - 1)


def test_tests_admitted_together_do_not_all_start_before_the_first_goes_on(
    pytester: pytest.Pytester,
) -> None:
    count = 10 * STARTS_PER_TURN
    pytester.makepyfile(
        f"""
        import asyncio, json
        import pytest

        pytestmark = pytest.mark.concurrent
        started = 0

        @pytest.mark.parametrize("case", range({count}))
        async def test_case(case):
            global started
            started += 1
            await asyncio.sleep(0)
            if case == 0:
                with open("started.json", "w") as f:
                    json.dump(started, f)
            await asyncio.sleep(0.01)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency", str(count))
    result.assert_outcomes(passed=count)
    started_when_first_went_on = json.loads((pytester.path / "started.json").read_text())
    # Unpaced, all of them would have started in the loop's first turn.
    assert started_when_first_went_on <= 2 * STARTS_PER_TURN


def test_a_stop_leaves_the_tests_waiting_to_start_unreported(pytester: pytest.Pytester) -> None:
    count = 10 * STARTS_PER_TURN
    pytester.makepyfile(
        f"""
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("case", range({count}))
        async def test_case(case):
            await asyncio.sleep(0)
            if case == 0:
                assert False, "the first fails"
            await asyncio.sleep(0.05)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-x", "--concurrency", str(count))
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Those that had started are interrupted; those still waiting for their
    # turn never ran, as after a sequential run's -x.
    interrupted = outcomes.get("interrupted", 0)
    assert 0 < interrupted <= STARTS_PER_TURN
    assert "passed" not in outcomes
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
