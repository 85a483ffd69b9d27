"""The FastAPI dependency and the Starlette decorator, in real apps, asking
the real server."""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta, timezone
import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import tooken
from conftest import Server
from stub import Reply, Stub, closed_port_url
from tooken.credential import _checksum
from tooken.fastapi import install, require_token
from tooken.starlette import requires_token

UNAUTHORIZED = {"error": "unauthorized", "message": "Invalid or missing API key"}


class Clocks:
    """The verifier's clocks, moved by the test: no sleeping."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


class Counting:
    """An AsyncTooken whose verify calls to the real server are counted."""

    def __init__(self, server: Server, key: str) -> None:
        self.calls = 0

        async def count(request: httpx.Request) -> None:
            if request.url.path == "/v1/tokens/verify":
                self.calls += 1

        self.client = tooken.AsyncTooken(
            key,
            base_url=server.url,
            max_retries=0,
            http_client=httpx.AsyncClient(event_hooks={"request": [count]}),
        )


@pytest.fixture
def verify_key(client: tooken.Tooken) -> str:
    return client.tokens.create(name="invoices-api", scopes=["tokens:verify"]).secret


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def make_app(verifier: tooken.AsyncVerifier) -> FastAPI:
    app = FastAPI()
    install(app)

    @app.get("/invoices")
    async def list_invoices(token: tooken.VerifiedToken = Depends(require_token("invoices:read", verifier=verifier))):
        return {"token_id": token.id, "customer": (token.metadata or {}).get("customer")}

    @app.post("/invoices")
    async def create_invoice(token: tooken.VerifiedToken = Depends(require_token("invoices:write", verifier=verifier))):
        return {"created_by": token.id}

    @app.get("/whoami")
    async def whoami(request: Request, token: tooken.VerifiedToken = Depends(require_token(verifier=verifier))):
        assert request.state.tooken is token
        return {"id": token.id, "name": token.name, "scopes": token.scopes}

    return app


def asgi(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")  # type: ignore[arg-type]


def well_formed_token(fill: str) -> str:
    """A token of the right shape and checksum that Tooken never issued."""
    head = "tkn_live_" + fill * 30
    return head + _checksum(zlib.crc32(head.encode()))


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def counting(server: Server, verify_key: str) -> Counting:
    return Counting(server, verify_key)


@pytest.fixture
def verifier(counting: Counting, clocks: Clocks) -> tooken.AsyncVerifier:
    cache = tooken.VerifierCache(ttl=5.0, negative_ttl=1.0, monotonic=clocks.monotonic, now=clocks.now)
    return tooken.AsyncVerifier(client=counting.client, cache=cache)


pytestmark = pytest.mark.anyio


async def test_a_valid_token_with_the_scope_reaches_the_handler(client: tooken.Tooken, verifier: tooken.AsyncVerifier) -> None:
    t = client.tokens.create(name="acme-sync", scopes=["invoices:*"], metadata={"customer": "acme"})
    async with asgi(make_app(verifier)) as http:
        r = await http.get("/invoices", headers=bearer(t.secret))
        assert r.status_code == 200
        assert r.json() == {"token_id": t.id, "customer": "acme"}
        r = await http.post("/invoices", headers=bearer(t.secret))
        assert r.json() == {"created_by": t.id}
        r = await http.get("/whoami", headers=bearer(t.secret))
        assert r.json() == {"id": t.id, "name": "acme-sync", "scopes": ["invoices:*"]}


async def test_refusals_are_tookens_own(client: tooken.Tooken, verifier: tooken.AsyncVerifier, server: Server) -> None:
    reader = client.tokens.create(name="reader", scopes=["invoices:read"])
    async with asgi(make_app(verifier)) as http:
        r = await http.get("/invoices")
        assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
        assert r.headers["www-authenticate"] == 'Bearer realm="tooken"'
        for value in ("Bearer nonsense", f"Basic {reader.secret}", f"Bearer  {reader.secret}", f"bearer {reader.secret}"):
            r = await http.get("/invoices", headers={"Authorization": value})
            assert (r.status_code, r.json()) == (401, UNAUTHORIZED), value
            assert r.headers["www-authenticate"] == 'Bearer realm="tooken", error="invalid_token"'
        r = await http.get("/invoices", headers=bearer(server.api_key))
        assert r.status_code == 401, "an API key is not a token"
        r = await http.get(
            "/invoices", headers=[("Authorization", f"Bearer {reader.secret}"), ("Authorization", f"Bearer {reader.secret}")]
        )
        assert r.status_code == 401, "two Authorization headers"
        assert (await http.get("/invoices", headers=bearer(reader.secret))).status_code == 200
        r = await http.post("/invoices", headers=bearer(reader.secret))
        assert r.status_code == 403
        assert r.json() == {
            "error": "forbidden",
            "message": "this token lacks the scope invoices:write required for this operation",
            "required_scope": "invoices:write",
        }
        assert r.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="invoices:write"'
        client.tokens.revoke(reader.id)
        # The valid answer is cached for 5 s; evicting it (what a change
        # feed does) makes the revoke count at once.
        assert verifier.cache.evict(token_id=reader.id) == 1
        r = await http.get("/invoices", headers=bearer(reader.secret))
        assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


async def test_garbage_never_reaches_tooken(verifier: tooken.AsyncVerifier, counting: Counting) -> None:
    async with asgi(make_app(verifier)) as http:
        for value in ("Bearer x", "Bearer tkn_live_" + "a" * 36, "Bearer tkn_live_" + "x" * 35 + "!"):
            assert (await http.get("/invoices", headers={"Authorization": value})).status_code == 401
    assert counting.calls == 0


async def test_valid_answers_are_cached_for_the_ttl_and_a_revoke_shows_after_it(
    client: tooken.Tooken, verifier: tooken.AsyncVerifier, counting: Counting, clocks: Clocks
) -> None:
    t = client.tokens.create(name="cached", scopes=["invoices:read"])
    async with asgi(make_app(verifier)) as http:
        for _ in range(3):
            assert (await http.get("/invoices", headers=bearer(t.secret))).status_code == 200
        assert counting.calls == 1, "one answer serves the TTL"
        # One answer serves every route, whatever scope each requires.
        assert (await http.post("/invoices", headers=bearer(t.secret))).status_code == 403
        assert counting.calls == 1
        client.tokens.revoke(t.id)
        clocks.advance(4.9)
        assert (await http.get("/invoices", headers=bearer(t.secret))).status_code == 200, "within the TTL"
        clocks.advance(0.1)
        assert (await http.get("/invoices", headers=bearer(t.secret))).status_code == 401
        assert counting.calls == 2
        # The refusal is kept for the negative TTL (1 s), then asked again.
        assert (await http.get("/invoices", headers=bearer(t.secret))).status_code == 401
        assert counting.calls == 2
        clocks.advance(1.0)
        assert (await http.get("/invoices", headers=bearer(t.secret))).status_code == 401
        assert counting.calls == 3


async def test_never_cached_past_expires_at(
    client: tooken.Tooken, verifier: tooken.AsyncVerifier, counting: Counting, clocks: Clocks
) -> None:
    t = client.tokens.create(name="expiring", scopes=["invoices:read"], expires_in=3600)
    assert t.expires_at is not None
    clocks.wall = t.expires_at - timedelta(seconds=1)
    async with asgi(make_app(verifier)) as http:
        assert (await http.get("/invoices", headers=bearer(t.secret))).status_code == 200
        assert (await http.get("/invoices", headers=bearer(t.secret))).status_code == 200
        assert counting.calls == 1
        clocks.wall = t.expires_at  # 1 s later on the wall clock, within the TTL
        clocks.mono += 1.0
        assert (await http.get("/invoices", headers=bearer(t.secret))).status_code == 200
        assert counting.calls == 2, "at expires_at the cached answer is not used"


async def test_the_cache_is_keyed_by_the_hash_never_the_token(client: tooken.Tooken, verifier: tooken.AsyncVerifier) -> None:
    t = client.tokens.create(name="hashed", scopes=["invoices:read"])
    async with asgi(make_app(verifier)) as http:
        assert (await http.get("/invoices", headers=bearer(t.secret))).status_code == 200
    keys = list(verifier.cache._entries)
    assert keys == [tooken.credential.secret_hash(t.secret)]
    assert all(t.secret not in repr(e) for e in verifier.cache._entries.values())


async def test_unreachable_tooken_is_a_503(verify_key: str) -> None:
    v = tooken.AsyncVerifier(verify_key, base_url=closed_port_url())
    t = well_formed_token("b")
    async with asgi(make_app(v)) as http:
        r = await http.get("/invoices", headers=bearer(t))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json() == {"error": "unavailable", "message": "the token cannot be verified right now; try again shortly"}
    await v.close()


async def test_a_refused_verifier_credential_is_a_503(client: tooken.Tooken, server: Server) -> None:
    weak = client.tokens.create(name="not-a-verifier", scopes=["tokens:read"]).secret
    t = client.tokens.create(name="fine", scopes=["invoices:read"]).secret
    v = tooken.AsyncVerifier(weak, base_url=server.url)
    async with asgi(make_app(v)) as http:
        r = await http.get("/invoices", headers=bearer(t))
    assert r.status_code == 503
    await v.close()


def test_fastapi_test_client_and_the_environment(
    client: tooken.Tooken, server: Server, verify_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default verifier comes from TOOKEN_URL and TOOKEN_VERIFY_KEY;
    FastAPI's TestClient runs the app on an event loop of its own."""
    import tooken.starlette as ts

    monkeypatch.setenv("TOOKEN_URL", server.url)
    monkeypatch.setenv("TOOKEN_VERIFY_KEY", verify_key)
    monkeypatch.setattr(ts, "_default", None)
    app = FastAPI()
    install(app)

    @app.get("/invoices")
    async def list_invoices(token: tooken.VerifiedToken = Depends(require_token("invoices:read"))):
        return {"id": token.id}

    t = client.tokens.create(name="tc", scopes=["invoices:read"])
    with TestClient(app) as http:
        assert http.get("/invoices", headers=bearer(t.secret)).json() == {"id": t.id}
        assert http.get("/invoices").status_code == 401
    # Without `with`, each request runs on a new event loop.
    http = TestClient(app)
    assert http.get("/invoices", headers=bearer(t.secret)).status_code == 200
    client.tokens.revoke(t.id)
    ts.default_verifier().cache.evict(token_id=t.id)
    assert http.get("/invoices", headers=bearer(t.secret)).status_code == 401


