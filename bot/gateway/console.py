"""``govbot chat``: a terminal conversation with the running system, through the same conversation path
as WeChat and SMS (``POST /api/chat`` on the gateway, as the signed-in staff member: ``govbot login``)."""

from __future__ import annotations

import asyncio
import sys

import aiohttp

PROMPT = "您> "


async def chat(base_url: str, token: str, sender: str) -> int:
    url = f"{base_url.rstrip('/')}/api/chat"
    headers = {"Authorization": f"Bearer {token}"}
    print(f"政务服务助手 控制台（{base_url}，会话 {sender}）。输入问题，Ctrl-D 退出。")
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(headers=headers) as http:
        while True:
            try:
                line = await loop.run_in_executor(None, _read_line)
            except EOFError:
                print()
                return 0
            if not line.strip():
                continue
            try:
                async with http.post(url, json={"sender": sender, "text": line}) as resp:
                    if resp.status in (401, 403):
                        print("助手> [令牌无效或无权限：请重新 govbot login]", file=sys.stderr)
                        return 2
                    body = await resp.json()
            except aiohttp.ClientError as exc:
                print(f"助手> [无法连接网关 {base_url}：{exc}；请先运行 make run]", file=sys.stderr)
                return 1
            for text in body.get("texts", []):
                print(f"助手> {text}")
            if body.get("transfer_to_agent"):
                print("助手> [已转人工客服]")


def _read_line() -> str:
    line = input(PROMPT)
    return line
