import hashlib

import pytest

from jobq import DONE, FAILED, Job, UnknownJobKind, wait_until_finished

DOCUMENTS = {
    "empty": "",
    "ascii": "hello world",
    "unicode": "grüße, 世界",
    "long": "lorem ipsum " * 500,
    "newlines": "a\nb\r\nc\n",
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
async def test_sha256(queue, name):
    data = DOCUMENTS[name]
    job_id = queue.submit("checksum", data=data)
    job = await wait_until_finished(queue, job_id)
    assert job.status == DONE
    assert job.result == hashlib.sha256(data.encode()).hexdigest()


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "blake2b"])
async def test_other_algorithms(queue, algorithm):
    job_id = queue.submit("checksum", data="payload", algorithm=algorithm)
    job = await wait_until_finished(queue, job_id)
    assert job.result == hashlib.new(algorithm, b"payload").hexdigest()
    assert job.attempts == 1


async def test_unknown_algorithm_fails_after_retries(queue):
    job_id = queue.submit("checksum", data="x", algorithm="crc-not-a-hash")
    job = await wait_until_finished(queue, job_id)
    assert job.status == FAILED
    assert job.attempts == queue.max_attempts
    assert job.error.startswith("ValueError")


def test_job_starts_queued():
    job = Job("checksum", {"data": "x"})
    assert job.to_dict() == {
        "id": job.id,
        "kind": "checksum",
        "status": "queued",
        "result": None,
        "error": None,
        "attempts": 0,
    }
    assert not job.finished


def test_job_ids_are_unique():
    assert len({Job("checksum", {}).id for _ in range(100)}) == 100


async def test_submit_rejects_unknown_kind(queue):
    with pytest.raises(UnknownJobKind):
        queue.submit("transcode", path="/dev/null")


async def test_many_jobs_from_one_test(queue):
    ids = [queue.submit("checksum", data=str(n)) for n in range(12)]
    jobs = [await wait_until_finished(queue, job_id) for job_id in ids]
    assert [job.result for job in jobs] == [
        hashlib.sha256(str(n).encode()).hexdigest() for n in range(12)
    ]
