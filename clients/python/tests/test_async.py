"""The async client: every call, against the real server, and the same
surface as the sync client."""

from __future__ import annotations

import inspect

import pytest

import tooken
from conftest import Server
from stub import Reply, Stub

pytestmark = pytest.mark.anyio


async def test_every_call(server: Server) -> None:
    async with tooken.AsyncTooken(server.api_key, base_url=server.url) as c:
        issued = await c.tokens.create(name="async", scopes=["a:read"], metadata={"k": 1}, expires_in=600)
        assert issued.secret and issued.scopes == ["a:read"]
        assert (await c.tokens.get(issued.id)).name == "async"
        updated = await c.tokens.update(issued.id, name="async-2", description="d")
        assert (updated.name, updated.description) == ("async-2", "d")
        result = await c.tokens.verify(token=issued.secret, scopes=["a:read"])
        assert result.valid and result.token and result.token.id == issued.id
        assert (await c.tokens.introspect(issued.secret)).active
        assert (await c.tokens.usage(issued.id)).token_id == issued.id
        rotated = await c.tokens.rotate(issued.id, grace_period_seconds=0)
        assert rotated.secret != issued.secret
        assert (await c.tokens.verify(issued.secret)).code == "NOT_FOUND"
        revoked = await c.tokens.revoke(issued.id, reason="done")
        assert revoked.status == "revoked"
        for i in range(3):
            await c.tokens.create(name=f"async-page-{i}", scopes=["apage:read"])
        names = [t.name async for t in c.tokens.list(scope="apage:read", limit=2)]
        assert names == ["async-page-2", "async-page-1", "async-page-0"]
        pages = [p async for p in c.tokens.list(scope="apage:read", limit=2).pages()]
        assert [len(p.data) for p in pages] == [2, 1]
        assert len((await c.tokens.list(scope="apage:read", limit=1).first_page()).data) == 1
        events = [e async for e in c.audit_log.list(target=issued.id)]
        assert events[0].action == "token.revoked" and events[-1].action == "token.created"
        assert [e.action async for e in c.audit_log.list(target=issued.id, action="token.rotated")] == [
            "token.rotated"
        ]
        async with c.audit_log.export(target=issued.id) as export:
            exported = [e async for e in export]
        assert [e.id for e in exported] == [e.id for e in reversed(events)]
        async with c.audit_log.export(target=issued.id) as export:
            raw = b"".join([chunk async for chunk in export.iter_bytes()])
        assert raw.count(b"\n") == len(events)
        settings = await c.settings.get()
        assert settings.token_prefix == "tkn"
        assert (await c.settings.update(audit_retention_days=None)).audit_retention_days is None
        put = await c.authz.rules.put([{"methods": ["get"], "path": "/a/**", "scopes": ["a:read"]}])
        assert put.rules[0].methods == ["GET"]
        assert (await c.authz.rules.get()).rules == put.rules
        me = await c.whoami()
        assert me.kind == "api_key"
        assert await c.health() == "ok"
        assert await c.ready() == "ready"
        assert "tooken_" in await c.metrics()
        assert "paths" in await c.openapi()


async def test_errors_are_the_same_classes(server: Server) -> None:
    async with tooken.AsyncTooken("tok_live_" + "z" * 36, base_url=server.url) as bad:
        with pytest.raises(tooken.AuthenticationError) as e:
            await bad.whoami()
        assert e.value.status == 401 and e.value.message == "Invalid or missing API key"
    async with tooken.AsyncTooken(server.api_key, base_url=server.url) as c:
        with pytest.raises(tooken.NotFoundError):
            await c.tokens.get("tk_missing")
        with pytest.raises(tooken.InvalidRequestError) as e2:
            await c.tokens.create(name="ok", scopes=["BAD"])
        assert e2.value.field == "scopes[0]"


async def test_async_retries_follow_the_same_rules() -> None:
    replies = [Reply(503, b'{"error":"unavailable","message":"m"}', {"Retry-After": "0"}), Reply(200, b'{"valid":false,"code":"MALFORMED"}')]
    with Stub(replies) as stub:
        async with tooken.AsyncTooken("tok_live_k", base_url=stub.url) as c:
            sleeps: list[float] = []

            async def record(s: float) -> None:
                sleeps.append(s)

            c._sleep = record
            assert (await c.tokens.verify("x")).code == "MALFORMED"
        assert len(stub.seen) == 2 and sleeps == [0.0]


def _public(obj: object) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(obj, name))
        for name in dir(obj)
        if not name.startswith("_") and callable(getattr(obj, name))
    }


def test_sync_and_async_clients_have_the_same_calls() -> None:
    sync = tooken.Tooken("tok_live_k")
    asyn = tooken.AsyncTooken("tok_live_k")
    for attr in ("tokens", "audit_log", "settings", "authz.rules", None):
        s, a = sync, asyn
        for part in attr.split(".") if attr else []:
            s, a = getattr(s, part), getattr(a, part)
        ss, aa = _public(s), _public(a)
        assert ss.keys() == aa.keys(), attr
        for name in ss:
            ps = [(p.name, p.kind, p.default) for p in ss[name].parameters.values()]
            pa = [(p.name, p.kind, p.default) for p in aa[name].parameters.values()]
            assert ps == pa, f"{attr}.{name}"
    sync.close()
