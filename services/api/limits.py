"""The API's limits: request bodies capped while they stream in, per-tenant request rates kept in Redis; and the
short-lived cache of authenticated keys."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

import redis

from services.api.problems import Problem, problem_response
from shared.tenants import hash_key, inflight_key

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Answers 413 as soon as a request body is known to pass `limit` bytes: at once from its Content-Length,
    else when the streamed bytes pass it; the rest is never read (nor spooled to disk)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    def _problem(self, scope: Scope) -> Any:
        return problem_response(
            413,
            "transcript_too_large",
            f"the request body is larger than {self.limit} bytes (RECAP_MAX_TRANSCRIPT_BYTES plus room for the "
            "form); split the meeting or raise the limit",
            instance=scope.get("path"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._problem(scope)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if started:
                raise
            await self._problem(scope)(scope, receive, send)


class RateLimit:
    """A fixed window per subject (a tenant; for bad keys, a client address): `limit` per `window_s`, counted in
    Redis so that every API replica counts the same requests. Redis unreachable: requests pass (the limit protects
    us; it must not stop us)."""

    def __init__(self, client: redis.Redis, limit: int, window_s: int, *, kind: str, setting: str) -> None:
        self.client, self.limit, self.window_s = client, limit, window_s
        self.kind, self.setting = kind, setting  # the Redis key's part and the setting named in the 429

    def _key(self, subject: str) -> str:
        return f"recap:{self.kind}:{subject}:{int(time.time() // self.window_s)}"

    def _over(self, count: int) -> None:
        if count > self.limit:
            now = time.time()
            retry = max(1, int((now // self.window_s + 1) * self.window_s - now + 0.999))
            raise Problem(
                429,
                "rate_limited",
                f"more than {self.limit} {self.kind} requests in {self.window_s} s ({self.setting}); "
                f"retry after {retry} s",
                headers={"Retry-After": str(retry)},
            )

    def check(self, subject: str) -> None:
        """Counts one request; 429 past the limit."""
        key = self._key(subject)
        try:
            with self.client.pipeline() as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_s + 1)
                count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            log.warning("%s limit not checked, Redis unreachable: %s", self.kind, exc)
            return
        self._over(count)

    def refuse_spent(self, subject: str) -> None:
        """429 when the subject has spent its window already, without counting this request (one Redis GET)."""
        try:
            count = int(cast("bytes | None", self.client.get(self._key(subject))) or 0)  # a sync client
        except redis.RedisError as exc:
            log.warning("%s limit not checked, Redis unreachable: %s", self.kind, exc)
            return
        self._over(count + 1)


class KeyCache:
    """Keys this process authenticated in the last `ttl_s` seconds (by their hash), so that a burst of requests
    costs one database lookup; a revoked key stops working within `ttl_s` (RECAP_API_AUTH_CACHE_S; 0: never
    cached). Unknown keys are not cached: a wrong key costs its lookup every time."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.known: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> str | None:
        hit = self.known.get(hash_key(key))
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, key: str, tenant: str) -> None:
        if self.ttl_s > 0:
            if len(self.known) > 10_000:  # many keys: start again rather than grow
                self.known.clear()
            self.known[hash_key(key)] = (tenant, time.monotonic() + self.ttl_s)


class InFlight:
    """Per-tenant jobs not yet ended, kept in Redis (`recap:inflight:<tenant>`) so that admitting a job costs one
    GET, not a count over the tenant's backlog: the sweeper writes each tenant's count from the database every
    sweep, and each job accepted since adds one (so between sweeps jobs that ended still count: the limit errs on
    the safe side). A missing key (no sweep yet, or it expired after `ttl_s`) is seeded from the database; with
    Redis down the database answers."""

    def __init__(self, client: redis.Redis, limit: int, ttl_s: int, count: Callable[[str], int]) -> None:
        self.client, self.limit, self.ttl_s, self.count = client, limit, ttl_s, count

    def admit(self, tenant: str) -> None:
        key = inflight_key(tenant)
        try:
            value: bytes | None = self.client.get(key)  # type: ignore[assignment]  # the sync client's answer
            if value is None:
                known = self.count(tenant)
                self.client.set(key, known, ex=self.ttl_s, nx=True)
            else:
                known = int(value)
        except redis.RedisError:
            known = self.count(tenant)
        if known >= self.limit:
            raise Problem(
                429,
                "too_many_in_flight",
                f"{self.limit} of this tenant's jobs have not ended (RECAP_API_MAX_IN_FLIGHT); wait for some to end",
                headers={"Retry-After": "10"},
            )

    def accepted(self, tenant: str) -> None:
        try:
            self.client.incr(inflight_key(tenant))
        except redis.RedisError:
            pass  # the next sweep writes the true count
