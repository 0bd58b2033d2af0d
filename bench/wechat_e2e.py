"""End-to-end WeChat benchmark against the running system (start it with `make run` first).

Replays N signed (and, in safe mode, encrypted) text messages from M concurrent users to the gateway's
``POST /wechat`` and reports p50/p95/p99 latency and throughput; then sends the same load straight to
Rasa's REST endpoint (spread over the same Rasa servers as the gateway's, ``RASA_URL`` /
``RASA_PROCESSES``) and reports the gateway/Rasa throughput ratio.

    .venv/bin/python bench/wechat_e2e.py --messages 300 --users 1
    .venv/bin/python bench/wechat_e2e.py --messages 400 --users 20 --think 3 --independent
    .venv/bin/python bench/wechat_e2e.py --messages 400 --users 20 --think 3      # users in lockstep
    .venv/bin/python bench/wechat_e2e.py --messages 1200 --users 20               # back-to-back

Settings (token, AES key, AppID, mode, ports) come from the environment / .env / .env.example, exactly as
the gateway reads them under ``make run`` (demo mode when neither GOVBOT_MODE nor .env says otherwise).
Target (issue 2): gateway throughput >= 80% of Rasa's own, p99 <= 150 ms at
20 concurrent users.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import xmltodict
from wechatpy.crypto import WeChatCrypto

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.config import ROOT, get_settings
from bot.core.env import Env
from bot.gateway.conversation.dialogue import DialogueUnavailable, RasaRestDialogue

QUESTIONS = [
    "你好",
    "营业执照怎么办理",
    "身份证丢了怎么补办",
    "社保卡要带什么材料",
    "我要投诉",
    "查一下我的办件进度",
    "你们几点上班",
    "谢谢",
    "结婚登记需要什么",
    "今天天气怎么样",
]


TURNS_PER_CONVERSATION = 10


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def signed_request(openid: str, text: str, seq: int) -> tuple[str, bytes]:
    s = get_settings()
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    xml = xmltodict.unparse(
        {
            "xml": {
                "ToUserName": "gh_bench",
                "FromUserName": openid,
                "CreateTime": ts,
                "MsgType": "text",
                "Content": text,
                "MsgId": str(10**15 + seq),
            }
        },
        full_document=False,
    )
    query = {
        "timestamp": ts,
        "nonce": nonce,
        "openid": openid,
        "signature": hashlib.sha1(
            "".join(sorted([s.wechat_token.get_secret_value(), ts, nonce])).encode()
        ).hexdigest(),
    }
    body = xml.encode()
    if s.wechat_message_mode != "plain":
        crypto = WeChatCrypto(
            s.wechat_token.get_secret_value(), s.wechat_encoding_aes_key.get_secret_value(), s.wechat_app_id
        )
        encrypt = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]["Encrypt"]
        query["encrypt_type"] = "aes"
        query["msg_signature"] = hashlib.sha1(
            "".join(sorted([s.wechat_token.get_secret_value(), ts, nonce, encrypt])).encode()
        ).hexdigest()
        body = xmltodict.unparse(
            {"xml": {"ToUserName": "gh_bench", "Encrypt": encrypt}}, full_document=False
        ).encode()
    return "/wechat?" + urlencode(query), body


async def run_load(
    send: Callable[[str, str, int], Awaitable[bool]],
    messages: int,
    users: int,
    think: float = 0.0,
    independent: bool = False,
    seed: int = 1,
) -> tuple[list[float], float, int]:
    """Each user sends its share sequentially (as a person does), starting a new conversation every
    TURNS_PER_CONVERSATION messages (Rasa's tracker grows with every turn); users run concurrently.

    With a think time, users start together and wait exactly `think` seconds after each answer, so they
    keep sending in bursts of up to `users` messages at once.  With `independent`, each user starts at a
    random moment within the first `think` seconds and waits a random, exponentially distributed time
    (mean `think`) after each answer: users who do not act in step, as citizens on their own phones."""
    latencies: list[float] = []
    errors = 0
    per_user = [messages // users + (1 if i < messages % users else 0) for i in range(users)]
    seq = iter(range(10**9))

    async def user(index: int, count: int) -> None:
        nonlocal errors
        openid = ""
        rng = random.Random(seed * 1000 + index)  # this user's pauses, the same in every run
        if independent and think:
            await asyncio.sleep(rng.uniform(0, think))
        for i in range(count):
            if i % TURNS_PER_CONVERSATION == 0:  # a citizen's conversation is a handful of turns
                openid = f"obench{uuid.uuid4().hex[:22]}"
            text = QUESTIONS[(index + i) % len(QUESTIONS)]
            request = send(openid, text, next(seq))  # signed and encrypted before the clock starts
            started = time.perf_counter()
            ok = await request
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1
            if think:
                await asyncio.sleep(rng.expovariate(1 / think) if independent else think)  # reading

    started = time.perf_counter()
    await asyncio.gather(*(user(i, n) for i, n in enumerate(per_user)))
    return latencies, time.perf_counter() - started, errors


def report(name: str, latencies: list[float], elapsed: float, errors: int) -> float:
    throughput = len(latencies) / elapsed
    p50, p95, p99 = (percentile(latencies, p) * 1000 for p in (50, 95, 99))
    print(
        f"{name:8s} n={len(latencies):5d} errors={errors:3d}  p50={p50:7.1f} ms  p95={p95:7.1f} ms  "
        f"p99={p99:7.1f} ms  mean={statistics.mean(latencies) * 1000:7.1f} ms  "
        f"throughput={throughput:6.1f} msg/s"
    )
    return throughput


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument(
        "--think", type=float, default=0.0, help="seconds each user waits after an answer (0: back-to-back)"
    )
    parser.add_argument(
        "--independent",
        action="store_true",
        help="users start at random moments and think for random (exponential, mean --think) times",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for --independent")
    parser.add_argument("--gateway", default=None, help="gateway base URL (default http://127.0.0.1:$PORT)")
    parser.add_argument(
        "--rasa", default=None, help="Rasa base URL(s), comma-separated (default: as the gateway's)"
    )
    args = parser.parse_args()
    s = get_settings()
    gateway = args.gateway or f"http://127.0.0.1:{s.port}"
    rasa = args.rasa or ",".join(s.rasa_urls)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=200)) as http:

        def via_gateway(openid: str, text: str, seq: int) -> Awaitable[bool]:
            path, body = signed_request(openid, text, seq)  # what WeChat's servers do before sending

            async def post() -> bool:
                async with http.post(gateway + path, data=body) as resp:
                    reply = await resp.text()
                    return resp.status == 200 and reply not in ("", "success")

            return post()

        direct = RasaRestDialogue(http, rasa, 10.0)  # the gateway's client: same spreading over servers

        def via_rasa(openid: str, text: str, seq: int) -> Awaitable[bool]:
            async def post() -> bool:
                try:
                    return bool(await direct.turn(f"bench:{openid}", text, {"channel": "wechat"}))
                except DialogueUnavailable:
                    return False

            return post()

        print(f"warming up against {gateway} and {rasa} …")
        await run_load(via_gateway, args.users, args.users)
        shape = f"think time {args.think:g} s" + (" (independent users)" if args.independent else "")
        print(f"{args.messages} messages from {args.users} concurrent users, {shape}")
        load = (args.messages, args.users, args.think, args.independent, args.seed)
        g = report("gateway", *await run_load(via_gateway, *load))
        r = report("rasa", *await run_load(via_rasa, *load))
        print(f"gateway/rasa throughput ratio: {g / r:.2f} (target >= 0.80)")
    return 0


def _demo_unless_configured() -> None:
    """As ``make run`` does: demo mode when neither GOVBOT_MODE nor .env is set."""
    if not Env().raw("GOVBOT_MODE") and not (ROOT / ".env").is_file():
        os.environ["GOVBOT_MODE"] = "demo"


if __name__ == "__main__":
    _demo_unless_configured()
    sys.exit(asyncio.run(main()))
