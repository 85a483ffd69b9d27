"""Every API operation, written once: the request it sends and how its
answer is read. The sync and async resources only pass their arguments
here and send what comes back.

Each function is named after the operation's ``operationId`` in
``/v1/openapi.json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Sequence

import httpx

from ._core import NOT_GIVEN, NotGiven, Operation, given, segment
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
    _check_scopes,
    format_time,
)

Json = Mapping[str, Any]


def _body(fields: dict[str, Any], extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    body = dict(fields)
    for k, v in body.items():
        if isinstance(v, datetime):
            body[k] = format_time(v)
    if extra_body:
        body.update(extra_body)
    return body


def _time_or(v: datetime | str | None | NotGiven) -> Any:
    return format_time(v) if isinstance(v, datetime) else v


def create_token(
    *,
    name: str,
    scopes: Sequence[str] | NotGiven,
    description: str | NotGiven,
    metadata: Json | NotGiven,
    expires_at: datetime | str | NotGiven,
    expires_in: int | NotGiven,
    extra_body: Json | None,
) -> Operation[TokenWithSecret]:
    fields = given(
        name=name,
        description=description,
        scopes=_check_scopes(scopes) if not isinstance(scopes, NotGiven) else NOT_GIVEN,
        metadata=metadata,
        expires_at=_time_or(expires_at),
        expires_in=expires_in,
    )
    return Operation("POST", "/v1/tokens", TokenWithSecret.from_dict, json=_body(fields, extra_body))


def list_tokens(
    *,
    limit: int | None,
    starting_after: str | None,
    status: str | None,
    scope: str | None,
    name: str | None,
) -> Operation[Page[Token]]:
    params = {"limit": limit, "starting_after": starting_after, "status": status, "scope": scope, "name": name}
    return Operation("GET", "/v1/tokens", lambda b: Page.parse(b, Token.from_dict), params=params)


def get_token(token_id: str) -> Operation[Token]:
    return Operation("GET", f"/v1/tokens/{segment(token_id)}", Token.from_dict)


def update_token(
    token_id: str,
    *,
    name: str | NotGiven,
    description: str | None | NotGiven,
    metadata: Json | None | NotGiven,
    scopes: Sequence[str] | NotGiven,
    expires_at: datetime | str | None | NotGiven,
    extra_body: Json | None,
) -> Operation[Token]:
    fields = given(
        name=name,
        description=description,
        metadata=metadata,
        scopes=_check_scopes(scopes) if not isinstance(scopes, NotGiven) else NOT_GIVEN,
        expires_at=_time_or(expires_at),
    )
    return Operation("PATCH", f"/v1/tokens/{segment(token_id)}", Token.from_dict, json=_body(fields, extra_body))


def rotate_token(token_id: str, *, grace_period_seconds: int | NotGiven) -> Operation[TokenWithSecret]:
    body = given(grace_period_seconds=grace_period_seconds)
    return Operation("POST", f"/v1/tokens/{segment(token_id)}/rotate", TokenWithSecret.from_dict, json=body)


def revoke_token(token_id: str, *, reason: str | NotGiven) -> Operation[Token]:
    body = given(reason=reason)
    return Operation("POST", f"/v1/tokens/{segment(token_id)}/revoke", Token.from_dict, json=body)


def token_usage(token_id: str, *, days: int | None) -> Operation[TokenUsage]:
    return Operation("GET", f"/v1/tokens/{segment(token_id)}/usage", TokenUsage.from_dict, params={"days": days})


def verify_token(
    *,
    token: str,
    scopes: Sequence[str] | NotGiven,
    client_ip: str | NotGiven,
    cost: int | NotGiven,
    extra_body: Json | None,
) -> Operation[VerifyResult]:
    fields = given(
        token=token,
        scopes=_check_scopes(scopes) if not isinstance(scopes, NotGiven) else NOT_GIVEN,
        client_ip=client_ip,
        cost=cost,
    )
    return Operation("POST", "/v1/tokens/verify", VerifyResult.from_dict, json=_body(fields, extra_body))


def introspect(
    *,
    token: str,
    token_type_hint: str | NotGiven,
    client_ip: str | NotGiven,
    cost: int | NotGiven,
) -> Operation[Introspection]:
    form = {k: str(v) for k, v in given(token=token, token_type_hint=token_type_hint, client_ip=client_ip, cost=cost).items()}
    return Operation("POST", "/v1/oauth/introspect", Introspection.from_dict, form=form)


def _audit_filters(
    action: str | None,
    actor: str | None,
    target: str | None,
    since: datetime | str | None,
    until: datetime | str | None,
) -> dict[str, Any]:
    return {"action": action, "actor": actor, "target": target, "since": since, "until": until}


def list_events(
    *,
    limit: int | None,
    starting_after: str | None,
    action: str | None,
    actor: str | None,
    target: str | None,
    since: datetime | str | None,
    until: datetime | str | None,
) -> Operation[Page[AuditEvent]]:
    params = {"limit": limit, "starting_after": starting_after, **_audit_filters(action, actor, target, since, until)}
    return Operation("GET", "/v1/audit-log", lambda b: Page.parse(b, AuditEvent.from_dict), params=params)


def export_events(
    *,
    action: str | None,
    actor: str | None,
    target: str | None,
    since: datetime | str | None,
    until: datetime | str | None,
) -> Operation[httpx.Response]:
    return Operation(
        "GET",
        "/v1/audit-log/export",
        lambda response: response,
        params=_audit_filters(action, actor, target, since, until),
        raw=True,
    )


def get_settings() -> Operation[Settings]:
    return Operation("GET", "/v1/settings", Settings.from_dict)


def update_settings(
    *,
    require_expiration: bool | NotGiven,
    max_token_ttl_seconds: int | None | NotGiven,
    default_token_ttl_seconds: int | None | NotGiven,
    token_prefix: str | NotGiven,
    audit_retention_days: int | None | NotGiven,
    extra_body: Json | None,
) -> Operation[Settings]:
    fields = given(
        require_expiration=require_expiration,
        max_token_ttl_seconds=max_token_ttl_seconds,
        default_token_ttl_seconds=default_token_ttl_seconds,
        token_prefix=token_prefix,
        audit_retention_days=audit_retention_days,
    )
    return Operation("PATCH", "/v1/settings", Settings.from_dict, json=_body(fields, extra_body))


def get_authz_rules() -> Operation[AuthzRules]:
    return Operation("GET", "/v1/authz/rules", AuthzRules.from_dict)


def put_authz_rules(*, rules: Sequence[AuthzRule | Json] | NotGiven) -> Operation[AuthzRules]:
    listed = [] if isinstance(rules, NotGiven) else [r.to_dict() if isinstance(r, AuthzRule) else dict(r) for r in rules]
    return Operation("PUT", "/v1/authz/rules", AuthzRules.from_dict, json={"rules": listed})


def whoami() -> Operation[Whoami]:
    return Operation("GET", "/v1/whoami", Whoami.from_dict)


def _text(response: httpx.Response) -> str:
    return response.text


def healthz() -> Operation[str]:
    return Operation("GET", "/healthz", _text, raw=True)


def readyz() -> Operation[str]:
    return Operation("GET", "/readyz", _text, raw=True)


def render() -> Operation[str]:
    """``GET /metrics`` (the operation is named after its handler)."""
    return Operation("GET", "/metrics", _text, raw=True)


def openapi_json() -> Operation[dict[str, Any]]:
    return Operation("GET", "/v1/openapi.json", dict)
