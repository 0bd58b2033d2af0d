"""Helpers for the console page tests (tests/web/)."""

from __future__ import annotations

import asyncio
import re

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def finish_job(client: TestClient, started: ClientResponse) -> str:
    """After a console POST that started a background job (and was redirected to its page): poll the
    job's status fragment until the job ends; returns the final fragment."""
    path = started.url.path
    assert started.status == 200 and path.startswith("/console/jobs/"), (started.status, path)
    for _ in range(600):
        fragment = await (await client.get(path + "/status")).text()
        if "hx-trigger" not in fragment:
            return fragment
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {path} did not finish")


async def job_download(client: TestClient, started: ClientResponse) -> ClientResponse:
    """The file a finished export job produced."""
    fragment = await finish_job(client, started)
    assert "/download" in fragment, fragment
    resp = await client.get(started.url.path + "/download")
    assert resp.status == 200, await resp.text()
    return resp
