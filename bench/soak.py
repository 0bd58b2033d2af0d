"""Soak: minutes of mixed traffic on two gateway workers, reporting 5xx, lost, duplicated, p99 and each
process's memory at the start and the end.

Starts its own stack (a private Redis, the reference approval backend, the action server, the real Rasa
server, the Twilio fake, and two gateway workers sharing one port, all in a temporary directory) and sends,
from ``--users`` concurrent clients for ``--minutes``:

* WeChat text messages (signed, plain mode) from many citizens — one in twenty sent twice, as WeChat's
  retry of an unanswered request does;
* SMS replies (Twilio webhooks signed with twilio's own ``RequestValidator``);
* staff reads (the complaint list and the knowledge-base search, signed in as the demo supervisor).

Counted: responses >= 500; **lost** — a WeChat message answered with neither a reply nor ``success``, an
SMS without a TwiML answer; **duplicated** — more turns recorded (``conversation_turns``, one row per
turn) than distinct WeChat messages sent; p50/p99 latency per kind; the RSS of each gateway
worker (and of Rasa and the action server) after warm-up and at the end, and after how many messages.

    .venv/bin/python bench/soak.py --minutes 5 --users 8
    .venv/bin/python bench/soak.py --messages 10000 --users 16      # the issue's 10,000-message budget

Budget (issue #16): each gateway worker at most 200 MB RSS after 10,000 messages, and no growth over the
soak.  Needs the trained model (``govbot train``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import redis as redis_sync
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.config import ROOT
from bot.domains.staff import DEMO_PASSWORD
from eval.stack import Process, chat_stack, free_port, private_redis, wait_http

TOKEN, APP_ID, APP_SECRET = "soak-token", "wxsoak0000000001", "soak-secret"
TWILIO_SID, TWILIO_TOKEN, TWILIO_FROM = "AC" + "5" * 32, "soak-twilio-token", "+15005550006"
WECHAT_TEXTS = ["你好", "个体户营业执照要带什么材料", "护照多少钱", "身份证丢了怎么补", "你们几点上班",
                "结婚登记在几楼", "谢谢", "今天天气怎么样", "社保卡补办要多久", "公积金怎么提取"]  # fmt: skip
SMS_TEXTS = ["护照多少钱", "营业执照要带什么材料", "HELP", "你好", "几点上班"]
STAFF_PATHS = ["/api/complaints?limit=20", "/api/kb/search?q=%E8%90%A5%E4%B8%9A%E6%89%A7%E7%85%A7"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


@dataclasses.dataclass
class Tally:
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = dataclasses.field(default_factory=Counter)
    server_errors: int = 0
    lost: list[str] = dataclasses.field(default_factory=list)
    sent: int = 0
    wechat_ids: set[str] = dataclasses.field(default_factory=set)


class Load:
    def __init__(self, http: aiohttp.ClientSession, gateway: str, tally: Tally, seed: int) -> None:
        self.http, self.gateway, self.tally = http, gateway, tally
        self.rng = random.Random(seed)
        self.validator = RequestValidator(TWILIO_TOKEN)
        self.seq = 0

    async def wechat(self, user: int) -> None:
        self.seq += 1
        openid, msg_id = f"osoak{user:04d}x{self.seq // 10:06d}", str(10**12 + self.seq)
        ts, nonce = str(int(time.time())), f"{self.seq:010d}"
        text = WECHAT_TEXTS[self.seq % len(WECHAT_TEXTS)]
        xml = (f"<xml><ToUserName>gh_soak</ToUserName><FromUserName>{openid}</FromUserName>"
               f"<CreateTime>{ts}</CreateTime><MsgType>text</MsgType><Content>{text}</Content>"
               f"<MsgId>{msg_id}</MsgId></xml>").encode()  # fmt: skip
        sig = hashlib.sha1("".join(sorted([TOKEN, ts, nonce])).encode()).hexdigest()
        url = f"{self.gateway}/wechat?{urlencode({'signature': sig, 'timestamp': ts, 'nonce': nonce})}"
        times = 2 if self.rng.random() < 0.05 else 1  # WeChat's retry of the same request
        for _ in range(times):
            status, body = await self._post("wechat", url, xml, {"Content-Type": "text/xml"})
            if status == 200 and not (body == "success" or body.startswith("<xml>")):
                self.tally.lost.append(f"wechat {msg_id}: {body[:60]!r}")
        self.tally.wechat_ids.add(msg_id)

    async def sms(self, user: int) -> None:
        self.seq += 1
        params = {"From": f"+86139{user:04d}{self.seq % 10000:04d}", "To": TWILIO_FROM,
                  "Body": SMS_TEXTS[self.seq % len(SMS_TEXTS)], "MessageSid": f"SM{self.seq:032d}",
                  "AccountSid": TWILIO_SID, "NumSegments": "1"}  # fmt: skip
        url = f"{self.gateway}/sms/twilio"
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, body = await self._post("sms", url, urlencode(params).encode(), headers)
        if status == 200 and "<Response" not in body:
            self.tally.lost.append(f"sms {params['MessageSid']}: {body[:60]!r}")

    async def staff(self) -> None:
        path = STAFF_PATHS[self.seq % len(STAFF_PATHS)]
        self.seq += 1
        started = time.perf_counter()
        async with self.http.get(self.gateway + path) as resp:
            await resp.read()
            self._count("staff", resp.status, started)

    async def _post(self, kind: str, url: str, data: bytes, headers: dict[str, str]) -> tuple[int, str]:
        started = time.perf_counter()
        try:
            async with self.http.post(url, data=data, headers=headers) as resp:
                body = await resp.text()
                self._count(kind, resp.status, started)
                return resp.status, body
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.tally.lost.append(f"{kind}: {type(exc).__name__}")
            return 0, ""

    def _count(self, kind: str, status: int, started: float) -> None:
        self.tally.latencies[kind].append(time.perf_counter() - started)
        self.tally.statuses[f"{kind} {status}"] += 1
        self.tally.sent += 1
        if status >= 500:
            self.tally.server_errors += 1


async def drive(
    gateway: str, users: int, minutes: float, messages: int, probe: Callable[[int], None]
) -> Tally:
    tally = Tally()
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15), cookie_jar=jar) as http:
        async with http.post(f"{gateway}/api/staff/login",
                             json={"username": "supervisor", "password": DEMO_PASSWORD}) as resp:  # fmt: skip
            assert resp.status == 200, await resp.text()
        load = Load(http, gateway, tally, seed=1)
        deadline = time.monotonic() + minutes * 60 if minutes else float("inf")

        async def user(n: int) -> None:
            rng = random.Random(n)
            while time.monotonic() < deadline and (not messages or tally.sent < messages):
                roll = rng.random()
                if roll < 0.7:
                    await load.wechat(n)
                elif roll < 0.9:
                    await load.sms(n)
                else:
                    await load.staff()
                probe(tally.sent)

        await asyncio.gather(*(user(n) for n in range(users)))
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=0.0)
    parser.add_argument("--messages", type=int, default=3000, help="stop after this many requests (0: none)")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--no-kb-search", action="store_true", help="staff read complaints only (no knowledge-base search)"
    )
    args = parser.parse_args()
    if args.no_kb_search:
        STAFF_PATHS[:] = [p for p in STAFF_PATHS if "/kb/" not in p]
    with tempfile.TemporaryDirectory(prefix="govbot-soak-") as tmp:
        workdir = Path(tmp)
        with private_redis(workdir) as redis_url, chat_stack(workdir, redis_url) as stack:
            twilio_port, port = free_port(), free_port()
            gateway = f"http://127.0.0.1:{port}"
            fake = Process([sys.executable, "-m", "sms_gateway.twilio.fake", "--port", str(twilio_port),
                            "--account-sid", TWILIO_SID, "--from-number", TWILIO_FROM],
                           ROOT, {**os.environ, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN},
                           workdir / "twilio.log")  # fmt: skip
            fake.start()
            env = {
                **os.environ, "GOVBOT_MODE": "demo", "PORT": str(port), "REDIS_URL": redis_url,
                "DATABASE_URL": stack.database_url, "RASA_URL": stack.rasa_url,
                "ACTIONS_PORT": str(stack.actions_port), "APPROVAL_API_BASE": stack.approval_url,
                "APPROVAL_API_TOKEN": "e2e-token", "WECHAT_MESSAGE_MODE": "plain", "WECHAT_TOKEN": TOKEN,
                "WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": APP_SECRET,
                "WECHAT_API_BASE": "http://127.0.0.1:9", "PUBLIC_BASE_URL": gateway,
                "SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
                "TWILIO_FROM_NUMBER": TWILIO_FROM, "TWILIO_API_BASE": f"http://127.0.0.1:{twilio_port}",
            }  # fmt: skip
            workers = [Process([sys.executable, "-m", "bot", "serve"], ROOT, env, workdir / f"gw{i}.log")
                       for i in range(args.workers)]  # fmt: skip
            for w in workers:
                w.start()
            try:
                wait_http(f"{gateway}/metrics", 60)
                procs = {f"gateway-{i + 1}": w.proc.pid for i, w in enumerate(workers) if w.proc}
                procs.update(
                    {n: p.proc.pid for n, p in stack.processes.items() if p.proc and n != "approval"}
                )
                samples: list[tuple[int, dict[str, float]]] = []
                marks = {500, 2000, 5000, 10000, 20000}

                def probe(sent: int) -> None:
                    if sent in marks or (sent and sent % 5000 == 0):
                        marks.discard(sent)
                        samples.append((sent, {n: rss_mb(pid) for n, pid in procs.items()}))

                samples.append((0, {n: rss_mb(pid) for n, pid in procs.items()}))
                started = time.monotonic()
                tally = asyncio.run(drive(gateway, args.users, args.minutes, args.messages, probe))
                elapsed = time.monotonic() - started
                samples.append((tally.sent, {n: rss_mb(pid) for n, pid in procs.items()}))
                time.sleep(3)  # late turns settle
                db = stack.database_url.split("///", 1)[1]
                with sqlite3.connect(db) as conn:
                    (turns,) = conn.execute(
                        "SELECT COUNT(*) FROM conversation_turns WHERE channel = 'wechat'"
                    ).fetchone()
                report(args, tally, elapsed, samples, turns)
            finally:
                for w in workers:
                    w.stop()
                fake.stop()
                redis_sync.Redis.from_url(redis_url).close()
    return 0


def report(args: argparse.Namespace, tally: Tally, elapsed: float,
           samples: list[tuple[int, dict[str, float]]], wechat_turns: int) -> None:  # fmt: skip
    print(f"soak: {tally.sent} requests in {elapsed:.0f} s ({tally.sent / elapsed:.1f}/s), "
          f"{args.users} users, {args.workers} gateway workers")  # fmt: skip
    unique = len(tally.wechat_ids)
    print(f"responses >= 500: {tally.server_errors}   lost: {len(tally.lost)}   WeChat turns recorded: "
          f"{wechat_turns} for {unique} distinct messages (duplicated: {max(0, wechat_turns - unique)}, "
          f"unrecorded: {max(0, unique - wechat_turns)})")  # fmt: skip
    for kind, values in sorted(tally.latencies.items()):
        print(f"  {kind:7s} n={len(values):6d}  p50={percentile(values, 50) * 1000:7.1f} ms  "
              f"p99={percentile(values, 99) * 1000:7.1f} ms")  # fmt: skip
    print("  statuses: " + json.dumps(dict(tally.statuses), ensure_ascii=False))
    for line in tally.lost[:10]:
        print("  lost: " + line)
    names = list(samples[0][1])
    print("RSS (MB) after N requests: " + "  ".join(f"{n:>10s}" for n in names))
    for sent, rss in samples:
        print(f"  {sent:>8d}                  " + "  ".join(f"{rss[n]:10.0f}" for n in names))
    first, last = samples[1] if len(samples) > 2 else samples[0], samples[-1]
    growth = {n: last[1][n] - first[1][n] for n in names if n.startswith("gateway")}
    print("gateway growth after warm-up (MB): " + json.dumps({k: round(v) for k, v in growth.items()}))


if __name__ == "__main__":
    sys.exit(main())
