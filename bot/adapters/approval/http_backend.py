"""The approval backend over HTTP/JSON (aiohttp): mapping file, timeouts, bounded retries, circuit breaker,
short Redis cache, metrics.

One lookup has a time budget (``budget``, default 2.5 s) that fits the WeChat reply deadline: every attempt
has its own timeout (``timeout``, default 1.5 s, cut to what is left of the budget), and GETs are retried
(``retries``, default 2) after a timeout, a connection error or a 5xx/429, only while the budget allows.
A 404 (or the mapping's not-found code) is an answer, not a failure.  A failed lookup (after its retries)
counts once towards the circuit breaker.  Errors raise :class:`ApprovalUnavailable`; their messages name the
path template only, never the ticket number, a phone or the token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import quote

import aiohttp
import redis.asyncio as aioredis

from bot.adapters.approval.backend import ApprovalUnavailable, CircuitOpenError
from bot.adapters.approval.breaker import CircuitBreaker
from bot.adapters.approval.config import ApprovalSettings
from bot.adapters.approval.mapping import FieldMapping, MappingError
from bot.adapters.approval.model import Case, ChangeBatch, mask_ticket
from bot.core.metrics import Metrics

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MIN_ATTEMPT = 0.2  # seconds: no retry is started with less budget than this left
CACHE_PREFIX = "approval:case:"


class _Retryable(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


class HttpApprovalBackend:
    """:class:`~bot.adapters.approval.backend.ApprovalBackend` over HTTP/JSON."""

    def __init__(
        self,
        settings: ApprovalSettings,
        redis: aioredis.Redis,
        *,
        mapping: FieldMapping | None = None,
        session: aiohttp.ClientSession | None = None,
        metrics: Metrics | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.settings = settings
        self.mapping = mapping or FieldMapping.load(settings.mapping_file)
        self._redis = redis
        self._session = session
        self._own_session = session is None
        self._metrics = metrics
        self.breaker = breaker or CircuitBreaker(
            redis,
            failures=settings.breaker_failures,
            window=settings.breaker_window,
            open_for=settings.breaker_open,
            probe_timeout=settings.budget * 2,
        )

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.settings.api_token:
            scheme = self.mapping.auth_scheme
            token = self.settings.api_token.get_secret_value()
            headers[self.mapping.auth_header] = f"{scheme} {token}" if scheme else token
        return headers

    # -- public API -------------------------------------------------------------------------------------

    async def get_case(self, ticket_no: str, *, fresh: bool = False) -> Case | None:
        if not fresh:
            cached = await self._cache_get(ticket_no)
            if cached is not None:
                await self._count("cache_hit")
                return cached
        path = self.mapping.case_path.format(ticket_no=quote(ticket_no, safe=""))
        status, body = await self._guarded_get(path, None, what=f"case {mask_ticket(ticket_no)}")
        try:
            if status in self.mapping.not_found_http_status:
                case = None
            else:
                outcome, payload = self.mapping.unwrap(body)
                case = None if outcome == "not_found" else self.mapping.parse_case(payload, ticket_no)
        except MappingError as exc:
            await self._failed("bad_response", f"GET {self.mapping.case_path}: {exc}")
            raise ApprovalUnavailable("bad_response", str(exc)) from None
        await self._succeeded("not_found" if case is None else "ok")
        if case is not None:
            await self._cache_set(case)
        return case

    async def changes_since(self, cursor: str | None, limit: int = 100) -> ChangeBatch:
        params = {self.mapping.limit_param: str(limit)}
        if cursor:
            params[self.mapping.cursor_param] = cursor
        status, body = await self._guarded_get(self.mapping.changes_path, params, what="change feed")
        try:
            if status in self.mapping.not_found_http_status:
                raise MappingError(f"the change feed answered HTTP {status}")
            _, payload = self.mapping.unwrap(body)
            batch = self.mapping.parse_changes(payload, cursor)
        except MappingError as exc:
            await self._failed("bad_response", f"GET {self.mapping.changes_path}: {exc}")
            raise ApprovalUnavailable("bad_response", str(exc)) from None
        await self._succeeded("ok")
        return batch

    # -- HTTP -------------------------------------------------------------------------------------------

    async def _guarded_get(self, path: str, params: dict[str, str] | None, *, what: str) -> tuple[int, Any]:
        """(HTTP status, parsed JSON or None) of a successful exchange: 2xx or a not-found status."""
        if not await self.breaker.allow():
            await self._count("circuit_open")
            raise CircuitOpenError()
        try:
            return await self._get_with_retries(path, params)
        except ApprovalUnavailable as exc:
            await self._failed(exc.reason, f"{what}: {exc}")
            raise

    async def _get_with_retries(self, path: str, params: dict[str, str] | None) -> tuple[int, Any]:
        url = self.settings.api_base + path
        started = time.monotonic()
        deadline = started + self.settings.budget
        attempts = 1 + self.settings.retries
        last: _Retryable | None = None
        for attempt in range(attempts):
            remaining = deadline - time.monotonic()
            if attempt and remaining < _MIN_ATTEMPT:
                break
            try:
                return await self._get_once(url, params, min(self.settings.timeout, remaining))
            except _Retryable as exc:
                last = exc
                log.info(
                    "approval backend call failed; %s",
                    "retrying" if attempt + 1 < attempts else "giving up",
                    extra={"path": self._path_name(url), "reason": exc.reason},
                )
                if attempt + 1 < attempts:
                    pause = self.settings.retry_backoff * (2**attempt)
                    if deadline - time.monotonic() - pause < _MIN_ATTEMPT:
                        break
                    await asyncio.sleep(pause)
        assert last is not None
        raise ApprovalUnavailable(last.reason, last.message)

    async def _get_once(self, url: str, params: dict[str, str] | None, seconds: float) -> tuple[int, Any]:
        name = self._path_name(url)
        try:
            async with self._http().get(
                url,
                params=params,
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=max(seconds, 0.01)),
            ) as resp:
                status = resp.status
                raw = await resp.read()
        except TimeoutError:
            raise _Retryable("timeout", f"GET {name} timed out after {seconds:.2f} s") from None
        except aiohttp.ClientError as exc:
            raise _Retryable("transport", f"GET {name} failed: {type(exc).__name__}") from None
        if status in RETRY_STATUSES:
            raise _Retryable("server_error", f"GET {name} answered HTTP {status}")
        if status in (401, 403):
            raise ApprovalUnavailable("unauthorized", f"GET {name} answered HTTP {status}")
        if status in self.mapping.not_found_http_status:
            return status, None
        if not 200 <= status < 300:
            raise ApprovalUnavailable("server_error", f"GET {name} answered HTTP {status}")
        try:
            return status, json.loads(raw)
        except ValueError:
            raise ApprovalUnavailable(
                "bad_response", f"GET {name} answered a body that is not JSON"
            ) from None

    def _path_name(self, url: str) -> str:
        """The path template for messages: a ticket number never appears in errors or logs."""
        path = url[len(self.settings.api_base) :]
        return (
            self.mapping.changes_path
            if path.startswith(self.mapping.changes_path)
            else self.mapping.case_path
        )

    # -- breaker, metrics, cache ------------------------------------------------------------------------

    async def _succeeded(self, result: str) -> None:
        if await self.breaker.record_success():
            await self._count_breaker("closed")
        await self._count(result)

    async def _failed(self, reason: str, message: str) -> None:
        log.warning("approval backend unavailable", extra={"reason": reason, "detail": message[:200]})
        await self._count(reason)
        if await self.breaker.record_failure():
            await self._count_breaker("opened")

    async def _count(self, result: str) -> None:
        if self._metrics is not None:
            await self._metrics.inc("govbot_approval_requests_total", {"result": result})

    async def _count_breaker(self, transition: str) -> None:
        if self._metrics is not None:
            await self._metrics.inc("govbot_approval_breaker_total", {"transition": transition})

    async def _cache_get(self, ticket_no: str) -> Case | None:
        if self.settings.cache_ttl <= 0:
            return None
        try:
            raw = await self._redis.get(CACHE_PREFIX + ticket_no)
            return Case.from_json(json.loads(raw)) if raw else None
        except Exception:
            log.warning("approval cache read failed", exc_info=True)
            return None

    async def _cache_set(self, case: Case) -> None:
        if self.settings.cache_ttl <= 0:
            return
        try:
            await self._redis.set(
                CACHE_PREFIX + case.ticket_no,
                json.dumps(case.to_json(), ensure_ascii=False),
                px=max(1, int(self.settings.cache_ttl * 1000)),
            )
        except Exception:
            log.warning("approval cache write failed", exc_info=True)
