import asyncio

import pytest
import pytest_asyncio

from pubsub import Pool


@pytest_asyncio.fixture(scope="class", loop_scope="class")
async def small_pool():
    pool = Pool(size=2, query_time=0.1)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(scope="class", loop_scope="class")
async def large_pool():
    pool = Pool(size=5, query_time=0.05)
    yield pool
    await pool.close()


@pytest.mark.asyncio(loop_scope="class")
class TestSmallPool:
    @pytest.fixture
    def pool(self, small_pool):
        return small_pool

    async def test_pool_shares_the_test_loop(self, pool):
        assert pool.loop is asyncio.get_running_loop()

    async def test_fetch(self, pool):
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT $1, $2", 1, "a")
        assert rows == [(1, "a")]

    async def test_queries_wait_for_a_free_connection(self, pool):
        async def query(n):
            async with pool.acquire() as conn:
                return await conn.fetch("SELECT $1", n)

        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(*(query(n) for n in range(4)))
        assert results == [[(n,)] for n in range(4)]
        # four queries on two connections take at least two rounds
        assert loop.time() - started >= 0.2

    async def test_connection_is_returned_after_an_error(self, pool):
        async with pool.acquire() as conn:
            with pytest.raises(ValueError, match="only SELECT"):
                await conn.fetch("DELETE FROM users")
            failed_id = conn.id
        async with pool.acquire() as again:
            assert await again.fetch("SELECT 1") == [()]
        assert failed_id in range(pool.size)

    async def test_exhausted_pool_times_out(self, pool):
        async with pool.acquire() as first, pool.acquire() as second:
            assert first.id != second.id
            with pytest.raises(asyncio.TimeoutError):
                async with pool.acquire(timeout=0.1):
                    pass


@pytest.mark.asyncio(loop_scope="class")
class TestLargePool:
    @pytest.fixture
    def pool(self, large_pool):
        return large_pool

    @pytest.mark.parametrize("parallel", [1, 5, 12])
    async def test_parallel_queries(self, pool, parallel):
        async def query(n):
            async with pool.acquire() as conn:
                return (await conn.fetch("SELECT $1", n))[0][0]

        assert await asyncio.gather(*(query(n) for n in range(parallel))) == list(range(parallel))

    async def test_query_count_grows(self, pool):
        before = pool.queries
        async with pool.acquire() as conn:
            await conn.fetch("SELECT 1")
            await conn.fetch("SELECT 2")
        assert pool.queries - before >= 2


@pytest.mark.asyncio
async def test_pool_refuses_a_foreign_loop():
    async def make_pool():
        return Pool(size=1)

    foreign = await asyncio.to_thread(asyncio.run, make_pool())
    with pytest.raises(RuntimeError, match="different event loop"):
        async with foreign.acquire():
            pass


@pytest.mark.asyncio
async def test_closed_pool_refuses_connections():
    pool = Pool(size=2, query_time=0.01)
    await pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        async with pool.acquire():
            pass
