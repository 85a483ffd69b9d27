"""Tooken for Starlette (and the pieces `tooken.fastapi` builds on).

::

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from tooken.starlette import requires_token

    @requires_token("invoices:read")
    async def list_invoices(request):
        token = request.state.tooken          # the VerifiedToken
        return JSONResponse({"customer": (token.metadata or {}).get("customer")})

    app = Starlette(routes=[Route("/invoices", list_invoices)])

Refusals are Tooken's own: ``401``/``403`` with the same bodies and
``WWW-Authenticate`` headers, ``429`` with ``Retry-After`` for a
rate-limited token, ``503`` when Tooken cannot be asked. The verifier is
configured from ``TOOKEN_URL`` and ``TOOKEN_VERIFY_KEY`` (or
``TOOKEN_API_KEY``) unless you give one (`configure`, or ``verifier=``).
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from ._scopes import required_scopes
from .types import VerifiedToken
from .verifier import AsyncVerifier, Rejection

__all__ = [
    "requires_token",
    "authenticate",
    "configure",
    "default_verifier",
    "rejection_response",
    "TookenHTTPException",
    "handle_rejection",
    "client_ip",
]

_lock = threading.Lock()
_default: AsyncVerifier | None = None


def configure(verifier: AsyncVerifier) -> None:
    """Sets the verifier used where none is given."""
    global _default
    with _lock:
        _default = verifier


def default_verifier() -> AsyncVerifier:
    """The verifier set with `configure`, or one made from the environment
    on first use."""
    global _default
    with _lock:
        if _default is None:
            _default = AsyncVerifier()
        return _default


def client_ip(conn: HTTPConnection) -> str | None:
    """The client's address as the server saw it. Behind a proxy, run the
    ASGI server so that it trusts the proxy's forwarded headers (uvicorn's
    ``--forwarded-allow-ips``) and this is the real client's."""
    return conn.client.host if conn.client else None


def authorization(conn: HTTPConnection) -> str | None:
    """The one ``Authorization`` header (two of them are refused)."""
    values = conn.headers.getlist("authorization")
    if len(values) > 1:
        return ""
    return values[0] if values else None


def rejection_response(rejection: Rejection) -> JSONResponse:
    """The response Tooken itself would send for this refusal."""
    return JSONResponse(rejection.body, status_code=rejection.status, headers=dict(rejection.headers))


class TookenHTTPException(HTTPException):
    """A `Rejection` raised through the framework. With `handle_rejection`
    installed it renders exactly as Tooken's own refusal; without it, the
    framework's ``HTTPException`` handler keeps its status and headers."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.status, detail=rejection.body, headers=dict(rejection.headers))  # type: ignore[arg-type]
        self.rejection = rejection


async def handle_rejection(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TookenHTTPException)
    return rejection_response(exc.rejection)


async def authenticate(
    conn: HTTPConnection,
    scopes: tuple[str, ...] = (),
    *,
    verifier: AsyncVerifier | None = None,
    cost: int | None = None,
) -> VerifiedToken:
    """Verifies the connection's bearer token; raises `Rejection`."""
    v = verifier if verifier is not None else default_verifier()
    token = await v.authenticate(authorization(conn), scopes=scopes, client_ip=client_ip(conn), cost=cost)
    conn.state.tooken = token
    return token


def requires_token(
    *scopes: str, verifier: AsyncVerifier | None = None, cost: int | None = None
) -> Callable[[Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """Decorates a Starlette endpoint: it runs only with a valid token
    holding every scope in `scopes` (found then in ``request.state.tooken``)."""
    wanted = required_scopes(scopes)

    def decorate(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Any:
            try:
                await authenticate(request, wanted, verifier=verifier, cost=cost)
            except Rejection as r:
                return rejection_response(r)
            return await endpoint(request)

        return guarded

    return decorate
