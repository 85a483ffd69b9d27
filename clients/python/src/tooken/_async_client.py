"""The asynchronous client: the same calls as `Tooken`, awaited. Requests
are built and answers read by the same code (`_operations`, `_core`)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from types import TracebackType
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence, TypeVar

import httpx

from . import _operations as ops
from ._core import (
    DEFAULT_MAX_RETRIES,
    NOT_GIVEN,
    NotGiven,
    Operation,
    build_request,
    connection_error,
    error_from_response,
    parse_response,
    resolve_config,
    retry_delay,
)
from ._pagination import AsyncPaginator
from .types import (
    AuditEvent,
    AuthzRule,
    AuthzRules,
    Introspection,
    Page,
    Settings,
    Token,
    TokenUsage,
    TokenWithSecret,
    VerifyResult,
    Whoami,
)

T = TypeVar("T")
Json = Mapping[str, Any]


class AsyncTooken:
    """The asynchronous client for the Tooken API, for asyncio code::

        from tooken import AsyncTooken

        async with AsyncTooken() as tooken:  # TOOKEN_API_KEY, TOOKEN_URL
            issued = await tooken.tokens.create(name="billing-sync", scopes=["invoices:read"])
            async for token in tooken.tokens.list(status="active"):
                ...

    Options as for `Tooken`; `http_client` is an `httpx.AsyncClient`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = resolve_config(api_key, base_url, timeout, max_retries, default_headers)
        self._own_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=self._config.timeout)
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.tokens = AsyncTokens(self)
        self.audit_log = AsyncAuditLog(self)
        self.settings = AsyncSettingsResource(self)
        self.authz = AsyncAuthz(self)

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def __repr__(self) -> str:
        return f"AsyncTooken(base_url={self._config.base_url!r})"

    def with_options(
        self,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> AsyncTooken:
        """The same client (sharing its connections) with other options."""
        clone = object.__new__(AsyncTooken)
        clone.__dict__.update(self.__dict__)
        clone._config = resolve_config(
            api_key or self._config.api_key,
            self._config.base_url,
            timeout if timeout is not None else self._config.timeout,
            self._config.max_retries if max_retries is None else max_retries,
            self._config.default_headers,
        )
        clone._own_http = False
        clone.tokens = AsyncTokens(clone)
        clone.audit_log = AsyncAuditLog(clone)
        clone.settings = AsyncSettingsResource(clone)
        clone.authz = AsyncAuthz(clone)
        return clone

    async def close(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncTooken:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- sending ---------------------------------------------------------

    async def _send(self, op: Operation[Any], *, stream: bool = False) -> httpx.Response:
        attempt = 0
        while True:
            request = build_request(self._http, self._config, op)
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as e:
                delay = retry_delay(op.method, attempt, self._config.max_retries, error=e)
                if delay is None:
                    raise connection_error(e, self._config) from e
                await self._sleep(delay)
                attempt += 1
                continue
            if response.is_success:
                return response
            delay = retry_delay(op.method, attempt, self._config.max_retries, response=response)
            if delay is not None:
                await response.aclose()
                await self._sleep(delay)
                attempt += 1
                continue
            try:
                await response.aread()
            except httpx.TransportError as e:
                raise connection_error(e, self._config) from e
            finally:
                await response.aclose()
            raise error_from_response(response)

    async def _request(self, op: Operation[T]) -> T:
        response = await self._send(op)
        return parse_response(op, response)

    # -- top-level calls -------------------------------------------------

    async def whoami(self) -> Whoami:
        """The calling credential: kind, id, workspace, mode, scopes."""
        return await self._request(ops.whoami())

    async def health(self) -> str:
        """``GET /healthz``."""
        return await self._request(ops.healthz())

    async def ready(self) -> str:
        """``GET /readyz``."""
        return await self._request(ops.readyz())

    async def metrics(self) -> str:
        """``GET /metrics``."""
        return await self._request(ops.render())

    async def openapi(self) -> dict[str, Any]:
        """``GET /v1/openapi.json``."""
        return await self._request(ops.openapi_json())


class AsyncTokens:
    """``client.tokens``; see `tooken.Tokens` for each call."""

    def __init__(self, client: AsyncTooken) -> None:
        self._client = client

    async def create(
        self,
        *,
        name: str,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        metadata: Json | NotGiven = NOT_GIVEN,
        expires_at: datetime | str | NotGiven = NOT_GIVEN,
        expires_in: int | NotGiven = NOT_GIVEN,
        extra_body: Json | None = None,
    ) -> TokenWithSecret:
        return await self._client._request(
            ops.create_token(
                name=name,
                scopes=scopes,
                description=description,
                metadata=metadata,
                expires_at=expires_at,
                expires_in=expires_in,
                extra_body=extra_body,
            )
        )

    def list(
        self,
        *,
        status: str | None = None,
        scope: str | None = None,
        name: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncPaginator[Token]:
        async def fetch(cursor: str | None) -> Page[Token]:
            return await self._client._request(
                ops.list_tokens(limit=limit, starting_after=cursor, status=status, scope=scope, name=name)
            )

        return AsyncPaginator(fetch, starting_after)

    async def get(self, token_id: str) -> Token:
        return await self._client._request(ops.get_token(token_id))

    async def update(
        self,
        token_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | None | NotGiven = NOT_GIVEN,
        metadata: Json | None | NotGiven = NOT_GIVEN,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        expires_at: datetime | str | None | NotGiven = NOT_GIVEN,
        extra_body: Json | None = None,
    ) -> Token:
        return await self._client._request(
            ops.update_token(
                token_id,
                name=name,
                description=description,
                metadata=metadata,
                scopes=scopes,
                expires_at=expires_at,
                extra_body=extra_body,
            )
        )

    async def rotate(self, token_id: str, *, grace_period_seconds: int | NotGiven = NOT_GIVEN) -> TokenWithSecret:
        return await self._client._request(ops.rotate_token(token_id, grace_period_seconds=grace_period_seconds))

    async def revoke(self, token_id: str, *, reason: str | NotGiven = NOT_GIVEN) -> Token:
        return await self._client._request(ops.revoke_token(token_id, reason=reason))

    async def verify(
        self,
        token: str,
        *,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        client_ip: str | NotGiven = NOT_GIVEN,
        cost: int | NotGiven = NOT_GIVEN,
        extra_body: Json | None = None,
    ) -> VerifyResult:
        return await self._client._request(
            ops.verify_token(token=token, scopes=scopes, client_ip=client_ip, cost=cost, extra_body=extra_body)
        )

    async def introspect(
        self,
        token: str,
        *,
        token_type_hint: str | NotGiven = NOT_GIVEN,
        client_ip: str | NotGiven = NOT_GIVEN,
        cost: int | NotGiven = NOT_GIVEN,
    ) -> Introspection:
        return await self._client._request(
            ops.introspect(token=token, token_type_hint=token_type_hint, client_ip=client_ip, cost=cost)
        )

    async def usage(self, token_id: str, *, days: int | None = None) -> TokenUsage:
        return await self._client._request(ops.token_usage(token_id, days=days))


class AsyncAuditExport:
    """The audit log as NDJSON, streamed; see `tooken.AuditExport`. The
    request is sent on entering the ``async with`` (an error answer is
    raised there, before any event)::

        async with client.audit_log.export() as export:
            async for event in export:
                ...
    """

    def __init__(self, send: Callable[[], Awaitable[httpx.Response]]) -> None:
        self._send = send
        self._response: httpx.Response | None = None

    def _started(self) -> httpx.Response:
        if self._response is None:
            raise RuntimeError("use the export in `async with client.audit_log.export(…) as export:`")
        return self._response

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return self._started().aiter_bytes()

    async def iter_lines(self) -> AsyncIterator[str]:
        async for line in self._started().aiter_lines():
            if line.strip():
                yield line

    async def __aiter__(self) -> AsyncIterator[AuditEvent]:
        async for line in self.iter_lines():
            yield AuditEvent.from_dict(json.loads(line))

    async def close(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    async def __aenter__(self) -> AsyncAuditExport:
        self._response = await self._send()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncAuditLog:
    """``client.audit_log``; see `tooken.AuditLog`."""

    def __init__(self, client: AsyncTooken) -> None:
        self._client = client

    def list(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncPaginator[AuditEvent]:
        async def fetch(cursor: str | None) -> Page[AuditEvent]:
            return await self._client._request(
                ops.list_events(
                    limit=limit,
                    starting_after=cursor,
                    action=action,
                    actor=actor,
                    target=target,
                    since=since,
                    until=until,
                )
            )

        return AsyncPaginator(fetch, starting_after)

    def export(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> AsyncAuditExport:
        op = ops.export_events(action=action, actor=actor, target=target, since=since, until=until)
        return AsyncAuditExport(lambda: self._client._send(op, stream=True))


class AsyncSettingsResource:
    """``client.settings``; see `tooken.SettingsResource`."""

    def __init__(self, client: AsyncTooken) -> None:
        self._client = client

    async def get(self) -> Settings:
        return await self._client._request(ops.get_settings())

    async def update(
        self,
        *,
        require_expiration: bool | NotGiven = NOT_GIVEN,
        max_token_ttl_seconds: int | None | NotGiven = NOT_GIVEN,
        default_token_ttl_seconds: int | None | NotGiven = NOT_GIVEN,
        token_prefix: str | NotGiven = NOT_GIVEN,
        audit_retention_days: int | None | NotGiven = NOT_GIVEN,
        extra_body: Json | None = None,
    ) -> Settings:
        return await self._client._request(
            ops.update_settings(
                require_expiration=require_expiration,
                max_token_ttl_seconds=max_token_ttl_seconds,
                default_token_ttl_seconds=default_token_ttl_seconds,
                token_prefix=token_prefix,
                audit_retention_days=audit_retention_days,
                extra_body=extra_body,
            )
        )


class AsyncAuthzRulesResource:
    """``client.authz.rules``: the gateway route rules of the key's workspace
    and mode (API keys only; see docs/gateways.md)."""

    def __init__(self, client: AsyncTooken) -> None:
        self._client = client

    async def get(self) -> AuthzRules:
        """The rules, first match wins, with warnings about rules that can never match."""
        return await self._client._request(ops.get_authz_rules())

    async def put(self, rules: Sequence[AuthzRule | Json]) -> AuthzRules:
        """Replaces the rules (each an `AuthzRule` or a dict as the API takes
        it); answers them as stored, with their warnings."""
        return await self._client._request(ops.put_authz_rules(rules=rules))


class AsyncAuthz:
    """``client.authz``: what gateways enforce."""

    def __init__(self, client: AsyncTooken) -> None:
        self.rules = AsyncAuthzRulesResource(client)
