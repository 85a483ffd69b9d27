"""Tooken: the Python client for the self-hosted credential service.

::

    from tooken import Tooken

    tooken = Tooken()  # reads TOOKEN_API_KEY and TOOKEN_URL
    issued = tooken.tokens.create(name="billing-sync", scopes=["invoices:read"], expires_in=3600)
    result = tooken.tokens.verify(token=issued.secret, scopes=["invoices:read"])
    assert result.valid and result.code == "VALID"

`AsyncTooken` is the same for asyncio. Middleware for services that accept
Tooken tokens: `tooken.fastapi`, `tooken.starlette`, `tooken.django`,
`tooken.drf`; webhook signatures: `tooken.webhooks`.
"""

from . import credential, types, webhooks
from ._async_client import (
    AsyncAuditExport,
    AsyncAuditLog,
    AsyncAuthz,
    AsyncAuthzRulesResource,
    AsyncSettingsResource,
    AsyncTokens,
    AsyncTooken,
)
from ._client import AuditExport, AuditLog, Authz, AuthzRulesResource, SettingsResource, Tokens, Tooken
from ._core import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, NOT_GIVEN, NotGiven
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
    TookenError,
    UnexpectedResponseError,
    WebhookVerificationError,
)
from ._pagination import AsyncPaginator, Paginator
from ._version import __version__
from .types import (
    AuditActor,
    AuditEvent,
    AuditTarget,
    AuthzRule,
    AuthzRules,
    AuthzRuleWarning,
    DailyUsage,
    Introspection,
    Page,
    RateLimitState,
    Settings,
    Token,
    TokenUsage,
    TokenWithSecret,
    VerifiedToken,
    VerifyCode,
    VerifyResult,
    Whoami,
    WorkspaceRef,
)
from .verifier import AsyncVerifier, Rejection, Verifier, VerifierCache

__all__ = [
    "__version__",
    "Tooken",
    "AsyncTooken",
    "Tokens",
    "AsyncTokens",
    "AuditLog",
    "AsyncAuditLog",
    "AuditExport",
    "AsyncAuditExport",
    "SettingsResource",
    "AsyncSettingsResource",
    "Authz",
    "AsyncAuthz",
    "AuthzRulesResource",
    "AsyncAuthzRulesResource",
    "Paginator",
    "AsyncPaginator",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "NOT_GIVEN",
    "NotGiven",
    # errors
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
    # objects
    "Token",
    "TokenWithSecret",
    "VerifiedToken",
    "VerifyResult",
    "VerifyCode",
    "RateLimitState",
    "Introspection",
    "Settings",
    "AuthzRule",
    "AuthzRules",
    "AuthzRuleWarning",
    "Whoami",
    "WorkspaceRef",
    "TokenUsage",
    "DailyUsage",
    "AuditEvent",
    "AuditActor",
    "AuditTarget",
    "Page",
    # verifying presented tokens
    "Verifier",
    "AsyncVerifier",
    "VerifierCache",
    "Rejection",
    # modules
    "credential",
    "types",
    "webhooks",
]
