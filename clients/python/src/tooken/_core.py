"""What the sync and the async client share: configuration, how a request
is built, how an answer is read, and when a request is retried. Neither
does I/O here; `_client.py` and `_async_client.py` only send.
"""

from __future__ import annotations

import email.utils
import json
import os
import platform
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Generic, Mapping, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    RateLimitError,
    ServiceUnavailableError,
    TookenError,
    UnexpectedResponseError,
    error_class_for,
    fallback_code,
)
from ._version import __version__

T = TypeVar("T")

#: Where the API is when neither `base_url` nor ``TOOKEN_URL`` says.
DEFAULT_BASE_URL = "http://127.0.0.1:7878"
#: 10 s for the whole exchange, of which at most 5 s to connect. Tooken
#: answers in milliseconds; a longer wait means it is in trouble.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: Retries after the first attempt, only where the request was certainly
#: not applied (see `retry_delay`).
DEFAULT_MAX_RETRIES = 2
#: A Retry-After longer than this is not waited for: the error is raised
#: (with its `retry_after`) for the caller to decide.
MAX_RETRY_AFTER = 30.0
USER_AGENT = f"tooken-python/{__version__} (python {platform.python_version()}; httpx {httpx.__version__})"


class NotGiven:
    """The default of optional arguments, told apart from ``None`` (which
    sends ``null``: on `update` calls, ``None`` clears a field)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


def given(**fields: Any) -> dict[str, Any]:
    """The fields that were given (``None`` included)."""
    return {k: v for k, v in fields.items() if v is not NOT_GIVEN}


@dataclass(frozen=True)
class Config:
    api_key: str = field(repr=False)
    base_url: str
    timeout: httpx.Timeout
    max_retries: int
    default_headers: Mapping[str, str] = field(default_factory=dict)


def resolve_config(
    api_key: str | None,
    base_url: str | None,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
    default_headers: Mapping[str, str] | None,
    *,
    key_variables: tuple[str, ...] = ("TOOKEN_API_KEY",),
) -> Config:
    """The client's configuration: arguments first, then the environment
    (``TOOKEN_API_KEY``, ``TOOKEN_URL``), then the defaults."""
    key = api_key
    if key is None:
        for name in key_variables:
            key = os.environ.get(name) or None
            if key:
                break
    if not key:
        raise ConfigurationError(
            f"no API key: pass api_key=… or set {' or '.join(key_variables)} "
            "(an API key tok_live_…/tok_test_…, or a token with the scopes the calls need)"
        )
    if any(c.isspace() for c in key):
        raise ConfigurationError("the API key contains whitespace: check how it was copied")
    url = base_url or os.environ.get("TOOKEN_URL") or DEFAULT_BASE_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{url!r} is not an http:// or https:// URL")
    if timeout is None:
        resolved_timeout = DEFAULT_TIMEOUT
    elif isinstance(timeout, httpx.Timeout):
        resolved_timeout = timeout
    else:
        resolved_timeout = httpx.Timeout(float(timeout))
    if max_retries < 0:
        raise ConfigurationError("max_retries must be 0 or more")
    return Config(
        api_key=key,
        base_url=url.rstrip("/"),
        timeout=resolved_timeout,
        max_retries=max_retries,
        default_headers=dict(default_headers or {}),
    )


def segment(value: str) -> str:
    """An id as one path segment: anything but an id's characters is
    percent-encoded, so an id can never change the path."""
    if not isinstance(value, str) or not value:
        raise ValueError("an id must be a non-empty string")
    return quote(value, safe="")


@dataclass
class Operation(Generic[T]):
    """One API call: how to ask, and how to read the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    form: Mapping[str, str] | None = None
    #: The answer is not JSON: `parse` gets the raw `httpx.Response`.
    raw: bool = False


