"""The API's objects, as plain dataclasses.

Every object is built from the JSON the API sends with `from_dict`. Fields
the SDK does not know yet (a newer server) never break parsing: they are
kept, as sent, in `extra` (and read with ``obj.extra["name"]``). Times are
timezone-aware `datetime` objects in UTC.

Secrets are left out of `repr()`: printing or logging a `TokenWithSecret`
does not show its `secret`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, ClassVar, Generic, Mapping, Sequence, TypeVar

__all__ = [
    "Model",
    "Token",
    "TokenWithSecret",
    "VerifiedToken",
    "VerifyResult",
    "VerifyCode",
    "RateLimitState",
    "Introspection",
    "Settings",
    "AuthzRule",
    "AuthzRuleWarning",
    "AuthzRules",
    "Whoami",
    "WorkspaceRef",
    "TokenUsage",
    "DailyUsage",
    "AuditEvent",
    "AuditActor",
    "AuditTarget",
    "Page",
    "scope_covers",
]

T = TypeVar("T")
M = TypeVar("M", bound="Model")

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$"
)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time from the API as an aware `datetime` (UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    m = _RFC3339.match(str(value))
    if not m:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micros = int((m.group(7) or "0")[:6].ljust(6, "0"))
    offset = m.group(8)
    if offset in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if offset[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    # Leap seconds (":60") are folded into the next second's start.
    leap = second == 60
    t = datetime(year, month, day, hour, minute, 59 if leap else second, micros, tzinfo=tz)
    if leap:
        t += timedelta(seconds=1)
    return t.astimezone(timezone.utc)


def format_time(value: datetime | str) -> str:
    """A time for the API: RFC 3339 in UTC. A naive `datetime` is refused,
    since it does not say which time it means."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a naive datetime is ambiguous: give one with a timezone (e.g. timezone.utc)")
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _time(v: Any) -> datetime | None:
    return parse_time(v)


def _date(v: Any) -> date:
    return date.fromisoformat(str(v))


def _model(cls: type[M]) -> Callable[[Any], M | None]:
    def convert(v: Any) -> M | None:
        return None if v is None else cls.from_dict(v)

    return convert


def _models(cls: type[M]) -> Callable[[Any], list[M]]:
    def convert(v: Any) -> list[M]:
        return [cls.from_dict(x) for x in (v or [])]

    return convert


def _strings(v: Any) -> list[str]:
    return [str(x) for x in (v or [])]


def _parsed(convert: Callable[[Any], Any], **kwargs: Any) -> Any:
    """A field whose JSON value goes through `convert`."""
    metadata = {"convert": convert}
    return field(metadata=metadata, **kwargs)


@dataclass(kw_only=True)
class Model:
    """Base of the API's objects."""

    #: Fields the API sent that this version of the SDK does not know.
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, Any]) -> M:
        if not isinstance(data, Mapping):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        known: dict[str, Any] = {}
        names = set()
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            names.add(f.name)
            if f.name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ValueError(f"{cls.__name__}: the field {f.name!r} is missing")
                continue
            convert = f.metadata.get("convert")
            value = data[f.name]
            known[f.name] = convert(value) if convert else value
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**known, extra=extra)


def scope_covers(granted: str, required: str) -> bool:
    """Does the scope `granted` cover `required`? Same rule as Tooken's:
    equal, or a ``*`` segment matching any one segment, a trailing ``*``
    any remaining ones (``invoices:*`` covers ``invoices:read`` and
    ``invoices:read:own``)."""
    if granted == required:
        return True
    g = granted.split(":")
    w = required.split(":")
    for i, part in enumerate(g):
        last = i == len(g) - 1
        if i >= len(w):
            return False
        if part == "*" and last:
            return True
        if part == "*" or part == w[i]:
            continue
        return False
    return len(g) == len(w)


class _HasScopes:
    scopes: list[str]

    def has_scope(self, required: str) -> bool:
        """Does this token hold a scope covering `required`?"""
        return any(scope_covers(s, required) for s in self.scopes)


