"""The exceptions the SDK raises. Every one derives from `TookenError`."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = [
    "TookenError",
    "ConfigurationError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "InvalidRequestError",
    "PayloadTooLargeError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RequestTimeoutError",
    "RateLimitError",
    "InternalServerError",
    "ServiceUnavailableError",
    "UnexpectedResponseError",
    "WebhookVerificationError",
]


class TookenError(Exception):
    """Base class of every error the SDK raises.

    Errors that come from an answer of the API carry its fields: `error`
    (the API's code, e.g. ``"not_found"``), `message`, `field` (the request
    field at fault, on validation errors), `required_scope` (on ``403``),
    `status` (the HTTP status) and `request_id` (the ``x-request-id`` the
    server gave the request, for its logs). Errors without an answer
    (connection refused, timeout, configuration) have `status` ``None``.
    """

    error: str | None
    message: str
    field: str | None
    required_scope: str | None
    status: int | None
    request_id: str | None
    body: Mapping[str, Any] | None
    headers: Mapping[str, str]

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        field: str | None = None,
        required_scope: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error = error
        self.field = field
        self.required_scope = required_scope
        self.status = status
        self.request_id = request_id
        self.body = body
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.status is not None:
            details.append(str(self.status))
        if self.error:
            details.append(self.error)
        if self.field:
            details.append(f"field {self.field}")
        if self.required_scope:
            details.append(f"needs {self.required_scope}")
        if self.request_id:
            details.append(f"request {self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigurationError(TookenError):
    """The client is not configured: no API key, or a base URL that is not
    an ``http://`` or ``https://`` URL."""


class APIConnectionError(TookenError):
    """No answer from Tooken: connection refused or reset, DNS failure, TLS
    failure, or the connection broke off."""


class APITimeoutError(APIConnectionError):
    """No answer from Tooken within the client's timeout."""


class APIStatusError(TookenError):
    """Tooken answered with an error status. `status` is always set."""

    status: int


class InvalidRequestError(APIStatusError):
    """``400 invalid_request``: a parameter or body field is invalid
    (`field` names it), or the workspace policy refuses the request."""


class PayloadTooLargeError(InvalidRequestError):
    """``413 payload_too_large``: the body is larger than the server takes."""


class AuthenticationError(APIStatusError):
    """``401 unauthorized``: the credential is missing, malformed, unknown,
    revoked, deleted, regenerated away or expired (Tooken does not say
    which)."""


class PermissionDeniedError(APIStatusError):
    """``403 forbidden``: the credential is valid but lacks
    `required_scope`, or the operation needs an API key."""


class NotFoundError(APIStatusError):
    """``404 not_found``: no such object in the caller's workspace and mode."""


class ConflictError(APIStatusError):
    """``409 conflict``: the change conflicts with the current state."""


class RequestTimeoutError(APIStatusError):
    """``408``: the server did not receive the whole request in time."""


class RateLimitError(APIStatusError):
    """``429 rate_limited``: too many requests (for instance repeated
    authentication failures from this address). `retry_after` is the
    number of seconds the server asked to wait, when it said."""

    retry_after: float | None

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """``500`` (or another ``5xx`` but ``503``): the server failed. Tooken
    never sends the cause; `request_id` finds it in the server's log."""


class ServiceUnavailableError(APIStatusError):
    """``503 unavailable``: Tooken's store is busy or unreachable; try again
    after `retry_after` seconds."""

    retry_after: float | None

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class UnexpectedResponseError(APIStatusError):
    """An answer that is not what the API promises (not JSON, a missing
    field, an unknown status)."""


class WebhookVerificationError(TookenError):
    """A webhook request whose signature or timestamp does not check out.
    Answer it ``400`` and do not act on it. `error` says why
    (``missing_header``, ``invalid_timestamp``, ``timestamp_too_old``,
    ``timestamp_too_new``, ``no_matching_signature``, ``invalid_secret``,
    ``invalid_body``)."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}

_FALLBACK_CODE: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    429: "rate_limited",
    503: "unavailable",
}


def error_class_for(status: int) -> type[APIStatusError]:
    """The exception class an answer with `status` is raised as."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return InternalServerError
    if status == 422:
        return InvalidRequestError
    return UnexpectedResponseError


def fallback_code(status: int) -> str:
    return _FALLBACK_CODE.get(status, "internal" if status >= 500 else "unexpected_status")
