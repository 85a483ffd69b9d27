"""The Django view decorator and the DRF permission class, in a real
Django app (tests/django_settings.py), asking the real server."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")

import django  # noqa: E402

django.setup()

from django.test import AsyncClient, Client, override_settings  # noqa: E402

import tooken  # noqa: E402
import tooken.django as td  # noqa: E402
from conftest import Server  # noqa: E402

UNAUTHORIZED = {"error": "unauthorized", "message": "Invalid or missing API key"}


@pytest.fixture
def configured(server: Server, client: tooken.Tooken) -> Iterator[None]:
    key = client.tokens.create(name="django-verifier", scopes=["tokens:verify"]).secret
    with override_settings(TOOKEN_URL=server.url, TOOKEN_VERIFY_KEY=key, TOOKEN_CACHE_TTL=0):
        td.reset()
        yield
    td.reset()


def auth(secret: str) -> dict[str, dict[str, str]]:
    return {"headers": {"Authorization": f"Bearer {secret}"}}


@pytest.mark.parametrize("path", ["/invoices", "/api/invoices"])
def test_a_valid_token_reaches_the_view(configured: None, client: tooken.Tooken, path: str) -> None:
    t = client.tokens.create(name="dj", scopes=["invoices:read"], metadata={"customer": "acme"})
    r = Client().get(path, **auth(t.secret))
    assert r.status_code == 200
    assert r.json()["token_id"] == t.id


@pytest.mark.parametrize("path", ["/invoices", "/api/invoices"])
def test_refusals_are_tookens_own(configured: None, client: tooken.Tooken, server: Server, path: str) -> None:
    http = Client()
    r = http.get(path)
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
    assert r["WWW-Authenticate"] == 'Bearer realm="tooken"'
    r = http.get(path, headers={"Authorization": "Bearer garbage"})
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
    assert r["WWW-Authenticate"] == 'Bearer realm="tooken", error="invalid_token"'
    r = http.get(path, **auth(server.api_key))
    assert r.status_code == 401
    other = client.tokens.create(name="dj-other", scopes=["users:read"])
    r = http.get(path, **auth(other.secret))
    assert r.status_code == 403
    assert r.json() == {
        "error": "forbidden",
        "message": "this token lacks the scope invoices:read required for this operation",
        "required_scope": "invoices:read",
    }
    assert r["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="invoices:read"'
    t = client.tokens.create(name="dj-revoked", scopes=["invoices:read"])
    assert http.get(path, **auth(t.secret)).status_code == 200
    client.tokens.revoke(t.id)
    # TOOKEN_CACHE_TTL = 0: every request asks Tooken.
    assert http.get(path, **auth(t.secret)).status_code == 401


def test_drf_view_scopes_add_to_the_permission(configured: None, client: tooken.Tooken) -> None:
    t = client.tokens.create(name="reports", scopes=["reports:read"])
    r = Client().get("/api/reports/2030", **auth(t.secret))
    assert r.status_code == 200 and r.json() == {"year": 2030, "token_id": t.id}
    plain = client.tokens.create(name="plain", scopes=["invoices:read"])
    r = Client().get("/api/reports/2030", **auth(plain.secret))
    assert r.status_code == 403 and r.json()["required_scope"] == "reports:read"


@pytest.mark.anyio
async def test_async_views(configured: None, client: tooken.Tooken) -> None:
    t = client.tokens.create(name="dj-async", scopes=["invoices:read"])
    r = await AsyncClient().get("/async/invoices", **auth(t.secret))
    assert r.status_code == 200 and r.json() == {"token_id": t.id}
    r = await AsyncClient().get("/async/invoices")
    assert r.status_code == 401


def test_tooken_unreachable_is_a_503(client: tooken.Tooken) -> None:
    from stub import closed_port_url

    t = client.tokens.create(name="dj-down", scopes=["invoices:read"])
    with override_settings(TOOKEN_URL=closed_port_url(), TOOKEN_VERIFY_KEY=t.secret):
        td.reset()
        try:
            r = Client().get("/api/invoices", **auth(t.secret))
            assert r.status_code == 503 and r["Retry-After"] == "1"
            assert r.json()["error"] == "unavailable"
            r = Client().get("/invoices", **auth(t.secret))
            assert r.status_code == 503 and r["Retry-After"] == "1"
        finally:
            td.reset()


def test_the_cache_ttl_setting_is_used(server: Server, client: tooken.Tooken) -> None:
    key = client.tokens.create(name="django-verifier-2", scopes=["tokens:verify"]).secret
    with override_settings(TOOKEN_URL=server.url, TOOKEN_VERIFY_KEY=key, TOOKEN_CACHE_TTL=60):
        td.reset()
        try:
            t = client.tokens.create(name="dj-cached", scopes=["invoices:read"])
            assert Client().get("/invoices", **auth(t.secret)).status_code == 200
            client.tokens.revoke(t.id)
            assert Client().get("/invoices", **auth(t.secret)).status_code == 200, "cached for 60 s"
            assert td.verifier().cache.ttl == 60
        finally:
            td.reset()