@dataclass(kw_only=True)
class Token(Model, _HasScopes):
    """A token, as the API shows it. Never includes the secret."""

    id: str
    name: str
    description: str | None = None
    mode: str
    scopes: list[str] = _parsed(_strings, default_factory=list)
    metadata: dict[str, Any] | None = None
    #: Prefix, mode and last four characters of the current secret.
    hint: str
    #: ``active``, ``expired`` or ``revoked``.
    status: str
    created_at: datetime = _parsed(_time)
    #: The id of the API key or token that created it.
    created_by: str | None = None
    expires_at: datetime | None = _parsed(_time, default=None)
    last_used_at: datetime | None = _parsed(_time, default=None)
    revoked_at: datetime | None = _parsed(_time, default=None)
    #: The token through which it was created, if any.
    parent_id: str | None = None


@dataclass(kw_only=True)
class TokenWithSecret(Token):
    """A token with its secret: the answer to create and rotate, the only
    time the secret is shown. Tooken keeps only its SHA-256."""

    secret: str = field(repr=False)


class VerifyCode:
    """The codes `tokens.verify` answers with (plain strings, so that codes
    a newer server adds never break parsing)."""

    VALID: ClassVar[str] = "VALID"
    MALFORMED: ClassVar[str] = "MALFORMED"
    NOT_FOUND: ClassVar[str] = "NOT_FOUND"
    EXPIRED: ClassVar[str] = "EXPIRED"
    REVOKED: ClassVar[str] = "REVOKED"
    INSUFFICIENT_SCOPE: ClassVar[str] = "INSUFFICIENT_SCOPE"
    IP_NOT_ALLOWED: ClassVar[str] = "IP_NOT_ALLOWED"
    RATE_LIMITED: ClassVar[str] = "RATE_LIMITED"
    USAGE_EXCEEDED: ClassVar[str] = "USAGE_EXCEEDED"


@dataclass(kw_only=True)
class VerifiedToken(Model, _HasScopes):
    """What a service needs to know about a token presented to it."""

    id: str
    name: str
    scopes: list[str] = _parsed(_strings, default_factory=list)
    metadata: dict[str, Any] | None = None
    expires_at: datetime | None = _parsed(_time, default=None)
    mode: str

    def is_expired_at(self, now: datetime) -> bool:
        """Has the token expired at `now`? (Expiry is inclusive, as in Tooken.)"""
        return self.expires_at is not None and self.expires_at <= now


@dataclass(kw_only=True)
class RateLimitState(Model):
    """One of a token's rate limits after a verification."""

    name: str
    limit: int
    remaining: int
    reset_at: datetime | None = _parsed(_time, default=None)


@dataclass(kw_only=True)
class VerifyResult(Model):
    """The answer of `tokens.verify`."""

    #: True exactly when `code` is ``VALID``.
    valid: bool
    #: One of `VerifyCode`'s values (or one a newer server added).
    code: str
    #: Present whenever the token exists in the caller's workspace and mode.
    token: VerifiedToken | None = _parsed(_model(VerifiedToken), default=None)
    #: The latest time a verifier may reuse this answer, when Tooken says.
    cache_until: datetime | None = _parsed(_time, default=None)
    #: Uses left after this call, for a token with a budget.
    remaining_uses: int | None = None
    #: The token's rate limits after this call, for a token that has any.
    rate_limits: list[RateLimitState] | None = _parsed(
        lambda v: None if v is None else _models(RateLimitState)(v), default=None
    )
    #: Seconds until a ``RATE_LIMITED`` token may be verified again.
    retry_after_seconds: int | None = None


@dataclass(kw_only=True)
class Introspection(Model):
    """RFC 7662 introspection answer. An inactive token has only
    ``active=False``."""

    active: bool
    #: Space-separated scopes.
    scope: str | None = None
    exp: int | None = None
    iat: int | None = None
    sub: str | None = None
    client_id: str | None = None
    token_type: str | None = None


@dataclass(kw_only=True)
class Settings(Model):
    """The workspace policy."""

    require_expiration: bool
    max_token_ttl_seconds: int | None = None
    default_token_ttl_seconds: int | None = None
    token_prefix: str
    audit_retention_days: int | None = None


def _methods(v: Any) -> list[str] | str:
    return v if isinstance(v, str) else [str(x) for x in (v or [])]


