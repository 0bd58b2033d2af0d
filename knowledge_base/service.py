"""``KnowledgeBase``: the facade the bot (Rasa actions), the gateway and the staff API use.

Freshness across processes (gateway workers, actions server, CLI): the catalogue lives in the database and
every change inserts a row into ``kb_versions``.  Each ``KnowledgeBase`` keeps an in-memory
:class:`~knowledge_base.search.SearchIndex` tagged with the version it was built from and, before a question,
checks the stored version:

- without Redis: ``SELECT max(version) FROM kb_versions`` at most once per ``check_interval`` (0.5 s by
  default) — one indexed aggregate on a tiny table, so the per-question cost is usually zero and never more
  than one cheap query; a re-import is visible to every process within ``check_interval``;
- with Redis (optional): additionally ``GET govbot:kb:version`` on every question (~0.1 ms), which importers
  given a Redis client set after their commit, so such imports are visible on the very next question.  The
  periodic DB read still runs, so imports made without Redis (the CLI) are never missed.

When the version differs, the index is rebuilt from the database (in a worker thread, one rebuild at a time);
questions keep being answered from the previous index meanwhile.  No restart, no Rasa retraining.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import utcnow
from knowledge_base.answers import (
    DEFAULT_HOURS,
    DEFAULT_PHONE,
    match_faq,
    render_answer,
    render_ask_item,
    render_choice_out_of_range,
    render_choices,
    render_elsewhere,
    render_not_found,
    short_answer,
)
from knowledge_base.elsewhere import where_else
from knowledge_base.importer import VERSION_KEY, current_version, load_aliases, load_item, load_items
from knowledge_base.models import KbUnanswered
from knowledge_base.schema import GuideItem
from knowledge_base.search import (
    QUALIFIERS,
    QueryAnalysis,
    SearchHit,
    SearchIndex,
    SearchParams,
    SearchResult,
)
from knowledge_base.textproc import another_place_owns, normalize_text

log = logging.getLogger(__name__)

Kind = Literal["answer", "choices", "not_found"]

_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CHOICE_RE = re.compile(
    r"^(?:我选|选|要|就|是)?(?:第)?(?P<n>[1-9]|[一二两三四五六七八九])(?:个|项|号|条)?(?:吧|的|呢|啊)?$"
)
FOREIGN_SUBJECT = 0.5  # share of a question's subject words the catalogue never uses: not grounded at this
_OTHER_RE = re.compile(r"另一个|另外一个|另外那个|另一项|其他那个|别的那个|换一个")
# "上海的公积金", "广东省的社保": a service of another city or province is that place's business.
_PLACES = (
    r"(北京|上海|天津|重庆|广州|深圳|杭州|南京|苏州|武汉|成都|西安|长沙|福州|厦门|合肥|郑州|济南|青岛|东莞|佛山"
    r"|广东|浙江|江苏|福建|湖南|湖北|安徽|河南|山东|四川|外省|省外)(市|省)?"
)
_ELSEWHERE = re.compile(
    _PLACES + r"(那边)?的"
    # Hong Kong's, Macao's, Taiwan's or a foreign country's own papers (not the permits to go there)
    r"|(香港|澳门|台湾|国外|外国)(那边)?的?(身份证|居民证|健保卡|医保卡|社保卡|驾照|驾驶证|户口|户籍|学历)"
)
# "怎么在东莞那边办提取", "在深圳注册的": done there — unless the question names a catalogue item
# ("户口迁出要在浙江那边办吗")
# (not done there once: "在深圳开了三年奶茶店 关了回信丰了 个体户怎么注销")
_DONE_THERE = re.compile(r"在" + _PLACES + r"(那边|那里|当地)?(办|提|申请|开|注册)(?!了|过)")
# Not a public service: a private company's phone or address, a court's reckoning of support or damages.
_NOT_OURS = re.compile(
    r"(搬家|装修|快递|物流|保险|家政|中介|租车|保洁|开锁|婚庆|外卖|搬运)公司.{0,4}(电话|地址|在哪|联系|哪家|靠谱|推荐)"
    r"|哪家(搬家|装修|快递|物流|保险|家政|中介|租车|保洁|开锁|婚庆)"
    r"|抚养费|赡养费|彩礼|赔偿(金)?(多少|怎么算)|赔多少|判多少|判几年|打官司"
    # asking which business is good is asking for a recommendation, not a service
    r"|哪家.{0,8}(好吃|好玩|便宜|实惠|靠谱|正宗|划算|最好|好些|好一点|比较好)"
)
# Where to spend a weekend — unless a catalogue item is named ("带孩子去香港玩 港澳通行证怎么办")
_LEISURE = re.compile(r"(去|到)哪(里|儿)?(玩|好玩|耍)|好玩的地方|带(孩子|小孩|娃|崽).{0,6}(去)?玩")


def grounded(qa: QueryAnalysis) -> bool:
    """The question names a catalogue item, or most of its subject words are the catalogue's own."""
    return qa.exact or qa.foreign < FOREIGN_SUBJECT


