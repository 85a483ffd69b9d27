"""Verifying the tokens presented to your service, with a short cache.

The framework integrations (`tooken.fastapi`, `tooken.starlette`,
`tooken.django`, `tooken.drf`) are thin over `Verifier` (sync) and
`AsyncVerifier` (asyncio). Both:

1. read ``Authorization: Bearer <token>`` (exactly that);
2. check the token's shape and checksum locally, so garbage (or an API
   key) never costs a call to Tooken;
3. ask Tooken (``POST /v1/tokens/verify``) unless the cache has a fresh
   answer, and check the scopes the route requires;
4. answer with the `VerifiedToken`, or raise a `Rejection` that renders
   exactly as Tooken's own refusals (``401``, ``403``, ``429`` with
   ``Retry-After`` for a rate-limited token, ``503`` when Tooken cannot be
   asked).

Cache semantics (the same as the Rust layer, ``tooken-axum``):

- a valid answer is reused for `cache_ttl` (default 5 s), counted from
  before Tooken was asked, and never at or after the token's
  ``expires_at`` nor its ``cache_until``;
- the answer for a token with rate limits or a usage budget is never
  reused (each use must be counted by Tooken);
- an invalid answer (malformed, unknown, expired, revoked) is reused for
  `negative_cache_ttl` (default 1 s);
- entries are keyed by the SHA-256 of the token, never the token itself,
  plus the client's address when the token is bound to networks
  (``allowed_ips``);
- failures to reach Tooken are never cached.

**A revoked token may still be accepted for up to `cache_ttl`** after its
revocation, unless something evicts it: the cache's `evict` and `bypass`
methods are where a change feed plugs in.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from . import credential
from ._async_client import AsyncTooken
from ._client import Tooken
from ._core import NOT_GIVEN, resolve_config
from ._errors import (
    APIConnectionError,
    AuthenticationError,
    PermissionDeniedError,
    TookenError,
)
from .types import VerifiedToken, VerifyCode, VerifyResult, scope_covers

__all__ = [
    "Verifier",
    "AsyncVerifier",
    "VerifierCache",
    "Rejection",
    "UNAUTHORIZED_MESSAGE",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_NEGATIVE_CACHE_TTL",
    "DEFAULT_CACHE_CAPACITY",
    "DEFAULT_VERIFY_TIMEOUT",
]

logger = logging.getLogger("tooken")

#: The message of every ``401``, whatever the cause: a client must not learn
#: which one applied.
UNAUTHORIZED_MESSAGE = "Invalid or missing API key"
DEFAULT_CACHE_TTL = 5.0
DEFAULT_NEGATIVE_CACHE_TTL = 1.0
DEFAULT_CACHE_CAPACITY = 10_000
#: Longest wait for Tooken's answer before the request gets ``503``.
DEFAULT_VERIFY_TIMEOUT = 5.0


class Rejection(TookenError):
    """Why a request was refused, as Tooken itself would answer it:
    `status`, the JSON `body` and the `headers` to send. The framework
    integrations render it; elsewhere, send those three yourself."""

    status: int
    body: dict[str, Any]

    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None, *, code: str | None = None) -> None:
        super().__init__(
            body["message"],
            error=body["error"],
            required_scope=body.get("required_scope"),
            status=status,
            body=body,
            headers=headers,
        )
        self.status = status
        self.body = body
        #: The verification code behind the refusal, if Tooken gave one.
        self.code = code

    @classmethod
    def missing_token(cls) -> Rejection:
        """``401`` for a request without credentials."""
        return cls(
            401,
            {"error": "unauthorized", "message": UNAUTHORIZED_MESSAGE},
            {"WWW-Authenticate": 'Bearer realm="tooken"'},
        )

    @classmethod
    def invalid_token(cls, code: str | None = None) -> Rejection:
        """``401`` for a presented credential that is not a valid token."""
        return cls(
            401,
            {"error": "unauthorized", "message": UNAUTHORIZED_MESSAGE},
            {"WWW-Authenticate": 'Bearer realm="tooken", error="invalid_token"'},
            code=code,
        )

    @classmethod
    def missing_scope(cls, scope: str) -> Rejection:
        """``403`` naming the scope the route needs."""
        return cls(
            403,
            {
                "error": "forbidden",
                "message": f"this token lacks the scope {scope} required for this operation",
                "required_scope": scope,
            },
            {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            code=VerifyCode.INSUFFICIENT_SCOPE,
        )

    @classmethod
    def refused_by_caveat(cls, code: str) -> Rejection:
        """``403`` for a token that a limit it carries refuses here."""
        messages = {
            VerifyCode.IP_NOT_ALLOWED: "this token may not be used from this address",
            VerifyCode.USAGE_EXCEEDED: "this token has no uses left",
        }
        message = messages.get(code, f"this token may not be used now ({code})")
        return cls(403, {"error": "forbidden", "message": message}, {}, code=code)

    @classmethod
    def rate_limited(cls, retry_after: int | None) -> Rejection:
        """``429`` for a token over one of its rate limits."""
        wait = max(int(retry_after or 1), 1)
        return cls(
            429,
            {"error": "rate_limited", "message": f"this token's rate limit is reached; retry in {wait} s"},
            {"Retry-After": str(wait)},
            code=VerifyCode.RATE_LIMITED,
        )

    @classmethod
    def unavailable(cls) -> Rejection:
        """``503``: Tooken cannot be asked right now."""
        return cls(
            503,
            {"error": "unavailable", "message": "the token cannot be verified right now; try again shortly"},
            {"Retry-After": "1"},
        )


def bearer_token(authorization: str | None) -> str:
    """The token in an ``Authorization`` header value, or the `Rejection`."""
    if authorization is None:
        raise Rejection.missing_token()
    if not authorization.startswith("Bearer ") or not credential.is_token(authorization[7:]):
        raise Rejection.invalid_token(VerifyCode.MALFORMED)
    return authorization[7:]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Entry:
    token: VerifiedToken | None  # None: an invalid answer
    code: str
    asked_at: float  # monotonic, before asking
    fresh_for: float  # seconds from asked_at
    not_after: datetime | None  # wall clock: expires_at / cache_until


class VerifierCache:
    """Answers of Tooken's verify, keyed by the SHA-256 of the token (plus
    the client address for tokens bound to networks).

    Thread-safe. Ages are measured on the monotonic clock (a wall-clock jump
    cannot stretch them); ``expires_at`` and ``cache_until`` are compared
    with the wall clock, as Tooken does. Both clocks can be given, for
    tests.

    A change feed plugs in through `evict` (drop the answers about a token)
    and `bypass` (while the feed is down, nothing is served or kept).
    """

    def __init__(
        self,
        ttl: float = DEFAULT_CACHE_TTL,
        negative_ttl: float = DEFAULT_NEGATIVE_CACHE_TTL,
        capacity: int = DEFAULT_CACHE_CAPACITY,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        if ttl < 0 or negative_ttl < 0 or capacity < 0:
            raise ValueError("cache lifetimes and capacity must be 0 or more")
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.capacity = capacity
        self.monotonic = monotonic
        self.now = now
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        # Hashes of tokens whose answers depend on the client address.
        self._ip_bound: set[str] = set()
        self._by_token_id: dict[str, set[str]] = {}
        self._bypass = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @staticmethod
    def _key(token_hash: str, client_ip: str | None, ip_bound: bool) -> str:
        return f"{token_hash}@{client_ip or '-'}" if ip_bound else token_hash

    def lookup(self, token_hash: str, client_ip: str | None) -> _Entry | None:
        """A fresh answer about this token (from this address), if any."""
        with self._lock:
            if self._bypass:
                return None
            key = self._key(token_hash, client_ip, token_hash in self._ip_bound)
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._is_fresh(entry, self.monotonic(), self.now()):
                return entry
            self._drop(key)
            return None

    def store(self, token_hash: str, client_ip: str | None, result: VerifyResult, asked_at: float) -> None:
        """Keeps Tooken's answer, if it may be reused. An older answer that
        comes back late never replaces a newer one."""
        entry = self._entry_for(result, asked_at)
        if entry is None:
            return
        ip_bound = result.code == VerifyCode.IP_NOT_ALLOWED or _is_ip_bound(result)
        with self._lock:
            if self._bypass:
                return
            if ip_bound:
                self._ip_bound.add(token_hash)
            key = self._key(token_hash, client_ip, ip_bound)
            existing = self._entries.get(key)
            if existing is not None and existing.asked_at > asked_at:
                return
            if existing is None and len(self._entries) >= self.capacity:
                self._make_room()
            self._entries[key] = entry
            if entry.token is not None:
                self._by_token_id.setdefault(entry.token.id, set()).add(key)

    def _entry_for(self, result: VerifyResult, asked_at: float) -> _Entry | None:
        if self.capacity == 0:
            return None
        if result.valid and result.code == VerifyCode.VALID and result.token is not None:
            if self.ttl <= 0 or _has_counted_limits(result):
                return None
            ends = [t for t in (result.token.expires_at, result.cache_until) if t is not None]
            return _Entry(result.token, result.code, asked_at, self.ttl, min(ends) if ends else None)
        if result.code in (
            VerifyCode.MALFORMED,
            VerifyCode.NOT_FOUND,
            VerifyCode.EXPIRED,
            VerifyCode.REVOKED,
            VerifyCode.IP_NOT_ALLOWED,
        ):
            if self.negative_ttl <= 0:
                return None
            return _Entry(None, result.code, asked_at, self.negative_ttl, result.cache_until)
        # INSUFFICIENT_SCOPE depends on the route; RATE_LIMITED and
        # USAGE_EXCEEDED change with every use: never reused.
        return None

    @staticmethod
    def _is_fresh(entry: _Entry, mono: float, now: datetime) -> bool:
        if mono - entry.asked_at >= entry.fresh_for:
            return False
        return entry.not_after is None or now < entry.not_after

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry.token is not None:
            keys = self._by_token_id.get(entry.token.id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_token_id[entry.token.id]

    def _make_room(self) -> None:
        mono, now = self.monotonic(), self.now()
        for key in [k for k, e in self._entries.items() if not self._is_fresh(e, mono, now)]:
            self._drop(key)
        if len(self._entries) < self.capacity:
            return
        # Still full: drop a tenth, invalid answers first, then the oldest.
        by_worth = sorted(self._entries.items(), key=lambda kv: (kv[1].token is not None, kv[1].asked_at))
        for key, _ in by_worth[: max(self.capacity // 10, 1)]:
            self._drop(key)

    # -- where a change feed plugs in -------------------------------------

    def evict(self, *, token_id: str | None = None, hash_prefix: str | None = None) -> int:
        """Drops every answer about a token, named by its id or by a prefix
        of its secret's hex SHA-256. Returns how many were dropped."""
        with self._lock:
            keys: set[str] = set()
            if token_id is not None:
                keys |= self._by_token_id.get(token_id, set())
            if hash_prefix:
                prefix = hash_prefix.lower()
                keys |= {k for k in self._entries if k.startswith(prefix)}
                self._ip_bound = {h for h in self._ip_bound if not h.startswith(prefix)}
            for key in keys:
                self._drop(key)
            return len(keys)

    def clear(self) -> None:
        """Drops every answer."""
        with self._lock:
            self._entries.clear()
            self._by_token_id.clear()
            self._ip_bound.clear()

    def bypass(self, on: bool = True) -> None:
        """While on, nothing is served from the cache or kept in it, and
        everything held is dropped: for when the change feed is down and
        evictions could be missed."""
        with self._lock:
            self._bypass = on
            if on:
                self._entries.clear()
                self._by_token_id.clear()
                self._ip_bound.clear()

    @property
    def bypassing(self) -> bool:
        return self._bypass