@dataclass(kw_only=True)
class AuthzRule(Model):
    """A gateway route rule, as stored (methods in capitals)."""

    #: A list of methods, or ``"*"`` for every method.
    methods: list[str] | str = _parsed(_methods)
    #: Case-sensitive; ``*`` is one segment, ``**`` zero or more.
    path: str
    #: All required of the token.
    scopes: list[str] = _parsed(_strings, default_factory=list)
    #: A public route: no token needed.
    anonymous: bool = False
    #: What a match spends of a token's limits (1 when not given).
    cost: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The rule as `authz.rules.put` sends it."""
        out: dict[str, Any] = {"methods": self.methods, "path": self.path, "scopes": list(self.scopes)}
        if self.anonymous:
            out["anonymous"] = True
        if self.cost is not None:
            out["cost"] = self.cost
        return out


@dataclass(kw_only=True)
class AuthzRuleWarning(Model):
    """A rule that can never match: earlier rules catch every request it would."""

    #: The rule: ``rules[3]``.
    field: str
    message: str
    #: Indexes of the earlier rules that catch its requests.
    shadowed_by: list[int] = _parsed(lambda v: [int(x) for x in (v or [])], default_factory=list)


@dataclass(kw_only=True)
class AuthzRules(Model):
    """The gateway route rules of a workspace and mode, first match wins."""

    rules: list[AuthzRule] = _parsed(_models(AuthzRule), default_factory=list)
    warnings: list[AuthzRuleWarning] = _parsed(_models(AuthzRuleWarning), default_factory=list)


@dataclass(kw_only=True)
class WorkspaceRef(Model):
    id: str
    name: str


@dataclass(kw_only=True)
class Whoami(Model):
    """The calling credential."""

    #: ``api_key`` or ``token``.
    kind: str
    id: str
    name: str
    hint: str
    workspace: WorkspaceRef = _parsed(_model(WorkspaceRef))
    mode: str
    scopes: list[str] = _parsed(_strings, default_factory=list)


@dataclass(kw_only=True)
class DailyUsage(Model):
    """One day (UTC) of a token's use."""

    date: date = _parsed(_date)
    #: Successful verifications of the token.
    verifications: int
    #: Calls to the Tooken API made with the token.
    api_calls: int


@dataclass(kw_only=True)
class TokenUsage(Model):
    token_id: str
    last_used_at: datetime | None = _parsed(_time, default=None)
    #: Oldest first; days without use are left out.
    data: list[DailyUsage] = _parsed(_models(DailyUsage), default_factory=list)


@dataclass(kw_only=True)
class AuditActor(Model):
    #: ``api_key``, ``token``, ``admin``, ``user`` or ``system``.
    kind: str
    id: str | None = None
    #: The credential's display hint; never the secret.
    hint: str | None = None


@dataclass(kw_only=True)
class AuditTarget(Model):
    kind: str
    id: str


@dataclass(kw_only=True)
class AuditEvent(Model):
    """One event of the hash-chained audit log."""

    id: str
    workspace_id: str
    #: Position in the workspace's chain, from 1.
    seq: int
    occurred_at: datetime = _parsed(_time)
    mode: str | None = None
    actor: AuditActor = _parsed(_model(AuditActor))
    action: str
    target: AuditTarget | None = _parsed(_model(AuditTarget), default=None)
    client_addr: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    details: Any = None
    prev_hash: str
    hash: str


@dataclass
class Page(Generic[T]):
    """One page of a list, newest first."""

    data: list[T]
    has_more: bool
    #: Pass as `starting_after` for the next page; ``None`` on the last one.
    next_cursor: str | None

    @classmethod
    def parse(cls, body: Mapping[str, Any], item: Callable[[Any], T]) -> Page[T]:
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
            raise ValueError("a page must be an object with a `data` list")
        return cls(
            data=[item(x) for x in body["data"]],
            has_more=bool(body.get("has_more", False)),
            next_cursor=body.get("next_cursor"),
        )


def _check_scopes(scopes: Sequence[str] | str) -> list[str]:
    # A bare string would be sent as a list of its characters.
    if isinstance(scopes, str):
        return [scopes]
    return list(scopes)
