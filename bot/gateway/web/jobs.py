"""Long console work (exports, the catalogue import) as background jobs with a progress page.

A page's "导出" button posts its form; the handler builds a *producer* (an async function that reports its
progress and returns a :class:`Download` or a message) and calls :func:`deliver`:

* a console ``POST`` starts a job in this gateway process and redirects to ``/console/jobs/{id}``, where
  htmx polls a small fragment (phase, done / total, a ``<progress>`` bar, elapsed time) until the job ends
  and shows its download link or message;
* a plain ``GET`` (scripts, ``curl``, links without JavaScript) runs the producer at once and returns the
  file, as before.

The job's state and result live in Redis (an hour), so any gateway worker can show and serve them; only the
person who started a job may see it.  Spreadsheet writing runs in a worker thread (:func:`in_thread`), so a
50,000-row export never stalls the event loop that answers citizens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import redis.asyncio as aioredis
from aiohttp import web

from bot.core.actor import Actor
from bot.gateway.staff.auth import actor_of
from bot.gateway.web.render import PREFIX, page

log = logging.getLogger(__name__)

PATH = PREFIX + "/jobs"
TTL = 3600  # seconds a finished job and its file stay available
FLUSH_EVERY = 0.3  # seconds between progress writes to Redis
KEY = "govbot:console:job:"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
T = TypeVar("T")


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Done:
    """A job that ends with a message (and, optionally, a link) instead of a file."""

    message: str
    ok: bool = True
    link: str = ""
    link_text: str = ""


def _outcome(done: Done) -> dict[str, str]:
    return {"message": done.message, "link": done.link, "link_text": done.link_text}


class Progress:
    """What the work reports; plain attributes, so a worker thread may update them too."""

    def __init__(self) -> None:
        self.phase = "准备中"
        self.done = 0
        self.total = 0

    def update(self, phase: str | None = None, done: int | None = None, total: int | None = None) -> None:
        if phase is not None:
            self.phase = phase
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total

    def counter(self, phase: str, total: int) -> Callable[[int], None]:
        """A callback for a loop: ``tick(n)`` says n of ``total`` are done."""
        self.update(phase, 0, total)
        return lambda n: self.update(done=n)


Producer = Callable[[Progress], Awaitable[Download | Done]]


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """CPU-bound work (writing a workbook) off the event loop."""
    return await asyncio.to_thread(fn, *args)


class JobRunner:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, owner: Actor, title: str, producer: Producer) -> str:
        job_id = secrets.token_urlsafe(12)
        job = {"owner": owner.account_id, "title": title, "state": "running"}
        await self._save(job_id, job | {"phase": "准备中", "done": 0, "total": 0, "started": time.time()})
        task = asyncio.create_task(self._run(job_id, producer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job_id

    async def _run(self, job_id: str, producer: Producer) -> None:
        progress = Progress()

        async def flush() -> None:
            while True:
                await asyncio.sleep(FLUSH_EVERY)
                await self._update(job_id, phase=progress.phase, done=progress.done, total=progress.total)

        ticker = asyncio.create_task(flush())
        failure = "处理失败，请稍后重试或缩小范围"
        try:
            result = await producer(progress)
            await _stop(ticker)
            counts = {"phase": "完成", "done": progress.total or progress.done, "total": progress.total}
            if isinstance(result, Download):
                await self.redis.set(KEY + job_id + ":data", result.data, ex=TTL)
                file = {
                    "filename": result.filename,
                    "content_type": result.content_type,
                    "size": len(result.data),
                }
                await self._update(job_id, state="done", **counts, **file)
            else:
                outcome = _outcome(result)
                await self._update(job_id, state="done" if result.ok else "failed", **counts, **outcome)
            failure = ""
        except asyncio.CancelledError:  # the worker is stopping: say so rather than "running" for an hour
            failure = "服务重启，任务已中断，请重新开始"
            raise
        except Exception:
            log.exception("console job failed", extra={"job": job_id})
        finally:
            await _stop(ticker)
            if failure:
                await self._fail(job_id, failure)

    async def _fail(self, job_id: str, message: str) -> None:
        """Mark the job failed (whatever went wrong, even a Redis error: never left "running")."""
        try:
            await self._update(job_id, state="failed", phase="失败", message=message)
        except Exception:
            log.warning("console job state not saved", extra={"job": job_id}, exc_info=True)

    async def status(self, job_id: str, owner: Actor) -> dict[str, Any] | None:
        raw = await self.redis.get(KEY + job_id)
        if raw is None:
            return None
        job: dict[str, Any] = json.loads(raw)
        if job.get("owner") != owner.account_id:
            return None
        elapsed = (job.get("ended") or time.time()) - job["started"]
        job["elapsed"] = int(elapsed)
        done, total = job.get("done") or 0, job.get("total") or 0
        job["left"] = (
            int(elapsed * (total - done) / done) if job["state"] == "running" and 0 < done < total else None
        )
        return job

    async def data(self, job_id: str) -> bytes | None:
        raw = await self.redis.get(KEY + job_id + ":data")
        return raw if isinstance(raw, bytes) else None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def _save(self, job_id: str, job: dict[str, Any]) -> None:
        await self.redis.set(KEY + job_id, json.dumps(job, ensure_ascii=False), ex=TTL)

    async def _update(self, job_id: str, **values: Any) -> None:
        raw = await self.redis.get(KEY + job_id)
        if raw is None:
            return
        job = json.loads(raw) | values
        if values.get("state") in ("done", "failed"):
            job["ended"] = time.time()
        await self._save(job_id, job)


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel the progress writer and wait for it, so no late write lands after the final state."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


RUNNER = web.AppKey("console_jobs", JobRunner)


def runner(request: web.Request) -> JobRunner:
    return request.app[RUNNER]


def attachment(download: Download) -> web.Response:
    return web.Response(
        body=download.data,
        headers={
            "Content-Type": download.content_type,
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(download.filename)}",
        },
    )


async def deliver(request: web.Request, title: str, producer: Producer) -> web.StreamResponse:
    """POST: start a job and show its progress page; GET: produce now and answer with the file."""
    if request.method == "POST":
        job_id = await runner(request).start(actor_of(request), title, producer)
        raise web.HTTPSeeOther(f"{PATH}/{job_id}")
    result = await producer(Progress())
    if isinstance(result, Download):
        return attachment(result)
    job = {"title": title, "state": "done" if result.ok else "failed", "phase": "完成", "done": 0, "total": 0,
           "elapsed": 0, "left": None, **_outcome(result)}  # fmt: skip
    return page(request, "job.html", {"job": job, "job_id": ""}, status=200 if result.ok else 400)


async def _job(request: web.Request) -> tuple[str, dict[str, Any]]:
    job_id = request.match_info["id"]
    job = await runner(request).status(job_id, actor_of(request)) if job_id.isascii() else None
    if job is None:
        raise web.HTTPNotFound(text="没有这个任务，或已过期（任务结果保留一小时）")
    return job_id, job


async def job_page(request: web.Request) -> web.Response:
    job_id, job = await _job(request)
    return page(request, "job.html", {"job": job, "job_id": job_id})


async def job_fragment(request: web.Request) -> web.Response:
    job_id, job = await _job(request)
    return page(request, "_job_status.html", {"job": job, "job_id": job_id})


async def job_download(request: web.Request) -> web.Response:
    job_id, job = await _job(request)
    data = await runner(request).data(job_id) if job.get("state") == "done" else None
    if data is None or not job.get("filename"):
        raise web.HTTPNotFound(text="文件还没有生成，或已过期")
    return attachment(Download(job["filename"], job["content_type"], data))


def setup_routes(app: web.Application) -> None:
    async def _start(app: web.Application) -> None:
        from bot.gateway.app import SERVICES  # the app module imports this package: look it up when called

        app[RUNNER] = JobRunner(app[SERVICES].redis)

    async def _close(app: web.Application) -> None:
        jobs = app.get(RUNNER)
        if jobs is not None:
            await jobs.close()

    app.on_startup.append(_start)
    app.on_cleanup.append(_close)
    app.add_routes(
        [
            web.get(PATH + "/{id}", job_page),
            web.get(PATH + "/{id}/status", job_fragment),
            web.get(PATH + "/{id}/download", job_download),
        ]
    )
