import pytest
from hypothesis import settings

# Keep the example database out of the working tree.
settings.register_profile("project", database=None)
settings.load_profile("project")


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()
