"""pytest-randomly's shuffled order is the order concurrent tests start in."""

from __future__ import annotations

import pytest
from conftest import all_overlap, intervals, read_events

pytest.importorskip("pytest_randomly")
pytestmark = pytest.mark.usefixtures("recorder")


def test_concurrent_tests_start_in_the_shuffled_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        @pytest.mark.parametrize("n", range(8))
        async def test_waits(n):
            record(f"test_waits[{n}]", "start")
            await asyncio.sleep(0.05)
            record(f"test_waits[{n}]", "end")
        """
    )
    options = ("-p", "randomly", "-p", "no:cacheprovider", "--randomly-seed=1234")
    collected = pytester.runpytest(*options, "--collect-only", "-q").stdout.lines
    shuffled = [line.split("::")[1] for line in collected if "::" in line]
    assert len(shuffled) == 8
    assert shuffled != sorted(shuffled, key=lambda name: int(name[11:-1]))
    result = pytester.runpytest(*options, "--concurrently-mode=auto")
    result.assert_outcomes(passed=8)
    events = read_events(pytester)
    assert [e.name for e in events if e.what == "start"] == shuffled
    assert all_overlap(intervals(events))
