import hashlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jobq
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
        "owner": "ci-bot",
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


@settings(max_examples=5, deadline=None, database=None)
@given(data=st.text(alphabet=string.printable, max_size=40))
async def test_checksum_matches_hashlib_for_any_text(queue, data):
    job = await wait_until_finished(queue, queue.submit("checksum", data=data))
    assert job.result == hashlib.sha256(data.encode()).hexdigest()


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("meeting moved to noon\n")
    return path


@pytest.fixture
def binary_file(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 64)
    return path


@pytest.mark.parametrize("file_fixture", ["text_file", "binary_file"])
async def test_file_checksum(queue, request, file_fixture):
    path = request.getfixturevalue(file_fixture)
    job = await wait_until_finished(queue, queue.submit("file_checksum", path=str(path)))
    assert job.status == DONE
    assert job.result == hashlib.sha256(path.read_bytes()).hexdigest()


def test_command_line(capsys):
    assert jobq.main(["checksum", "data=abc"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256(b"abc").hexdigest()


def test_command_line_reports_failure(capsys):
    assert jobq.main(["fail", "message=boom"]) == 1
    assert "failed: RuntimeError: boom" in capsys.readouterr().err
