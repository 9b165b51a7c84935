"""An in-process job queue: producers submit jobs, a pool of workers runs them.

Jobs are looked up by id in :attr:`JobQueue.jobs`; their status moves from
``queued`` to ``running`` to ``done`` or ``failed``. A handler that raises is
retried, up to ``max_attempts`` times, ``retry_delay`` seconds apart.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"

_ids = itertools.count(1)

#: Who is submitting jobs; recorded on each job for auditing.
current_user: contextvars.ContextVar[str] = contextvars.ContextVar("current_user", default="anonymous")

#: The job a worker is running, for handlers and log records.
current_job: contextvars.ContextVar[Job | None] = contextvars.ContextVar("current_job", default=None)


class UnknownJobKind(LookupError):
    pass


@dataclass
class Job:
    kind: str
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: f"job-{next(_ids)}")
    owner: str = field(default_factory=current_user.get)
    status: str = QUEUED
    result: Any = None
    error: str | None = None
    attempts: int = 0
    submitted_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "owner": self.owner,
            "status": self.status,
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
        }


class JobQueue:
    def __init__(self, workers: int = 2, *, max_attempts: int = 3, retry_delay: float = 0.05):
        if workers < 1:
            raise ValueError("a queue needs at least one worker")
        self.worker_count = workers
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.handlers: dict[str, Handler] = dict(DEFAULT_HANDLERS)
        self.jobs: dict[str, Job] = {}
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    @classmethod
    def from_env(cls) -> JobQueue:
        return cls(
            workers=int(os.environ.get("JOBQ_WORKERS", "2")),
            max_attempts=int(os.environ.get("JOBQ_MAX_ATTEMPTS", "3")),
        )

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._workers)

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("queue already started")
        self._workers = [
            asyncio.create_task(self._work(), name=f"jobq-worker-{n}")
            for n in range(self.worker_count)
        ]

    async def stop(self, *, drain: bool = True) -> None:
        if drain:
            await self._queue.join()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    def submit(self, kind: str, **payload: Any) -> str:
        if kind not in self.handlers:
            raise UnknownJobKind(kind)
        job = Job(kind, payload)
        self.jobs[job.id] = job
        self._queue.put_nowait(job)
        return job.id

    def pending(self) -> int:
        return self._queue.qsize()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._run(job)
            finally:
                self._queue.task_done()

    async def _run(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        job.status = RUNNING
        current_job.set(job)
        while True:
            job.attempts += 1
            try:
                job.result = await handler(job.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                job.error = f"{type(exc).__name__}: {exc}"
                if job.attempts >= self.max_attempts:
                    job.status = FAILED
                    break
                await asyncio.sleep(self.retry_delay)
            else:
                job.error = None
                job.status = DONE
                break
        job.finished_at = time.monotonic()


async def wait_until_finished(
    queue: JobQueue, job_id: str, *, timeout: float = 3.0, interval: float = 0.05
) -> Job:
    """Poll until the job is done or failed."""
    deadline = time.monotonic() + timeout
    while not queue.jobs[job_id].finished:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job_id} still {queue.jobs[job_id].status} after {timeout}s")
        await asyncio.sleep(interval)
    return queue.jobs[job_id]


# -- built-in job kinds -----------------------------------------------------


async def checksum(payload: dict[str, Any]) -> str:
    await asyncio.sleep(0.05)
    algorithm = payload.get("algorithm", "sha256")
    return hashlib.new(algorithm, payload["data"].encode()).hexdigest()


async def file_checksum(payload: dict[str, Any]) -> str:
    def digest() -> str:
        with open(payload["path"], "rb") as f:
            return hashlib.file_digest(f, payload.get("algorithm", "sha256")).hexdigest()

    return await asyncio.to_thread(digest)


async def thumbnail(payload: dict[str, Any]) -> dict[str, int]:
    width, height = payload["width"], payload["height"]
    box = payload.get("box", 128)
    await asyncio.sleep(0.1)
    scale = min(box / width, box / height, 1.0)
    return {"width": max(1, round(width * scale)), "height": max(1, round(height * scale))}


async def sleep(payload: dict[str, Any]) -> float:
    await asyncio.sleep(payload["seconds"])
    return payload["seconds"]


async def fail(payload: dict[str, Any]) -> None:
    await asyncio.sleep(0.01)
    raise RuntimeError(payload.get("message", "job failed"))


DEFAULT_HANDLERS: dict[str, Handler] = {
    "checksum": checksum,
    "file_checksum": file_checksum,
    "thumbnail": thumbnail,
    "sleep": sleep,
    "fail": fail,
}


def main(argv: list[str] | None = None) -> int:
    """Run one job and print its result: ``jobq KIND [key=value ...]``."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: jobq KIND [key=value ...]", file=sys.stderr)
        return 2
    kind, pairs = args[0], args[1:]
    payload: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        payload[key] = int(value) if value.isdigit() else value

    async def run() -> Job:
        queue = JobQueue(workers=1, max_attempts=1)
        await queue.start()
        try:
            job_id = queue.submit(kind, **payload)
            return await wait_until_finished(queue, job_id)
        finally:
            await queue.stop()

    job = asyncio.run(run())
    if job.status == FAILED:
        print(f"{job.id} failed: {job.error}", file=sys.stderr)
        return 1
    print(job.result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