async def test_without_install_status_and_headers_still_hold(verifier: tooken.AsyncVerifier) -> None:
    app = FastAPI()

    @app.get("/x")
    async def x(token: tooken.VerifiedToken = Depends(require_token(verifier=verifier))):
        return {}

    async with asgi(app) as http:
        r = await http.get("/x")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="tooken"'
    assert r.json() == {"detail": UNAUTHORIZED}


def test_the_openapi_document_declares_the_bearer_scheme(verifier: tooken.AsyncVerifier) -> None:
    doc = make_app(verifier).openapi()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert doc["paths"]["/invoices"]["get"]["security"] == [{"HTTPBearer": []}]


def test_scopes_are_checked_when_the_route_is_declared() -> None:
    with pytest.raises(ValueError, match="not a scope"):
        require_token("Invoices Read")


async def test_starlette_decorator(client: tooken.Tooken, verifier: tooken.AsyncVerifier) -> None:
    @requires_token("invoices:read", verifier=verifier)
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.state.tooken.id})

    app = Starlette(routes=[Route("/invoices", endpoint)])
    t = client.tokens.create(name="st", scopes=["invoices:read"])
    other = client.tokens.create(name="st-other", scopes=["users:read"])
    async with asgi(app) as http:
        assert (await http.get("/invoices", headers=bearer(t.secret))).json() == {"id": t.id}
        r = await http.get("/invoices")
        assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
        r = await http.get("/invoices", headers=bearer(other.secret))
        assert r.status_code == 403 and r.json()["required_scope"] == "invoices:read"


