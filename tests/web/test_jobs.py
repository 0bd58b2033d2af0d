"""Long console work as background jobs: a console POST starts the job and shows its progress page (phase,
done / total, time left), the status fragment polls until the job ends, the file is served to the person
who started it and to nobody else; a failed job says so in Chinese and shows no stack trace."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import openpyxl
import redis.asyncio as aioredis

from bot.core.actor import Actor
from bot.domains.complaints.intake import NewComplaint
from bot.domains.staff.audit import AuditFilter
from bot.gateway.app import Services
from bot.gateway.web.jobs import Download, JobRunner, Progress
from tests.support.web import csrf_of, job_download


async def test_a_console_export_runs_as_a_job_with_a_progress_page(sign_in, services: Services) -> None:
    assert services.complaints is not None
    for i in range(3):
        new = NewComplaint(channel="window", sender_id="staff:t", description=f"第{i}件投诉")
        await services.complaints.create(new, idempotency_key=f"k{i}")
    chief = await sign_in("chief", ["complaint_supervisor"])
    page = await (await chief.get("/console/complaints")).text()
    assert 'action="/console/complaints/export?status=open"' in page and "导出 XLSX" in page
    no_token = await chief.post("/console/complaints/export?status=open", allow_redirects=False)
    assert no_token.status == 403
    started = await chief.post(
        "/console/complaints/export?status=open", data={"csrf_token": csrf_of(page)}, allow_redirects=False
    )
    assert started.status == 303 and started.headers["Location"].startswith("/console/jobs/")
    job_page = await chief.get(started.headers["Location"])
    assert "导出投诉清单" in await job_page.text()
    resp = await job_download(chief, job_page)
    assert "complaints-" in resp.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    assert sheet is not None and sheet.max_row == 4  # the header and three complaints
    assert services.staff is not None
    assert await services.staff.audit.query(AuditFilter(action="complaint.export"))
    # somebody else (even with the same permission) cannot see it or take its file
    other = await sign_in("chief2", ["complaint_supervisor"])
    for suffix in ("", "/status", "/download"):
        assert (await other.get(started.headers["Location"] + suffix)).status == 404
    assert (await chief.get("/console/jobs/nonexistent")).status == 404


ME = Actor(account_id=7, username="op", display_name="操作员")


async def ended(runner: JobRunner, job_id: str) -> dict[str, Any]:
    """The job's state once it is no longer running (polled, at most two seconds)."""
    for _ in range(100):
        job = await runner.status(job_id, ME)
        assert job is not None
        if job["state"] != "running":
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} still running")


async def test_progress_is_reported_while_the_work_runs(redis_client: aioredis.Redis) -> None:
    runner = JobRunner(redis_client)
    halfway, finish = asyncio.Event(), asyncio.Event()

    async def produce(progress: Progress) -> Download:
        tick = progress.counter("生成表格", 1000)
        tick(250)
        halfway.set()
        await finish.wait()
        tick(1000)
        return Download("x.xlsx", "application/octet-stream", b"data")

    job_id = await runner.start(ME, "导出", produce)
    await halfway.wait()
    await asyncio.sleep(0.5)  # one flush
    job = await runner.status(job_id, ME)
    assert job is not None
    assert (job["state"], job["phase"], job["done"], job["total"]) == ("running", "生成表格", 250, 1000)
    assert job["left"] is not None
    assert await runner.status(job_id, Actor(account_id=8, username="x", display_name="x")) is None
    finish.set()
    job = await ended(runner, job_id)
    assert (job["state"], job["filename"], job["size"]) == ("done", "x.xlsx", 4)
    assert await runner.data(job_id) == b"data"


async def test_a_failed_job_says_so_without_details(redis_client: aioredis.Redis, caplog) -> None:
    runner = JobRunner(redis_client)

    async def produce(progress: Progress) -> Download:
        raise RuntimeError("secret internals at /srv/db")

    job_id = await runner.start(ME, "导出", produce)
    job = await ended(runner, job_id)
    assert job is not None and job["state"] == "failed" and "请稍后重试" in job["message"]
    assert "secret" not in str(job) and "console job failed" in caplog.text
    assert await runner.data(job_id) is None


async def test_a_job_cut_short_by_a_restart_says_so(redis_client: aioredis.Redis) -> None:
    runner = JobRunner(redis_client)
    started = asyncio.Event()

    async def produce(progress: Progress) -> Download:
        started.set()
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    job_id = await runner.start(ME, "导出", produce)
    await started.wait()
    await runner.close()  # the worker stops
    job = await runner.status(job_id, ME)
    assert job is not None and job["state"] == "failed" and "重新开始" in job["message"]
