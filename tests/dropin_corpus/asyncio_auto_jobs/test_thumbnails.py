import asyncio

import pytest

from jobq import DONE, RUNNING, wait_until_finished


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((1024, 768), 128, (128, 96)),
        ((768, 1024), 128, (96, 128)),
        ((64, 64), 128, (64, 64)),
        ((4000, 10), 100, (100, 1)),
        ((300, 300), 300, (300, 300)),
        ((1920, 1080), 256, (256, 144)),
    ],
)
async def test_thumbnail_fits_box(queue, size, box, expected):
    width, height = size
    job_id = queue.submit("thumbnail", width=width, height=height, box=box)
    job = await wait_until_finished(queue, job_id)
    assert job.status == DONE
    assert (job.result["width"], job.result["height"]) == expected


@pytest.mark.timeout(5)
async def test_status_moves_through_running(queue):
    job_id = queue.submit("sleep", seconds=0.3)
    while queue.jobs[job_id].status != RUNNING:
        await asyncio.sleep(0.01)
    assert not queue.jobs[job_id].finished
    job = await wait_until_finished(queue, job_id)
    assert job.result == 0.3
    assert job.finished_at - job.submitted_at >= 0.3


@pytest.mark.timeout(5)
async def test_thumbnail_of_missing_dimensions_fails(queue):
    job_id = queue.submit("thumbnail", width=100)
    job = await wait_until_finished(queue, job_id)
    assert job.status == "failed"
    assert job.error == "KeyError: 'height'"


@pytest.mark.timeout(5)
async def test_results_are_kept_after_completion(queue):
    job_id = queue.submit("thumbnail", width=10, height=20)
    await wait_until_finished(queue, job_id)
    await asyncio.sleep(0.1)
    assert queue.jobs[job_id].to_dict()["result"] == {"width": 10, "height": 20}


async def test_urgent_job_overtakes_backlog(queue):
    backlog = [queue.submit("sleep", seconds=0.05) for _ in range(8)]
    submit_urgent = getattr(queue, "submit_urgent", None)
    if submit_urgent is None:
        for job_id in backlog:
            await wait_until_finished(queue, job_id)
        pytest.xfail("urgent submission is not implemented yet")
    urgent = submit_urgent("thumbnail", width=10, height=10)
    job = await wait_until_finished(queue, urgent)
    assert job.finished_at < max(queue.jobs[j].finished_at or float("inf") for j in backlog)
