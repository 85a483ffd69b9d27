"""The synchronous client."""

from __future__ import annotations

import json
import time
from datetime import datetime
from types import TracebackType
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import httpx

from . import _operations as ops
from ._core import (
    DEFAULT_MAX_RETRIES,
    NOT_GIVEN,
    Config,
    NotGiven,
    Operation,
    build_request,
    connection_error,
    error_from_response,
    parse_response,
    resolve_config,
    retry_delay,
)
from ._pagination import Paginator
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


class Tooken:
    """A client for the Tooken API.

    ::

        from tooken import Tooken

        tooken = Tooken()  # TOOKEN_API_KEY, TOOKEN_URL (default http://127.0.0.1:7878)
        issued = tooken.tokens.create(name="billing-sync", scopes=["invoices:read"], expires_in=3600)
        print(issued.id, issued.secret)  # the secret is shown only this once

    `api_key` is an API key (``tok_live_…``/``tok_test_…``) or a token
    with the scopes the calls need; `base_url` where Tooken listens.
    `timeout` (seconds or an `httpx.Timeout`; default 10 s, 5 s to
    connect) bounds each attempt; `max_retries` (default 2) bounds the
    retries, made only where the request was certainly not applied.
    `http_client` lets you bring your own `httpx.Client` (proxies, a
    private CA with ``verify=``); it is then yours to close.

    Use it as a context manager, or call `close()`, to release connections.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._config = resolve_config(api_key, base_url, timeout, max_retries, default_headers)
        self._own_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=self._config.timeout)
        self._sleep: Callable[[float], None] = time.sleep
        self.tokens = Tokens(self)
        self.audit_log = AuditLog(self)
        self.settings = SettingsResource(self)
        self.authz = Authz(self)

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def __repr__(self) -> str:
        return f"Tooken(base_url={self._config.base_url!r})"

    def with_options(
        self,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Tooken:
        """The same client (sharing its connections) with other options,
        for instance another credential."""
        clone = object.__new__(Tooken)
        clone.__dict__.update(self.__dict__)
        clone._config = resolve_config(
            api_key or self._config.api_key,
            self._config.base_url,
            timeout if timeout is not None else self._config.timeout,
            self._config.max_retries if max_retries is None else max_retries,
            self._config.default_headers,
        )
        clone._own_http = False
        clone.tokens = Tokens(clone)
        clone.audit_log = AuditLog(clone)
        clone.settings = SettingsResource(clone)
        clone.authz = Authz(clone)
        return clone

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> Tooken:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- sending ---------------------------------------------------------

    def _send(self, op: Operation[Any], *, stream: bool = False) -> httpx.Response:
        """Sends `op`, retrying where that is safe; returns a successful
        answer (unread when `stream`) or raises the error it stands for."""
        attempt = 0
        while True:
            request = build_request(self._http, self._config, op)
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as e:
                delay = retry_delay(op.method, attempt, self._config.max_retries, error=e)
                if delay is None:
                    raise connection_error(e, self._config) from e
                self._sleep(delay)
                attempt += 1
                continue
            if response.is_success:
                return response
            delay = retry_delay(op.method, attempt, self._config.max_retries, response=response)
            if delay is not None:
                response.close()
                self._sleep(delay)
                attempt += 1
                continue
            try:
                response.read()
            except httpx.TransportError as e:
                raise connection_error(e, self._config) from e
            finally:
                response.close()
            raise error_from_response(response)

    def _request(self, op: Operation[T]) -> T:
        response = self._send(op)
        return parse_response(op, response)

    # -- top-level calls -------------------------------------------------

    def whoami(self) -> Whoami:
        """The calling credential: kind, id, workspace, mode, scopes."""
        return self._request(ops.whoami())

    def health(self) -> str:
        """``GET /healthz``: ``"ok"`` when the server process answers."""
        return self._request(ops.healthz())

    def ready(self) -> str:
        """``GET /readyz``: ``"ready"`` when the server reaches its store
        (else `ServiceUnavailableError`)."""
        return self._request(ops.readyz())

    def metrics(self) -> str:
        """``GET /metrics``: the Prometheus (OpenMetrics) text."""
        return self._request(ops.render())

    def openapi(self) -> dict[str, Any]:
        """``GET /v1/openapi.json``: the OpenAPI 3 document of the API."""
        return self._request(ops.openapi_json())


class Tokens:
    """``client.tokens``: the tokens Tooken issues for your systems."""

    def __init__(self, client: Tooken) -> None:
        self._client = client

    def create(
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
        """Issues a token. Its `secret` is in the answer, and only there.

        `expires_in` is seconds from now; `expires_at` an aware `datetime`
        or an RFC 3339 string (give one, not both). `extra_body` adds
        fields this SDK version does not know to the JSON body.
        """
        return self._client._request(
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
    ) -> Paginator[Token]:
        """Tokens, newest first, following the cursor as you iterate.
        `status` is ``active``, ``expired`` or ``revoked``; `name` a name
        prefix; `limit` the page size (1–100, default 20)."""

        def fetch(cursor: str | None) -> Page[Token]:
            return self._client._request(
                ops.list_tokens(limit=limit, starting_after=cursor, status=status, scope=scope, name=name)
            )

        return Paginator(fetch, starting_after)

    def get(self, token_id: str) -> Token:
        return self._client._request(ops.get_token(token_id))

    def update(
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
        """Changes the fields given; ``None`` clears `description`,
        `metadata` or `expires_at`."""
        return self._client._request(
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

    def rotate(self, token_id: str, *, grace_period_seconds: int | NotGiven = NOT_GIVEN) -> TokenWithSecret:
        """A new secret for the same token id. The previous secret keeps
        working for `grace_period_seconds` (0–604800, default 0)."""
        return self._client._request(ops.rotate_token(token_id, grace_period_seconds=grace_period_seconds))

    def revoke(self, token_id: str, *, reason: str | NotGiven = NOT_GIVEN) -> Token:
        """Revokes the token and every token created through it. Idempotent."""
        return self._client._request(ops.revoke_token(token_id, reason=reason))

    def verify(
        self,
        token: str,
        *,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        client_ip: str | NotGiven = NOT_GIVEN,
        cost: int | NotGiven = NOT_GIVEN,
        extra_body: Json | None = None,
    ) -> VerifyResult:
        """Verifies a token presented to your service: always an answer
        with `valid` and `code` (an invalid token is not an exception)."""
        return self._client._request(
            ops.verify_token(token=token, scopes=scopes, client_ip=client_ip, cost=cost, extra_body=extra_body)
        )

    def introspect(
        self,
        token: str,
        *,
        token_type_hint: str | NotGiven = NOT_GIVEN,
        client_ip: str | NotGiven = NOT_GIVEN,
        cost: int | NotGiven = NOT_GIVEN,
    ) -> Introspection:
        """RFC 7662 introspection (``active``, ``scope``, ``exp``, …)."""
        return self._client._request(
            ops.introspect(token=token, token_type_hint=token_type_hint, client_ip=client_ip, cost=cost)
        )

    def usage(self, token_id: str, *, days: int | None = None) -> TokenUsage:
        """A token's use per day (UTC) over the last `days` (default 30, at most 90)."""
        return self._client._request(ops.token_usage(token_id, days=days))