def _is_ip_bound(result: VerifyResult) -> bool:
    token = result.token
    if token is None:
        return False
    allowed = getattr(token, "allowed_ips", None) or token.extra.get("allowed_ips")
    return bool(allowed)


def _has_counted_limits(result: VerifyResult) -> bool:
    """Does the token carry rate limits or a budget, whose every use Tooken
    must count?"""
    if result.rate_limits is not None or result.remaining_uses is not None:
        return True
    token = result.token
    if token is None:
        return False
    for name in ("rate_limits", "remaining_uses"):
        if getattr(token, name, None) is not None or token.extra.get(name) is not None:
            return True
    return False


_KEY_VARIABLES = ("TOOKEN_VERIFY_KEY", "TOOKEN_API_KEY")


def _env_key() -> str | None:
    for name in _KEY_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


class _Judge:
    """The decisions both verifiers share; they only differ in how they ask."""

    def __init__(self, cache: VerifierCache, send_client_ip: bool) -> None:
        self.cache = cache
        self.send_client_ip = send_client_ip

    def from_cache(self, token: str, scopes: Sequence[str], client_ip: str | None) -> tuple[str, VerifiedToken | None]:
        token_hash = credential.secret_hash(token)
        entry = self.cache.lookup(token_hash, client_ip)
        if entry is None:
            return token_hash, None
        if entry.token is None:
            raise self.refusal(entry.code, None)
        return token_hash, self.check_scopes(entry.token, scopes)

    def request(self, token: str, scopes: Sequence[str], client_ip: str | None, cost: int | None) -> dict[str, Any]:
        return {
            "token": token,
            "scopes": list(scopes),
            "client_ip": client_ip if (self.send_client_ip and client_ip) else NOT_GIVEN,
            "cost": NOT_GIVEN if cost is None else cost,
        }

    def answer(
        self,
        token: str,
        token_hash: str,
        scopes: Sequence[str],
        client_ip: str | None,
        asked_at: float,
        result: VerifyResult,
    ) -> VerifiedToken:
        self.cache.store(token_hash, client_ip, result, asked_at)
        if result.valid and result.code == VerifyCode.VALID:
            if result.token is None:
                logger.error("Tooken's verify answer is inconsistent: valid without a token")
                raise Rejection.unavailable()
            return self.check_scopes(result.token, scopes)
        if result.valid:
            logger.error("Tooken's verify answer is inconsistent: valid with code %s", result.code)
            raise Rejection.unavailable()
        logger.debug("token %s refused by Tooken: %s", credential.hint(token), result.code)
        raise self.refusal(result.code, result, scopes)

    @staticmethod
    def check_scopes(token: VerifiedToken, scopes: Sequence[str]) -> VerifiedToken:
        for scope in scopes:
            if not any(scope_covers(g, scope) for g in token.scopes):
                logger.debug("token %s lacks the scope %s", token.id, scope)
                raise Rejection.missing_scope(scope)
        return token

    @staticmethod
    def refusal(code: str, result: VerifyResult | None, scopes: Sequence[str] = ()) -> Rejection:
        if code == VerifyCode.INSUFFICIENT_SCOPE:
            held = result.token.scopes if result is not None and result.token is not None else []
            missing = next((s for s in scopes if not any(scope_covers(g, s) for g in held)), None)
            return Rejection.missing_scope(missing or (scopes[0] if scopes else "unknown"))
        if code == VerifyCode.RATE_LIMITED:
            return Rejection.rate_limited(result.retry_after_seconds if result is not None else None)
        if code in (VerifyCode.IP_NOT_ALLOWED, VerifyCode.USAGE_EXCEEDED):
            return Rejection.refused_by_caveat(code)
        return Rejection.invalid_token(code)

    @staticmethod
    def failure(error: TookenError) -> Rejection:
        if isinstance(error, (AuthenticationError, PermissionDeniedError)):
            logger.error(
                "Tooken refused the verifier credential (%s): give the service an API key "
                "or a token with tokens:verify",
                error,
            )
        elif isinstance(error, APIConnectionError):
            logger.warning("Tooken is unreachable: %s", error)
        else:
            logger.warning("Tooken could not verify a token: %s", error)
        return Rejection.unavailable()


