import asyncio

import pytest
import pytest_asyncio

from instrumented import InstrumentedEventLoop, InstrumentedEventLoopPolicy


@pytest.fixture(scope="module")
def event_loop_policy():
    return InstrumentedEventLoopPolicy()


@pytest_asyncio.fixture
async def loop_stats():
    loop = asyncio.get_running_loop()
    start = (loop.tasks_created, loop.callbacks_scheduled)
    yield loop
    assert loop.tasks_created >= start[0]


@pytest.mark.asyncio
async def test_runs_on_the_instrumented_loop():
    assert isinstance(asyncio.get_running_loop(), InstrumentedEventLoop)


@pytest.mark.asyncio
async def test_fixture_and_test_share_the_loop(loop_stats):
    assert loop_stats is asyncio.get_running_loop()
    assert isinstance(loop_stats, InstrumentedEventLoop)


@pytest.mark.asyncio
async def test_counts_created_tasks(loop_stats):
    before = loop_stats.tasks_created
    await asyncio.gather(*(asyncio.sleep(0.05) for _ in range(3)))
    assert loop_stats.tasks_created - before == 3


@pytest.mark.asyncio
async def test_counts_scheduled_callbacks(loop_stats):
    before = loop_stats.callbacks_scheduled
    done = asyncio.Event()
    loop_stats.call_soon(done.set)
    await asyncio.wait_for(done.wait(), 1)
    assert loop_stats.callbacks_scheduled > before
