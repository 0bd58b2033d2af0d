"""Run one of the project's Python modules as a child process on a port (fakes, reference backend,
workers) — for tests, benchmarks and tools that need the real process, not an in-process app."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.core.config import ROOT


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


START_TIMEOUT = 15.0


async def wait_listening(proc: asyncio.subprocess.Process, port: int, name: str) -> None:
    """Until ``port`` accepts connections; a clear error with the child's stderr when it died instead."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while loop.time() < deadline:
        if port_open(port):
            return
        if proc.returncode is not None:
            err = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{name} exited: {err}")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{name} did not start within {START_TIMEOUT:.0f}s")


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@asynccontextmanager
async def module_process(module: str, *args: str, port: int, name: str | None = None) -> AsyncIterator[str]:
    """``python -m module --port PORT *args`` from the project root; yields ``http://127.0.0.1:PORT``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--port", str(port), *args,
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await wait_listening(proc, port, name or module)
        yield f"http://127.0.0.1:{port}"
    finally:
        await stop_process(proc)