_MAX_ENDING_CLAUSES = 4  # a question is asked in its last few clauses; this also bounds the searches
_MAX_ENDING_CHARS = 80
_CLAUSES = re.compile(r"[，。,.？?！!；;…\s]+")


def focus_on_question(idx: SearchIndex, question: str, result: SearchResult) -> SearchResult:
    """A long message tells a story and asks at the end ("我父亲上个月在老家去世了，丧事都办完了，…户口要去
    销掉…在哪里办"): its incidental words drown the subject.  When a message of three clauses or more finds
    no single item, the shortest ending (the last clause, the last two …) that does — one of the whole
    message's nearest items, on the catalogue's words, naming a service more narrowly than "登记" — is what
    is asked.  Otherwise ``result``."""
    clauses = [c for c in _CLAUSES.split(question) if c]
    if len(clauses) < 3:
        return result
    near = {h.code for h in result.hits[:5]}
    for k in range(1, min(len(clauses), _MAX_ENDING_CLAUSES + 1)):
        ending = "，".join(clauses[-k:])
        if len(ending) > _MAX_ENDING_CHARS:
            break
        if len(ending) < 5:
            continue
        focused = idx.search(ending)
        if (
            focused.decision == "answer"
            and focused.top is not None
            and focused.top.code in near
            and focused.query.foreign < FOREIGN_SUBJECT
            and idx.names_a_service(focused.query)
        ):
            return focused
    return result


@dataclass
class GuideAnswer:
    kind: Kind
    messages: list[str]
    item_code: str | None = None
    choices: list[str] = field(default_factory=list)
    aspect: str | None = None
    score: float = 0.0
    faq: bool = False  # no aspect asked: answered with the item's FAQ entry that matches the question
    # False when most of the question's subject words are words the catalogue never uses and no item name
    # or alias matched ("二手车能卖多少钱" → 二手房转移登记): an answer, but one a caller that has reason to
    # think the question is off-topic (NLU said so) should not trust
    grounded: bool = True
    foreign: float = 0.0  # the share of the question's subject words the catalogue never uses
    elsewhere: bool = False  # not found here: another office's service, and the reply says which
    short: dict[str, str] | None = (
        None  # the answer in a few words (``answers.short_answer``), for SMS templates
    )

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


@dataclass(frozen=True)
class UnansweredQuestion:
    id: int
    question: str
    channel: str
    kind: str
    best_code: str | None
    best_name: str | None
    score: float
    created_at: datetime


def parse_choice(text: str) -> int | None:
    """1-based index from a bare choice reply ("2", "２", "第二个", "选3"), else None."""
    t = normalize_text(text).replace(" ", "")
    m = _CHOICE_RE.match(t)
    if not m:
        return None
    n = m.group("n")
    return int(n) if n.isdigit() else _CN_DIGITS[n]


def _subject_of(name: str) -> str:
    """The subject of an item name without qualifiers: 居民身份证首次申领 → 居民身份证."""
    base = re.sub(r"[（(][^）)]*[）)]", "", name)
    markers = sorted(
        {m for ms, _ in QUALIFIERS.values() for m in ms}
        | {"首次申领", "申领", "新办", "首次", "登记", "设立", "申请", "办理", "核发"},
        key=len,
        reverse=True,
    )
    for m in markers:
        base = base.replace(m, "")
    return base.strip("/、 ") or name