def _scopes(scopes: Sequence[str] | str) -> tuple[str, ...]:
    return (scopes,) if isinstance(scopes, str) else tuple(scopes)


class Verifier:
    """Verifies presented tokens with Tooken (synchronously), with a cache.

    ::

        verifier = Verifier()   # TOOKEN_VERIFY_KEY (or TOOKEN_API_KEY), TOOKEN_URL
        try:
            token = verifier.authenticate(request_headers.get("Authorization"), scopes=["invoices:read"])
        except Rejection as r:
            return r.status, r.body, r.headers

    `api_key` is the service's verifier credential: an API key, or better
    a token holding only ``tokens:verify``. `timeout` bounds the wait for
    Tooken (default 5 s); no retries are made, a failure is a ``503``.
    `client_ip` is passed to Tooken (for tokens bound to networks) when
    `send_client_ip` is on.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        negative_cache_ttl: float = DEFAULT_NEGATIVE_CACHE_TTL,
        cache_capacity: int = DEFAULT_CACHE_CAPACITY,
        timeout: float = DEFAULT_VERIFY_TIMEOUT,
        send_client_ip: bool = False,
        client: Tooken | None = None,
        cache: VerifierCache | None = None,
    ) -> None:
        if client is None:
            config = resolve_config(api_key or _env_key(), base_url, timeout, 0, None, key_variables=_KEY_VARIABLES)
            client = Tooken(config.api_key, base_url=config.base_url, timeout=config.timeout, max_retries=0)
        self.client = client
        self.cache = cache if cache is not None else VerifierCache(cache_ttl, negative_cache_ttl, cache_capacity)
        self._judge = _Judge(self.cache, send_client_ip)

    def authenticate(
        self,
        authorization: str | None,
        *,
        scopes: Sequence[str] | str = (),
        client_ip: str | None = None,
        cost: int | None = None,
    ) -> VerifiedToken:
        """The token in an ``Authorization`` header value, verified and
        holding `scopes`; else raises `Rejection`."""
        return self.verify(bearer_token(authorization), scopes=scopes, client_ip=client_ip, cost=cost)

    def verify(
        self,
        token: str,
        *,
        scopes: Sequence[str] | str = (),
        client_ip: str | None = None,
        cost: int | None = None,
    ) -> VerifiedToken:
        """`token` verified and holding `scopes`; else raises `Rejection`."""
        scopes = _scopes(scopes)
        if not credential.is_token(token):
            raise Rejection.invalid_token(VerifyCode.MALFORMED)
        token_hash, cached = self._judge.from_cache(token, scopes, client_ip)
        if cached is not None:
            return cached
        asked_at = self.cache.monotonic()
        try:
            result = self.client.tokens.verify(**self._judge.request(token, scopes, client_ip, cost))
        except TookenError as e:
            raise self._judge.failure(e) from e
        return self._judge.answer(token, token_hash, scopes, client_ip, asked_at, result)

    def close(self) -> None:
        self.client.close()


class AsyncVerifier:
    """`Verifier` for asyncio code (FastAPI, Starlette, async Django views).

    It keeps one `AsyncTooken` connection pool per event loop (an
    ``httpx.AsyncClient`` cannot be shared across loops), unless you give
    it your own `client`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        negative_cache_ttl: float = DEFAULT_NEGATIVE_CACHE_TTL,
        cache_capacity: int = DEFAULT_CACHE_CAPACITY,
        timeout: float = DEFAULT_VERIFY_TIMEOUT,
        send_client_ip: bool = False,
        client: AsyncTooken | None = None,
        cache: VerifierCache | None = None,
    ) -> None:
        self._client = client
        # Checked now, so a missing key fails at start-up, not per request.
        self._config = (
            client._config
            if client is not None
            else resolve_config(api_key or _env_key(), base_url, timeout, 0, None, key_variables=_KEY_VARIABLES)
        )
        self._loop_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncTooken] = (
            weakref.WeakKeyDictionary()
        )
        self.cache = cache if cache is not None else VerifierCache(cache_ttl, negative_cache_ttl, cache_capacity)
        self._judge = _Judge(self.cache, send_client_ip)

    @property
    def client(self) -> AsyncTooken:
        """The client for the running event loop."""
        if self._client is not None:
            return self._client
        loop = asyncio.get_running_loop()
        client = self._loop_clients.get(loop)
        if client is None:
            c = self._config
            client = AsyncTooken(c.api_key, base_url=c.base_url, timeout=c.timeout, max_retries=0)
            self._loop_clients[loop] = client
        return client

    async def authenticate(
        self,
        authorization: str | None,
        *,
        scopes: Sequence[str] | str = (),
        client_ip: str | None = None,
        cost: int | None = None,
    ) -> VerifiedToken:
        return await self.verify(bearer_token(authorization), scopes=scopes, client_ip=client_ip, cost=cost)

    async def verify(
        self,
        token: str,
        *,
        scopes: Sequence[str] | str = (),
        client_ip: str | None = None,
        cost: int | None = None,
    ) -> VerifiedToken:
        scopes = _scopes(scopes)
        if not credential.is_token(token):
            raise Rejection.invalid_token(VerifyCode.MALFORMED)
        token_hash, cached = self._judge.from_cache(token, scopes, client_ip)
        if cached is not None:
            return cached
        asked_at = self.cache.monotonic()
        try:
            result = await self.client.tokens.verify(**self._judge.request(token, scopes, client_ip, cost))
        except TookenError as e:
            raise self._judge.failure(e) from e
        return self._judge.answer(token, token_hash, scopes, client_ip, asked_at, result)

    async def close(self) -> None:
        """Closes the connection pool of the running loop (and yours, if given)."""
        if self._client is not None:
            await self._client.close()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._loop_clients.pop(loop, None)
        if client is not None:
            await client.close()
