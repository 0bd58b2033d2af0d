"""Reference approval backend: a small stand-in for the county's 电子审批系统, with its own SQLite file.

Run it as its own process (``make run`` starts it as a demo service; the tests start it too)::

    python -m bot.adapters.approval.reference_backend --port 8183 --db var/approval.db [--token T] [--seed 40]

The JSON API is documented in ``reference_backend.openapi.json`` (next to this file):

* ``GET  /api/v1/cases/{ticket_no}``         one case (404 when unknown)
* ``POST /api/v1/cases``                     register a case, as a window clerk does (ticket number issued)
* ``POST /api/v1/cases/{ticket_no}/status``  change its status (补正 needs the missing materials)
* ``GET  /api/v1/changes?since=&limit=``     the change feed (status changes, oldest first, with a cursor)
* ``GET  /api/v1/items``                     the catalogue items cases can be registered for
* ``GET  /health``

Ticket numbers are ``YYYYMMDD`` + the day's 6-digit sequence + an ISO 7064 MOD 11,10 check digit (see
``bot.adapters.approval.ticket``).  When ``--token`` is given every ``/api/`` call needs
``Authorization: Bearer <token>``.  An empty database is seeded with realistic cases over the sample
catalogue's items (every status, 补正 with missing materials, 办结 with collection details, a few overdue);
the first ones belong to the demo applicant 演示用户 (phone 13800138000: verify with ``8000``).

``--enable-faults`` adds test-only control endpoints (never enable them in production):
``POST /_reference/faults`` ``{"delay": s, "status": 503, "body": "...", "times": n, "path_prefix": "/api/"}``
makes the next ``times`` matching calls slow and/or fail (``times`` -1 = until reset, 0 = reset), and
``GET /_reference/stats`` counts the calls per route.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.approval.ticket import is_valid_ticket, make_ticket
from bot.core.db import create_engine
from bot.core.env import Env
from knowledge_base.importer import DATA_DIR, read_catalogue
from knowledge_base.schema import GuideItem

log = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
SAMPLE_CATALOGUE_CSV = DATA_DIR / "service_guides.csv"
STATUSES = ("申请", "受理", "补正", "审核", "审批", "办结", "不予受理", "退回", "已取件")
DEMO_NAME = "演示用户"
DEMO_PHONE = "13800138000"
DEFAULT_BRING = (
    "受理回执（或受理号）",
    "申请人本人有效身份证件原件",
    "委托他人代领的，另带委托书和代领人身份证件原件",
)

metadata = MetaData()
cases_table = Table(
    "cases",
    metadata,
    Column("ticket_no", String(15), primary_key=True),
    Column("item_code", String(32), nullable=False),
    Column("item_name", String(200), nullable=False),
    Column("applicant_name", String(64), nullable=False),
    Column("applicant_phone", String(20), nullable=False),
    Column("applicant_id_number", String(18)),
    Column("window_name", String(200), nullable=False),
    Column("window_phone", String(32), nullable=False),
    Column("window_location", Text, nullable=False),
    Column("office_hours", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("time_limit_days", Integer),
    Column("accepted_at", String(40)),
    Column("missing_materials", Text),  # JSON list while in 补正
    Column("collection", Text),  # JSON object once 办结
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)
events_table = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("ticket_no", String(15), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("note", Text),
    Column("clerk", String(64)),
    Column("at", String(40), nullable=False),
)
sequences_table = Table(
    "daily_sequences",
    metadata,
    Column("day", String(8), primary_key=True),
    Column("last", Integer, nullable=False),
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(message)


def parse_time_limit(text: str) -> int | None:
    """承诺办结时限 → working days: "即办…" → 0, "3个工作日…" → 3, "0.5个工作日" → 1; else None."""
    text = (text or "").strip()
    if text.startswith("即办"):
        return 0
    match = re.search(r"(\d+(?:\.\d+)?)个工作日", text)
    return math.ceil(float(match.group(1))) if match else None


def id_check_char(body17: str) -> str:
    """GB 11643 check character of a resident ID number (seed data looks real)."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body17, weights, strict=True))
    return "10X98765432"[total % 11]


def _iso(moment: datetime) -> str:
    return moment.astimezone(TZ).isoformat(timespec="seconds")


def _parse_at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ApiError(422, "invalid_time", "at 必须是 ISO 8601 时间") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=TZ)


def _str_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ApiError(422, "invalid_field", f"{name} 必须是非空字符串列表")
    return [v.strip() for v in value]


