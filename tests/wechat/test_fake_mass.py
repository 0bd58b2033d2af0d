"""The WeChat fake's mass sending as its own process (``python -m bot.adapters.wechat.fake_api``, as
``make run`` starts it): the demo tag, WeChat's errcodes from the mass-send handlers, clientmsgid dedup."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp.test_utils import unused_port

from bot.core.processes import module_process


def utf8(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()  # WeChat refuses \\uXXXX escapes (40033)


async def test_mass_sending_in_the_fake_process(monkeypatch) -> None:
    monkeypatch.setenv("WECHAT_TOKEN", "fake-mass-token")
    async with (
        module_process("bot.adapters.wechat.fake_api", "--app-id", "wxFakeMass", "--app-secret", "s3cret",
                       "--event-url", "http://127.0.0.1:9/wechat", port=unused_port()) as base,
        aiohttp.ClientSession(base_url=base) as http,
    ):  # fmt: skip
        async with http.post(
            "/cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": "wxFakeMass", "secret": "s3cret"},
        ) as r:
            token = (await r.json())["access_token"]  # fmt: skip
        q = {"access_token": token}
        async with http.get("/cgi-bin/tags/get", params=q) as r:
            assert (await r.json())["tags"] == [{"id": 100, "name": "演示关注者", "count": 3}]
        text = {"msgtype": "text", "text": {"content": "通知"}}
        async with http.post(
            "/cgi-bin/message/mass/send", params=q, data=utf8({"touser": ["oOnly"], **text})
        ) as r:
            assert (await r.json())["errcode"] == 40130  # one openid: WeChat wants at least two
        body = {"filter": {"is_to_all": False, "tag_id": 100}, "clientmsgid": "c-1", **text}
        async with http.post("/cgi-bin/message/mass/sendall", params=q, data=utf8(body)) as r:
            first = await r.json()
        async with http.post("/cgi-bin/message/mass/sendall", params=q, data=utf8(body)) as r:
            again = await r.json()
        assert first["errcode"] == 0 and again == {"errcode": 45065, "errmsg": "clientmsgid exist",
                                                    "msg_id": first["msg_id"]}  # fmt: skip
        async with http.post("/cgi-bin/message/mass/sendall", params=q,
                             data=utf8({**body, "clientmsgid": "x" * 65})) as r:  # fmt: skip
            assert (await r.json())["errcode"] == 45067
