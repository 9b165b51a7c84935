import asyncio
from unittest import mock

import pytest

import jobq
from jobq import DONE, FAILED, JobQueue, wait_until_finished


async def test_flaky_handler_succeeds_on_third_attempt(private_queue):
    handler = mock.AsyncMock(side_effect=[ConnectionError("reset"), TimeoutError(), "ok"])
    private_queue.register("upload", handler)

    job = await wait_until_finished(private_queue, private_queue.submit("upload", path="a.bin"))

    assert job.status == DONE
    assert job.result == "ok"
    assert job.attempts == 3
    assert handler.await_count == 3
    handler.assert_awaited_with({"path": "a.bin"})


async def test_gives_up_after_max_attempts(private_queue, monkeypatch):
    monkeypatch.setattr(private_queue, "max_attempts", 2)
    handler = mock.AsyncMock(side_effect=RuntimeError("disk full"))
    private_queue.register("upload", handler)

    job = await wait_until_finished(private_queue, private_queue.submit("upload", path="b.bin"))

    assert job.status == FAILED
    assert job.error == "RuntimeError: disk full"
    assert handler.await_count == 2


async def test_retry_delay_is_respected(private_queue, monkeypatch):
    monkeypatch.setattr(private_queue, "retry_delay", 0.15)
    handler = mock.AsyncMock(side_effect=[OSError("busy"), "done"])
    private_queue.register("upload", handler)

    loop = asyncio.get_running_loop()
    started = loop.time()
    job = await wait_until_finished(private_queue, private_queue.submit("upload", path="c.bin"))

    assert job.result == "done"
    assert loop.time() - started >= 0.15


async def test_stubbed_checksum(private_queue):
    stub = mock.AsyncMock(return_value="d41d8cd9")
    with mock.patch.dict(private_queue.handlers, {"checksum": stub}):
        job_id = private_queue.submit("checksum", data="")
        job = await wait_until_finished(private_queue, job_id)
    assert job.result == "d41d8cd9"
    assert private_queue.handlers["checksum"] is jobq.checksum


async def test_stop_drains_pending_jobs(private_queue):
    ids = [private_queue.submit("sleep", seconds=0.05) for _ in range(4)]
    assert private_queue.pending() >= 3
    await private_queue.stop(drain=True)
    assert all(private_queue.jobs[i].status == DONE for i in ids)


async def test_queue_from_environment(monkeypatch):
    monkeypatch.setenv("JOBQ_WORKERS", "3")
    monkeypatch.setenv("JOBQ_MAX_ATTEMPTS", "1")
    q = JobQueue.from_env()
    assert (q.worker_count, q.max_attempts) == (3, 1)

    await q.start()
    try:
        job = await wait_until_finished(q, q.submit("fail", message="nope"))
        assert (job.status, job.attempts) == (FAILED, 1)
    finally:
        await q.stop()


async def test_handler_sees_its_job(private_queue):
    async def whoami(payload):
        await asyncio.sleep(0.05)
        return jobq.current_job.get().id

    private_queue.register("whoami", whoami)
    first = private_queue.submit("whoami")
    second = private_queue.submit("whoami")
    assert (await wait_until_finished(private_queue, first)).result == first
    assert (await wait_until_finished(private_queue, second)).result == second
    assert jobq.current_job.get() is None


async def test_jobs_record_who_submitted_them(private_queue):
    first = private_queue.submit("sleep", seconds=0.05)
    token = jobq.current_user.set("alice")
    try:
        second = private_queue.submit("sleep", seconds=0.05)
    finally:
        jobq.current_user.reset(token)
    await wait_until_finished(private_queue, second)
    assert private_queue.jobs[first].owner == "ci-bot"
    assert private_queue.jobs[second].owner == "alice"


def test_queue_needs_a_worker():
    with pytest.raises(ValueError, match="at least one worker"):
        JobQueue(workers=0)


async def test_each_job_runs_once(private_queue):
    with mock.patch.object(private_queue, "_run", wraps=private_queue._run) as run:
        job = await wait_until_finished(private_queue, private_queue.submit("sleep", seconds=0.1))
    run.assert_awaited_once()
    assert job.finished_at >= job.submitted_at + 0.1


@pytest.mark.xfail(reason="jobs cannot be cancelled once a worker picked them up", strict=True)
@pytest.mark.timeout(5)
async def test_cancel_running_job(private_queue):
    job_id = private_queue.submit("sleep", seconds=0.2)
    await asyncio.sleep(0.05)
    private_queue.cancel(job_id)
    assert private_queue.jobs[job_id].status == "cancelled"