def build_request(http: httpx.Client | httpx.AsyncClient, config: Config, op: Operation[Any]) -> httpx.Request:
    headers = {
        **config.default_headers,
        "Authorization": f"Bearer {config.api_key}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }
    params = None
    if op.params:
        params = {k: _query_value(v) for k, v in op.params.items() if v is not None and v is not NOT_GIVEN}
    kwargs: dict[str, Any] = {"headers": headers, "params": params, "timeout": config.timeout}
    if op.form is not None:
        kwargs["data"] = op.form
    elif op.json is not None:
        kwargs["content"] = json.dumps(op.json, separators=(",", ":"), ensure_ascii=False).encode()
        headers["Content-Type"] = "application/json"
    return http.build_request(op.method, config.base_url + op.path, **kwargs)


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        from .types import format_time

        return format_time(v)
    return str(v)


def parse_response(op: Operation[T], response: httpx.Response) -> T:
    """The result of a successful answer, or the error it stands for."""
    if not response.is_success:
        raise error_from_response(response)
    if op.raw:
        return op.parse(response)
    try:
        body = response.json()
    except ValueError as e:
        raise _unexpected(response, "the answer is not JSON") from e
    try:
        return op.parse(body)
    except (ValueError, TypeError, KeyError) as e:
        raise _unexpected(response, f"the answer is not what the API promises: {e}") from e


def _unexpected(response: httpx.Response, message: str) -> UnexpectedResponseError:
    return UnexpectedResponseError(
        message,
        error="unexpected_response",
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
        headers=response.headers,
    )


def error_from_response(response: httpx.Response) -> TookenError:
    """The exception an error answer stands for, with the API's fields."""
    status = response.status_code
    body: Mapping[str, Any] | None = None
    try:
        parsed = json.loads(response.content) if response.content else None
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        body = None
    error = body.get("error") if body else None
    message = body.get("message") if body else None
    cls = error_class_for(status)
    kwargs: dict[str, Any] = {
        "error": error if isinstance(error, str) else fallback_code(status),
        "field": body.get("field") if body else None,
        "required_scope": body.get("required_scope") if body else None,
        "status": status,
        "request_id": response.headers.get("x-request-id"),
        "body": body,
        "headers": response.headers,
    }
    if issubclass(cls, (RateLimitError, ServiceUnavailableError)):
        kwargs["retry_after"] = retry_after_seconds(response.headers.get("retry-after"))
    if not isinstance(message, str):
        message = f"HTTP {status} {response.reason_phrase}".strip()
    return cls(message, **kwargs)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number, or an HTTP
    date), or ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
        return max(seconds, 0.0) if seconds == seconds else None  # NaN
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - (now or datetime.now(timezone.utc))).total_seconds(), 0.0)


# Errors raised before any byte of the request can have reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def retry_delay(
    method: str,
    attempt: int,
    max_retries: int,
    *,
    response: httpx.Response | None = None,
    error: Exception | None = None,
    jitter: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before trying `attempt` (0-based) again, or ``None``
    not to retry.

    Only where the request was certainly not applied: any request that
    never reached the server (connection refused, connect timeout), a
    ``GET`` after any other transport error or timeout, and any request
    answered ``429`` or ``503`` (the server refused it before acting),
    waiting the ``Retry-After`` it asked for if that is at most
    `MAX_RETRY_AFTER`. Never a ``POST`` or ``PATCH`` after a read timeout
    or a broken connection: it may have been applied.
    """
    if attempt >= max_retries:
        return None
    backoff = min(0.5 * 2.0**attempt, 8.0) * (0.75 + 0.5 * jitter())
    if error is not None:
        if isinstance(error, httpx.UnsupportedProtocol):
            return None
        if isinstance(error, _NOT_SENT):
            return backoff
        if isinstance(error, httpx.TransportError) and method.upper() in _SAFE_METHODS:
            return backoff
        return None
    if response is not None and response.status_code in (429, 503):
        asked = retry_after_seconds(response.headers.get("retry-after"))
        if asked is None:
            return backoff
        if asked > MAX_RETRY_AFTER:
            return None
        return asked
    return None


def connection_error(error: httpx.HTTPError, config: Config) -> APIConnectionError:
    """The SDK's error for a transport failure (never with the API key)."""
    if isinstance(error, httpx.TimeoutException):
        return APITimeoutError(f"Tooken at {config.base_url} did not answer in time ({type(error).__name__})")
    return APIConnectionError(f"cannot reach Tooken at {config.base_url}: {error or type(error).__name__}")