def _token_answer(**extra: object) -> bytes:
    token = {"id": "tk_caveat", "name": "c", "scopes": ["invoices:read"], "metadata": None, "expires_at": None, "mode": "live"}
    return json.dumps({"token": token, **extra}).encode()


async def test_caveat_answers_are_rendered_and_never_reused() -> None:
    """Until the server has caveats, a small HTTP server gives the answers
    SPEC §11 describes."""
    secret = well_formed_token("c")
    cases = [
        (_token_answer(valid=False, code="RATE_LIMITED", retry_after_seconds=7), 429),
        (_token_answer(valid=False, code="USAGE_EXCEEDED", remaining_uses=0), 403),
        (_token_answer(valid=False, code="IP_NOT_ALLOWED"), 403),
    ]
    for body, status in cases:
        with Stub([Reply(200, body)]) as stub:
            v = tooken.AsyncVerifier(client=tooken.AsyncTooken("tkn_live_v", base_url=stub.url, max_retries=0))
            async with asgi(make_app(v)) as http:
                r = await http.get("/invoices", headers=bearer(secret))
            assert r.status_code == status, body
            if status == 429:
                assert r.headers["retry-after"] == "7"
                assert r.json()["error"] == "rate_limited"
            else:
                assert r.json()["error"] == "forbidden" and "required_scope" not in r.json()
    limited = _token_answer(
        valid=True,
        code="VALID",
        rate_limits=[{"name": "default", "limit": 10, "remaining": 9, "reset_at": "2030-01-01T00:00:00Z"}],
    )
    with Stub([Reply(200, limited)]) as stub:
        v = tooken.AsyncVerifier(client=tooken.AsyncTooken("tkn_live_v", base_url=stub.url, max_retries=0))
        async with asgi(make_app(v)) as http:
            for _ in range(3):
                assert (await http.get("/invoices", headers=bearer(secret))).status_code == 200
        assert len(stub.seen) == 3, "every use of a rate-limited token reaches Tooken"
        assert len(v.cache) == 0