class KnowledgeBase:
    """Answers citizens' service-guide questions from the stored catalogue (see module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Any = None,
        *,
        phone: str = DEFAULT_PHONE,
        office_hours: str = DEFAULT_HOURS,
        check_interval: float = 0.5,
        params: SearchParams | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.phone = phone
        self.office_hours = office_hours
        self.check_interval = check_interval
        self.params = params
        self._index: SearchIndex | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    # -- index freshness ---------------------------------------------------------------------------

    @property
    def version(self) -> int | None:
        return self._index.version if self._index is not None else None

    async def _redis_version(self) -> int | None:
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(VERSION_KEY)
        except Exception:  # Redis is an optional fast path
            return None
        if raw is None:
            return None
        try:
            return int(raw.decode() if isinstance(raw, bytes) else raw)
        except ValueError:
            return None

    async def index(self) -> SearchIndex:
        """The current index, rebuilt first if the stored catalogue version changed."""
        idx = self._index
        now = time.monotonic()
        if idx is not None:
            fast = await self._redis_version()
            if fast is not None and fast > idx.version:
                return await self._rebuild()
            if now - self._checked_at < self.check_interval:
                return idx
        async with self.sessionmaker() as session:
            stored = await current_version(session)
        self._checked_at = time.monotonic()
        if idx is None or stored != idx.version:
            return await self._rebuild()
        return idx

    async def item(self, code: str) -> GuideItem | None:
        """One catalogue item by its code, from the database (no index is built for this)."""
        async with self.sessionmaker() as session:
            return await load_item(session, code)

    async def reload(self) -> SearchIndex:
        """Rebuild the index from the database now."""
        return await self._rebuild(force=True)

    async def _rebuild(self, force: bool = False) -> SearchIndex:
        async with self._lock:
            async with self.sessionmaker() as session:
                version = await current_version(session)
                if not force and self._index is not None and self._index.version == version:
                    return self._index
                items = await load_items(session)
                aliases = await load_aliases(session)
            index = await asyncio.to_thread(SearchIndex, items, aliases, version=version, params=self.params)
            self._index = index
            self._checked_at = time.monotonic()
            if self.redis is not None:
                try:
                    cur = await self._redis_version()
                    if cur != version:  # the database is the source of truth (it may have been reset)
                        await self.redis.set(VERSION_KEY, str(version))
                except Exception:
                    log.debug("could not publish the catalogue version to Redis", exc_info=True)
            log.info("knowledge base index built: version %s, %d items", version, len(items))
            return index

    # -- public API --------------------------------------------------------------------------------

    async def search(self, q: str, limit: int = 10) -> list[SearchHit]:
        idx = await self.index()
        return idx.search(q, limit=limit).hits

    async def answer(
        self,
        question: str,
        *,
        channel: str = "wechat",
        last_item_code: str | None = None,
        pending_choices: list[str] | None = None,
        log_unanswered: bool = True,
    ) -> GuideAnswer:
        """Answer a citizen's question (see the module docstring of ``answers.py`` for the reply format).

        ``last_item_code``: the item of the previous answer (follow-ups like "那要多少钱？" refer to it);
        ``pending_choices``: item codes offered in the previous reply (a bare "2" picks the second);
        ``log_unanswered=False``: a staff member trying a question (not stored in the unanswered queue).
        """
        idx = await self.index()
        if pending_choices:
            n = parse_choice(question)
            if n is not None:
                return await self.choose(n - 1, pending_choices, channel=channel)
        plain = normalize_text(question)
        compact_text = plain.replace(" ", "")
        if (
            _ELSEWHERE.search(plain)
            or _NOT_OURS.search(plain)
            or another_place_owns(plain, idx.home)
            or ((_DONE_THERE.search(plain) or _LEISURE.search(plain)) and not idx.names_spans(compact_text))
        ):
            return GuideAnswer(
                "not_found", render_not_found(channel=channel, phone=self.phone, hours=self.office_hours)
            )
        result = idx.search(question)
        qa = result.query
        if (other := where_else(compact_text, idx.names_spans(compact_text))) is not None:  # 驾驶证, 商标 …
            # a direct answer that names the item ("新生儿落户要带疫苗接种本吗"), or whose words the catalogue
            # speaks of somewhere ("二手房过户要带银行卡吗"), is the catalogue's; "二手车过户" answered with
            # 二手房 is not: the catalogue never says 二手车
            confident = result.decision == "answer" and grounded(qa)
            ours = confident and (qa.exact or all(idx.mentions_anywhere(w) for w in other.words))
            if other.always or not ours:
                told = render_elsewhere(other.where, channel=channel, phone=self.phone)
                return GuideAnswer("not_found", told, elsewhere=True)
        last = idx.item(last_item_code) if last_item_code else None

        if pending_choices and _OTHER_RE.search(qa.text):
            others = [c for c in pending_choices if c != last_item_code and idx.item(c)]
            if len(others) == 1:
                return self._answer_item(idx, others[0], qa.aspects, channel, question, result.hits)
            if others:
                return self._choices(idx, others, channel, qa.aspect, 0.0)

        if last is not None:
            if not qa.has_content or (_OTHER_RE.search(qa.text) and not qa.subject_tokens):
                return self._answer_item(idx, last.code, qa.aspects, channel, question, result.hits)
            if result.decision != "answer":
                # "那补办呢" after 居民身份证首次申领: read the question with the previous item's subject.
                ctx = idx.search(f"{_subject_of(last.name)} {qa.text}")
                near = {h.code for h in result.hits[:5]}
                if (
                    ctx.decision == "answer"
                    and ctx.top is not None
                    and (not qa.subject_tokens or ctx.top.code in near)
                ):
                    return self._answer_item(idx, ctx.top.code, qa.aspects, channel, question, ctx.hits)
                if qa.aspects and not qa.subject_tokens:
                    return self._answer_item(idx, last.code, qa.aspects, channel, question, result.hits)

        if result.decision != "answer":
            result = focus_on_question(idx, question, result)
            qa = result.query
        if result.decision == "answer" and result.top is not None:
            answer = self._answer_item(idx, result.top.code, qa.aspects, channel, question, result.hits)
            answer.grounded = grounded(qa)
            answer.foreign = qa.foreign
            return answer
        if not qa.has_content:
            asked = render_ask_item(channel=channel, phone=self.phone)
            return GuideAnswer("not_found", asked, aspect=qa.aspect)
        if log_unanswered:
            await self._log_unanswered(question, qa.text, channel, result)
        if result.decision == "choices":
            top = result.choices[0].score if result.choices else 0.0
            offered = self._choices(idx, [h.code for h in result.choices], channel, qa.aspect, top)
            offered.grounded = grounded(qa)
            offered.foreign = qa.foreign
            return offered
        best = result.top
        return GuideAnswer(
            "not_found",
            render_not_found(channel=channel, phone=self.phone, hours=self.office_hours),
            aspect=qa.aspect,
            score=best.score if best else 0.0,
        )

    async def choose(
        self, index: int, pending_choices: list[str], *, channel: str = "wechat", question: str = ""
    ) -> GuideAnswer:
        """Pick ``pending_choices[index]`` (``index`` is 0-based: the citizen's reply "2" is index 1).

        ``question`` may carry the original question: its aspect (要带什么 …) is answered for the chosen item.
        An index out of range (or a choice whose item was removed meanwhile) re-asks with the same choices.
        """
        idx = await self.index()
        if not 0 <= index < len(pending_choices) or idx.item(pending_choices[index]) is None:
            return GuideAnswer(
                "choices",
                render_choice_out_of_range(len(pending_choices), channel=channel),
                choices=list(pending_choices),
            )
        aspects = idx.analyze(question)[0].aspects if question else []
        return self._answer_item(idx, pending_choices[index], aspects, channel, question, [])

    async def unanswered(self, limit: int = 50) -> list[UnansweredQuestion]:
        """The most recent unanswered / low-confidence questions, newest first."""
        async with self.sessionmaker() as session:
            rows = (
                await session.scalars(
                    select(KbUnanswered)
                    .order_by(KbUnanswered.created_at.desc(), KbUnanswered.id.desc())
                    .limit(limit)
                )
            ).all()
        return [
            UnansweredQuestion(
                r.id, r.question, r.channel, r.kind, r.best_code, r.best_name, r.score, r.created_at
            )
            for r in rows
        ]

    # -- helpers -----------------------------------------------------------------------------------

    def _answer_item(
        self,
        idx: SearchIndex,
        code: str,
        aspects: list[str],
        channel: str,
        question: str,
        hits: list[SearchHit],
    ) -> GuideAnswer:
        item = idx.item(code)
        assert item is not None
        score = next((h.score for h in hits if h.code == code), 0.0)
        return GuideAnswer(
            "answer",
            render_answer(item, aspects, channel=channel, question=question),
            item_code=code,
            aspect=aspects[0] if aspects else None,
            score=score,
            faq=not aspects and bool(question) and match_faq(item, question) is not None,
            short=short_answer(item, aspects),
        )

    def _choices(
        self, idx: SearchIndex, codes: list[str], channel: str, aspect: str | None, score: float
    ) -> GuideAnswer:
        items = [it for it in (idx.item(c) for c in codes) if it is not None]
        return GuideAnswer(
            "choices",
            render_choices(items, channel=channel),
            choices=[it.code for it in items],
            aspect=aspect,
            score=score,
        )

    async def _log_unanswered(
        self, question: str, normalized: str, channel: str, result: SearchResult
    ) -> None:
        best = result.top
        try:
            async with self.sessionmaker() as session, session.begin():
                session.add(
                    KbUnanswered(
                        question=question[:2000],
                        normalized=normalized[:2000],
                        channel=channel,
                        kind=result.decision,
                        best_code=best.code if best else None,
                        best_name=best.name if best else None,
                        score=float(best.score) if best else 0.0,
                        created_at=utcnow(),
                    )
                )
        except Exception:  # logging a question must never break answering it
            log.exception("could not store an unanswered question")
