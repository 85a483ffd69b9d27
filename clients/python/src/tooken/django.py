"""Tooken for Django: a view decorator requiring a valid token.

::

    from django.http import JsonResponse
    from tooken.django import require_token

    @require_token("invoices:read")
    def list_invoices(request):
        token = request.tooken            # the VerifiedToken
        return JsonResponse({"customer": (token.metadata or {}).get("customer")})

It works on sync and async views. For Django REST framework, see
`tooken.drf`. Refusals are Tooken's own (``401``/``403`` bodies and
``WWW-Authenticate`` headers, ``429`` with ``Retry-After`` for a
rate-limited token, ``503`` when Tooken cannot be asked).

Settings (each falls back to the environment variable of the same name):

- ``TOOKEN_URL`` (default ``http://127.0.0.1:7878``);
- ``TOOKEN_VERIFY_KEY`` (else ``TOOKEN_API_KEY``): the service's verifier
  credential, best a token holding only ``tokens:verify``;
- ``TOOKEN_CACHE_TTL`` (seconds, default 5) and
  ``TOOKEN_NEGATIVE_CACHE_TTL`` (default 1);
- ``TOOKEN_CLIENT_IP``: a function ``request -> str | None`` giving the
  client's address (default ``REMOTE_ADDR``; behind a proxy, take it from
  the header your proxy sets, and only from a trusted proxy).
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from typing import Any, Callable, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from ._scopes import required_scopes
from .types import VerifiedToken
from .verifier import AsyncVerifier, Rejection, Verifier, VerifierCache

__all__ = [
    "require_token",
    "authenticate",
    "aauthenticate",
    "verifier",
    "async_verifier",
    "reset",
    "rejection_response",
    "client_ip",
]

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_sync: Verifier | None = None
_async: AsyncVerifier | None = None
_cache: VerifierCache | None = None


def _setting(name: str, default: Any = None) -> Any:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or None
    return default if value is None else value


def _shared_cache() -> VerifierCache:
    global _cache
    if _cache is None:
        _cache = VerifierCache(
            ttl=float(_setting("TOOKEN_CACHE_TTL", 5.0)),
            negative_ttl=float(_setting("TOOKEN_NEGATIVE_CACHE_TTL", 1.0)),
        )
    return _cache


def _key() -> str | None:
    key = _setting("TOOKEN_VERIFY_KEY") or _setting("TOOKEN_API_KEY")
    return None if key is None else str(key)


def _url() -> str | None:
    url = _setting("TOOKEN_URL")
    return None if url is None else str(url)


def verifier() -> Verifier:
    """The verifier of sync views, made from the settings on first use."""
    global _sync
    with _lock:
        if _sync is None:
            _sync = Verifier(_key(), base_url=_url(), cache=_shared_cache())
        return _sync


def async_verifier() -> AsyncVerifier:
    """The verifier of async views (sharing the sync one's cache)."""
    global _async
    with _lock:
        if _async is None:
            _async = AsyncVerifier(_key(), base_url=_url(), cache=_shared_cache())
        return _async


def reset() -> None:
    """Forgets the verifiers and their cache (after changing settings, in tests)."""
    global _sync, _async, _cache
    with _lock:
        if _sync is not None:
            _sync.close()
        _sync, _async, _cache = None, None, None


def client_ip(request: HttpRequest) -> str | None:
    custom = _setting("TOOKEN_CLIENT_IP")
    if callable(custom):
        found = custom(request)
        return None if found is None else str(found)
    addr = request.META.get("REMOTE_ADDR")
    return str(addr) if addr else None


def _authorization(request: HttpRequest) -> str | None:
    value = request.META.get("HTTP_AUTHORIZATION")
    return None if value is None else str(value)


def rejection_response(rejection: Rejection) -> HttpResponse:
    """The response Tooken itself would send for this refusal."""
    response = JsonResponse(rejection.body, status=rejection.status)
    for name, value in rejection.headers.items():
        response[name] = value
    return response


def authenticate(request: HttpRequest, scopes: tuple[str, ...] = (), *, cost: int | None = None) -> VerifiedToken:
    """Verifies the request's bearer token (sync); raises `Rejection`."""
    token = verifier().authenticate(_authorization(request), scopes=scopes, client_ip=client_ip(request), cost=cost)
    request.tooken = token  # type: ignore[attr-defined,unused-ignore]
    return token


async def aauthenticate(request: HttpRequest, scopes: tuple[str, ...] = (), *, cost: int | None = None) -> VerifiedToken:
    """Verifies the request's bearer token (async); raises `Rejection`."""
    token = await async_verifier().authenticate(
        _authorization(request), scopes=scopes, client_ip=client_ip(request), cost=cost
    )
    request.tooken = token  # type: ignore[attr-defined,unused-ignore]
    return token


def require_token(*scopes: str, cost: int | None = None) -> Callable[[F], F]:
    """A view decorator: the view runs only with a valid token holding every
    scope in `scopes`, found then in ``request.tooken``."""
    wanted = required_scopes(scopes)

    def decorate(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                try:
                    await aauthenticate(request, wanted, cost=cost)
                except Rejection as r:
                    return rejection_response(r)
                return await view(request, *args, **kwargs)

            return async_guarded  # type: ignore[return-value]

        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                authenticate(request, wanted, cost=cost)
            except Rejection as r:
                return rejection_response(r)
            return view(request, *args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate
