import pytest

import jobq
from jobq import JobQueue


@pytest.fixture(scope="session", autouse=True)
def ci_identity():
    """Jobs the suite submits are attributed to the CI account."""
    token = jobq.current_user.set("ci-bot")
    yield
    jobq.current_user.reset(token)


@pytest.fixture(scope="module")
async def queue():
    """A worker pool shared by the tests of one module."""
    q = JobQueue(workers=4)
    await q.start()
    yield q
    await q.stop()


@pytest.fixture
async def private_queue():
    """A single-worker queue for tests that reconfigure or break it."""
    q = JobQueue(workers=1, retry_delay=0.01)
    await q.start()
    yield q
    await q.stop(drain=True)
    assert not q.running