class AuditExport:
    """The audit log as NDJSON, streamed: one event per line, oldest first.

    Use it as a context manager so the connection is released::

        with client.audit_log.export() as export:
            for event in export:          # AuditEvent objects
                ...
        with client.audit_log.export() as export, open("audit.ndjson", "wb") as f:
            for chunk in export.iter_bytes():   # the exact bytes, for `tooken audit verify`
                f.write(chunk)
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    def iter_bytes(self) -> Iterator[bytes]:
        return self._response.iter_bytes()

    def iter_lines(self) -> Iterator[str]:
        for line in self._response.iter_lines():
            if line.strip():
                yield line

    def __iter__(self) -> Iterator[AuditEvent]:
        for line in self.iter_lines():
            yield AuditEvent.from_dict(json.loads(line))

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> AuditExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AuditLog:
    """``client.audit_log``: the tamper-evident audit log (API keys, or
    tokens with ``audit:read``)."""

    def __init__(self, client: Tooken) -> None:
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
    ) -> Paginator[AuditEvent]:
        """Events, newest first, following the cursor as you iterate.
        Filters: `action` (e.g. ``token.revoked``), `actor` and `target`
        ids, `since` (inclusive) and `until` (exclusive)."""

        def fetch(cursor: str | None) -> Page[AuditEvent]:
            return self._client._request(
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

        return Paginator(fetch, starting_after)

    def export(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> AuditExport:
        """Every matching event as NDJSON, streamed. An error answer is
        raised here, before any event."""
        op = ops.export_events(action=action, actor=actor, target=target, since=since, until=until)
        return AuditExport(self._client._send(op, stream=True))


class SettingsResource:
    """``client.settings``: the workspace policy (API keys only)."""

    def __init__(self, client: Tooken) -> None:
        self._client = client

    def get(self) -> Settings:
        return self._client._request(ops.get_settings())

    def update(
        self,
        *,
        require_expiration: bool | NotGiven = NOT_GIVEN,
        max_token_ttl_seconds: int | None | NotGiven = NOT_GIVEN,
        default_token_ttl_seconds: int | None | NotGiven = NOT_GIVEN,
        token_prefix: str | NotGiven = NOT_GIVEN,
        audit_retention_days: int | None | NotGiven = NOT_GIVEN,
        extra_body: Json | None = None,
    ) -> Settings:
        """Changes the settings given; ``None`` removes a limit."""
        return self._client._request(
            ops.update_settings(
                require_expiration=require_expiration,
                max_token_ttl_seconds=max_token_ttl_seconds,
                default_token_ttl_seconds=default_token_ttl_seconds,
                token_prefix=token_prefix,
                audit_retention_days=audit_retention_days,
                extra_body=extra_body,
            )
        )


class AuthzRulesResource:
    """``client.authz.rules``: the gateway route rules of the key's workspace
    and mode (API keys only; see docs/gateways.md)."""

    def __init__(self, client: Tooken) -> None:
        self._client = client

    def get(self) -> AuthzRules:
        """The rules, first match wins, with warnings about rules that can never match."""
        return self._client._request(ops.get_authz_rules())

    def put(self, rules: Sequence[AuthzRule | Json]) -> AuthzRules:
        """Replaces the rules (each an `AuthzRule` or a dict as the API takes
        it); answers them as stored, with their warnings."""
        return self._client._request(ops.put_authz_rules(rules=rules))


class Authz:
    """``client.authz``: what gateways enforce."""

    def __init__(self, client: Tooken) -> None:
        self.rules = AuthzRulesResource(client)