@dataclass
class Fault:
    delay: float = 0.0
    status: int | None = None
    body: str | None = None
    times: int = 1
    path_prefix: str = "/api/"


@dataclass
class ReferenceState:
    faults_enabled: bool = False
    fault: Fault | None = None
    stats: Counter[str] = field(default_factory=Counter)

    def take_fault(self, path: str) -> Fault | None:
        fault = self.fault
        if fault is None or not path.startswith(fault.path_prefix):
            return None
        if fault.times > 0:
            fault.times -= 1
            if fault.times == 0:
                self.fault = None
        return fault


class ReferenceBackend:
    """The store and rules behind the HTTP API (usable directly from tests)."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        catalogue: Sequence[GuideItem] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(TZ),
    ) -> None:
        self.db_path = Path(db_path)
        items = catalogue if catalogue is not None else read_catalogue(SAMPLE_CATALOGUE_CSV).items
        self.items: dict[str, GuideItem] = {item.code: item for item in items}
        self.clock = clock
        self._engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the reference backend is not started")
        return self._engine

    async def start(self) -> None:
        self._engine = create_engine(f"sqlite+aiosqlite:///{self.db_path}")
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(cases_table)) or 0)

    # -- reads ------------------------------------------------------------------------------------------

    async def get_case(self, ticket_no: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (
                (await conn.execute(select(cases_table).where(cases_table.c.ticket_no == ticket_no)))
                .mappings()
                .first()
            )
            if row is None:
                return None
            events = (
                (
                    await conn.execute(
                        select(events_table)
                        .where(events_table.c.ticket_no == ticket_no)
                        .order_by(events_table.c.seq)
                    )
                )
                .mappings()
                .all()
            )
        return self._case_json(dict(row), [dict(e) for e in events])

    @staticmethod
    def _case_json(row: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
        missing = json.loads(row["missing_materials"]) if row["missing_materials"] else None
        collection = json.loads(row["collection"]) if row["collection"] else None
        return {
            "ticket_no": row["ticket_no"],
            "item": {"code": row["item_code"], "name": row["item_name"]},
            "applicant": {
                "name": row["applicant_name"],
                "phone": row["applicant_phone"],
                "id_number": row["applicant_id_number"],
            },
            "window": {
                "name": row["window_name"],
                "phone": row["window_phone"],
                "location": row["window_location"],
            },
            "status": row["status"],
            "accepted_at": row["accepted_at"],
            "time_limit_days": row["time_limit_days"],
            "history": [
                {"status": e["status"], "at": e["at"], "note": e["note"] or "", "clerk": e["clerk"] or ""}
                for e in events
            ],
            "correction": {"missing_materials": missing} if row["status"] == "补正" and missing else None,
            "collection": collection if row["status"] in ("办结", "已取件") else None,
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    async def changes(self, since: int, limit: int) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(events_table)
                        .where(events_table.c.seq > since)
                        .order_by(events_table.c.seq)
                        .limit(limit + 1)
                    )
                )
                .mappings()
                .all()
            )
        page = rows[:limit]
        return {
            "changes": [
                {"seq": r["seq"], "ticket_no": r["ticket_no"], "status": r["status"], "changed_at": r["at"]}
                for r in page
            ],
            "next_cursor": str(page[-1]["seq"]) if page else str(since),
            "has_more": len(rows) > limit,
        }

    # -- writes -----------------------------------------------------------------------------------------

    async def create_case(
        self,
        *,
        item_code: str,
        applicant_name: str,
        applicant_phone: str,
        applicant_id_number: str | None = None,
        status: str = "受理",
        at: datetime | None = None,
        clerk: str = "",
        note: str = "",
    ) -> dict[str, Any]:
        item = self.items.get(item_code)
        if item is None:
            raise ApiError(422, "unknown_item", f"事项编码 {item_code} 不在事项目录中")
        if status not in ("申请", "受理"):
            raise ApiError(422, "invalid_status", "新建办件的状态只能是 申请 或 受理")
        name = applicant_name.strip()
        phone = re.sub(r"\D", "", applicant_phone)
        if not name or not re.fullmatch(r"1[3-9]\d{9}", phone):
            raise ApiError(422, "invalid_applicant", "需要申请人姓名和11位手机号码")
        if applicant_id_number is not None and not re.fullmatch(r"\d{17}[\dXx]", applicant_id_number):
            raise ApiError(422, "invalid_applicant", "身份证号码格式不正确")
        moment = at or self.clock()
        stamp = _iso(moment)
        async with self._write_lock, self.engine.begin() as conn:
            day = moment.astimezone(TZ).date()
            key = f"{day:%Y%m%d}"
            last = await conn.scalar(select(sequences_table.c.last).where(sequences_table.c.day == key))
            sequence = (last or 0) + 1
            if last is None:
                await conn.execute(insert(sequences_table).values(day=key, last=sequence))
            else:
                await conn.execute(
                    update(sequences_table).where(sequences_table.c.day == key).values(last=sequence)
                )
            ticket = make_ticket(day, sequence)
            await conn.execute(
                insert(cases_table).values(
                    ticket_no=ticket,
                    item_code=item.code,
                    item_name=item.name,
                    applicant_name=name,
                    applicant_phone=phone,
                    applicant_id_number=applicant_id_number,
                    window_name=item.window,
                    window_phone=item.phone,
                    window_location=item.location or item.window,
                    office_hours=item.office_hours,
                    status=status,
                    time_limit_days=parse_time_limit(item.promised_time_limit),
                    accepted_at=stamp if status == "受理" else None,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            await conn.execute(
                insert(events_table).values(ticket_no=ticket, status=status, note=note, clerk=clerk, at=stamp)
            )
        case = await self.get_case(ticket)
        assert case is not None
        return case

    async def change_status(
        self,
        ticket_no: str,
        status: str,
        *,
        note: str = "",
        clerk: str = "",
        missing_materials: list[str] | None = None,
        collection: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        if status not in STATUSES:
            raise ApiError(422, "invalid_status", f"状态必须是 {'/'.join(STATUSES)} 之一")
        if status == "补正" and not missing_materials:
            raise ApiError(422, "missing_materials_required", "补正必须列出需补正的全部材料")
        moment = at or self.clock()
        stamp = _iso(moment)
        async with self._write_lock, self.engine.begin() as conn:
            row = (
                (await conn.execute(select(cases_table).where(cases_table.c.ticket_no == ticket_no)))
                .mappings()
                .first()
            )
            if row is None:
                raise ApiError(404, "not_found", "没有这个受理号的办件")
            current = row["status"]
            if current == status:
                raise ApiError(409, "no_change", f"办件已经是 {status} 状态")
            if status == "已取件" and current != "办结":
                raise ApiError(409, "invalid_transition", "只有办结的办件才能登记取件")
            values: dict[str, Any] = {"status": status, "updated_at": stamp}
            if status == "补正":
                values["missing_materials"] = json.dumps(missing_materials, ensure_ascii=False)
            if status in ("受理", "审核", "审批", "办结") and row["accepted_at"] is None:
                values["accepted_at"] = stamp
            if status == "办结":
                item = self.items.get(row["item_code"])
                default = {
                    "place": row["window_location"],
                    "method": "窗口领取（也可申请免费邮寄）",
                    "hours": row["office_hours"] or (item.office_hours if item else ""),
                    "bring": list(DEFAULT_BRING),
                }
                given = collection or {}
                bring = _str_list(given.get("bring"), "collection.bring") if "bring" in given else None
                values["collection"] = json.dumps(
                    {
                        "place": str(given.get("place") or default["place"]),
                        "method": str(given.get("method") or default["method"]),
                        "hours": str(given.get("hours") or default["hours"]),
                        "bring": bring or default["bring"],
                    },
                    ensure_ascii=False,
                )
            await conn.execute(
                update(cases_table).where(cases_table.c.ticket_no == ticket_no).values(**values)
            )
            await conn.execute(
                insert(events_table).values(
                    ticket_no=ticket_no, status=status, note=note, clerk=clerk, at=stamp
                )
            )
        case = await self.get_case(ticket_no)
        assert case is not None
        return case

    # -- seed -------------------------------------------------------------------------------------------

    async def seed(self, count: int = 40, *, seed: int = 20260213) -> list[str]:
        """Register ``count`` realistic cases with their histories (deterministic for a given seed)."""
        rng = random.Random(seed)
        now = self.clock()
        items = sorted(self.items.values(), key=lambda i: i.code)
        timed = [i for i in items if (parse_time_limit(i.promised_time_limit) or 0) > 0]
        paths: list[tuple[str, ...]] = [
            ("审核",),
            ("补正",),
            ("审核", "审批", "办结"),
            ("申请",),
            ("受理",),
            ("审核", "审批"),
            ("补正", "审核"),
            ("不予受理",),
            ("审核", "退回"),
            ("审核", "审批", "办结", "已取件"),
        ]
        tickets: list[str] = []
        for n in range(count):
            path = paths[n % len(paths)]
            demo = n < 3
            item = rng.choice(timed if path[-1] in ("审核", "审批", "补正", "受理") else items)
            days_ago = 1 + (n * 7) % 25 if n % 9 else 40  # every ninth case is old: some are overdue
            start = (now - timedelta(days=days_ago)).replace(
                hour=9 + rng.randrange(7), minute=rng.randrange(60), second=0, microsecond=0
            )
            initial = "申请" if path[0] in ("申请", "不予受理") else "受理"
            name, phone, id_number = (DEMO_NAME, DEMO_PHONE, None) if demo else _person(rng, start.date())
            case = await self.create_case(
                item_code=item.code,
                applicant_name=name,
                applicant_phone=phone,
                applicant_id_number=id_number,
                status=initial,
                at=start,
                clerk="窗口登记",
            )
            steps = [s for s in path if s != initial]
            span = (now - start) * 0.8
            for k, status in enumerate(steps, start=1):
                moment = start + span * k / (len(steps) + 1)
                missing = None
                if status == "补正":
                    materials = list(item.materials_list) or ["申请材料原件"]
                    missing = rng.sample(materials, k=min(len(materials), 1 + rng.randrange(2)))
                await self.change_status(
                    case["ticket_no"], status, missing_materials=missing, at=moment, clerk="审批科室"
                )
            tickets.append(case["ticket_no"])
        return tickets


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余于杜叶程魏苏吕丁任"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红梅兰玉凤春晓东海燕萍斌鹏飞宇浩然欣怡子涵"


def _person(rng: random.Random, on: date) -> tuple[str, str, str]:
    name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))
    phone = rng.choice(("138", "139", "150", "151", "158", "177", "180", "182", "187", "199")) + "".join(
        str(rng.randrange(10)) for _ in range(8)
    )
    birth = date(on.year - 20 - rng.randrange(45), 1 + rng.randrange(12), 1 + rng.randrange(28))
    body = f"360722{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return name, phone, body + id_check_char(body)


# ------------------------------------------------------------------------------------------------- HTTP

BACKEND = web.AppKey("backend", ReferenceBackend)
STATE = web.AppKey("state", ReferenceState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _middlewares(token: str) -> list[Any]:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return _error(exc.status, exc.code, exc.message)

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and request.path.startswith("/api/"):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, f"Bearer {token}".encode()):
                return _error(401, "unauthorized", "需要有效的访问令牌")
        return await handler(request)

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        state = request.app[STATE]
        resource = request.match_info.route.resource
        state.stats[f"{request.method} {resource.canonical if resource else request.path}"] += 1
        fault = state.take_fault(request.path) if state.faults_enabled else None
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None or fault.body is not None:
                return web.Response(
                    status=fault.status or 200, text=fault.body or "", content_type="application/json"
                )
        return await handler(request)

    return [faults, auth, errors]


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "invalid_json", "请求体必须是 JSON 对象") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "请求体必须是 JSON 对象")
    return body


def _ticket(request: web.Request) -> str:
    ticket = request.match_info["ticket_no"]
    if not is_valid_ticket(ticket):
        raise ApiError(404, "not_found", "没有这个受理号的办件")
    return ticket


async def get_case_view(request: web.Request) -> web.Response:
    case = await request.app[BACKEND].get_case(_ticket(request))
    if case is None:
        raise ApiError(404, "not_found", "没有这个受理号的办件")
    return web.json_response(case)


async def create_case_view(request: web.Request) -> web.Response:
    body = await _json_body(request)
    applicant = body.get("applicant")
    if not isinstance(applicant, dict) or not isinstance(body.get("item_code"), str):
        raise ApiError(422, "invalid_field", "需要 item_code 和 applicant{name, phone}")
    id_number = applicant.get("id_number")
    case = await request.app[BACKEND].create_case(
        item_code=body["item_code"],
        applicant_name=str(applicant.get("name") or ""),
        applicant_phone=str(applicant.get("phone") or ""),
        applicant_id_number=str(id_number) if id_number else None,
        status=str(body.get("status") or "受理"),
        at=_parse_at(body.get("at")),
        clerk=str(body.get("clerk") or ""),
        note=str(body.get("note") or ""),
    )
    return web.json_response(case, status=201)


async def change_status_view(request: web.Request) -> web.Response:
    ticket = _ticket(request)
    body = await _json_body(request)
    collection = body.get("collection")
    if collection is not None and not isinstance(collection, dict):
        raise ApiError(422, "invalid_field", "collection 必须是对象")
    case = await request.app[BACKEND].change_status(
        ticket,
        str(body.get("status") or ""),
        note=str(body.get("note") or ""),
        clerk=str(body.get("clerk") or ""),
        missing_materials=_str_list(body.get("missing_materials"), "missing_materials") or None,
        collection=collection,
        at=_parse_at(body.get("at")),
    )
    return web.json_response(case)


async def changes_view(request: web.Request) -> web.Response:
    try:
        since = int(request.query.get("since") or 0)
        limit = int(request.query.get("limit") or 100)
    except ValueError:
        raise ApiError(400, "invalid_query", "since 和 limit 必须是整数") from None
    if since < 0 or not 1 <= limit <= 1000:
        raise ApiError(400, "invalid_query", "since ≥ 0，1 ≤ limit ≤ 1000")
    return web.json_response(await request.app[BACKEND].changes(since, limit))


async def items_view(request: web.Request) -> web.Response:
    items = request.app[BACKEND].items.values()
    return web.json_response(
        {
            "items": [
                {
                    "code": i.code,
                    "name": i.name,
                    "window": i.window,
                    "time_limit_days": parse_time_limit(i.promised_time_limit),
                }
                for i in sorted(items, key=lambda i: i.code)
            ]
        }
    )


async def health_view(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "cases": await request.app[BACKEND].count()})


async def faults_view(request: web.Request) -> web.Response:
    body = await _json_body(request)
    state = request.app[STATE]
    times = int(body.get("times", 1))
    if times == 0:
        state.fault = None
    else:
        status = body.get("status")
        state.fault = Fault(
            delay=float(body.get("delay", 0.0)),
            status=int(status) if status is not None else None,
            body=body.get("body"),
            times=times,
            path_prefix=str(body.get("path_prefix") or "/api/"),
        )
    return web.json_response({"ok": True})


async def stats_view(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app[STATE].stats))


def build_app(
    backend: ReferenceBackend, *, token: str = "", enable_faults: bool = False, seed: int = 0
) -> web.Application:
    """The HTTP app; starting it opens the database and seeds ``seed`` cases into an empty one."""
    app = web.Application(middlewares=_middlewares(token))
    app[BACKEND] = backend
    app[STATE] = ReferenceState(faults_enabled=enable_faults)
    app.add_routes(
        [
            web.get("/health", health_view),
            web.get("/api/v1/items", items_view),
            web.post("/api/v1/cases", create_case_view),
            web.get("/api/v1/cases/{ticket_no}", get_case_view),
            web.post("/api/v1/cases/{ticket_no}/status", change_status_view),
            web.get("/api/v1/changes", changes_view),
        ]
    )
    if enable_faults:
        app.add_routes(
            [web.post("/_reference/faults", faults_view), web.get("/_reference/stats", stats_view)]
        )

    async def _start(_app: web.Application) -> None:
        await backend.start()
        if seed and await backend.count() == 0:
            tickets = await backend.seed(seed)
            log.info("reference approval backend seeded with %d cases", len(tickets))

    async def _stop(_app: web.Application) -> None:
        await backend.close()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Reference approval backend (电子审批系统 stand-in)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8183)
    parser.add_argument("--db", default="var/approval.db", help="its own SQLite file")
    parser.add_argument(
        "--token",
        default=Env().text("APPROVAL_API_TOKEN", ""),
        help="require 'Authorization: Bearer <token>' on /api/ (default: $APPROVAL_API_TOKEN, out of `ps`)",
    )
    parser.add_argument("--catalogue", default=str(SAMPLE_CATALOGUE_CSV), help="事项目录 (csv/xlsx)")
    parser.add_argument("--seed", type=int, default=40, help="cases to seed into an empty database (0: none)")
    parser.add_argument("--enable-faults", action="store_true", help="test-only fault injection endpoints")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    catalogue = read_catalogue(args.catalogue)
    if not catalogue.items:
        raise SystemExit(f"no catalogue items in {args.catalogue}")
    backend = ReferenceBackend(args.db, catalogue=catalogue.items)
    app = build_app(backend, token=args.token, enable_faults=args.enable_faults, seed=args.seed)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
