"""Tooken for FastAPI: a dependency that requires a valid token.

::

    from fastapi import Depends, FastAPI
    from tooken import VerifiedToken
    from tooken.fastapi import install, require_token

    app = FastAPI()
    install(app)  # refusals in Tooken's own shapes

    @app.get("/invoices")
    async def list_invoices(token: VerifiedToken = Depends(require_token("invoices:read"))):
        return {"customer": (token.metadata or {}).get("customer")}

Every scope given must be held (``invoices:*`` covers ``invoices:read``).
Refusals: ``401`` and ``403`` with Tooken's bodies and ``WWW-Authenticate``
headers, ``429`` with ``Retry-After`` for a rate-limited token, ``503``
when Tooken cannot be asked. `install` registers the handler that renders
them exactly; without it FastAPI's own handler keeps status and headers
but wraps the body in ``{"detail": …}``.

The verifier comes from ``TOOKEN_URL`` and ``TOOKEN_VERIFY_KEY`` (or
``TOOKEN_API_KEY``), unless you pass ``verifier=`` or call `configure`.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from fastapi import FastAPI, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ._scopes import required_scopes
from .starlette import (
    TookenHTTPException,
    authenticate,
    configure,
    default_verifier,
    handle_rejection,
    rejection_response,
)
from .types import VerifiedToken
from .verifier import AsyncVerifier, Rejection

__all__ = [
    "require_token",
    "install",
    "configure",
    "default_verifier",
    "TookenHTTPException",
    "rejection_response",
]


# Declares the bearer scheme in the app's OpenAPI document (Swagger's
# "Authorize" button); the header itself is read and checked by Tooken's
# rules (exactly `Bearer <token>`), not by this.
_bearer = HTTPBearer(auto_error=False, description="A Tooken token (tkn_live_…)")


def install(app: FastAPI) -> None:
    """Renders refusals exactly as Tooken does."""
    app.add_exception_handler(TookenHTTPException, handle_rejection)


def require_token(
    *scopes: str, verifier: AsyncVerifier | None = None, cost: int | None = None
) -> Callable[[Request], Awaitable[VerifiedToken]]:
    """A dependency answering the request's verified token (also in
    ``request.state.tooken``), which holds every scope in `scopes`.

    `cost` (on a server with usage budgets) is what one request spends of
    the token's budget; by default 1.
    """
    wanted = required_scopes(scopes)

    async def tooken_token(
        request: Request, _: HTTPAuthorizationCredentials | None = Security(_bearer)
    ) -> VerifiedToken:
        try:
            return await authenticate(request, wanted, verifier=verifier, cost=cost)
        except Rejection as r:
            raise TookenHTTPException(r) from None

    tooken_token.__qualname__ = f"require_token({', '.join(map(repr, wanted))})"
    return tooken_token

