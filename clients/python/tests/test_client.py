"""Every call of the sync client, against the real server."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone

import pytest

import tooken
from conftest import Server


def test_create_returns_the_secret_once_and_the_token_fields(client: tooken.Tooken) -> None:
    issued = client.tokens.create(
        name="billing-sync",
        scopes=["invoices:read"],
        description="nightly export",
        metadata={"customer": "acme"},
        expires_in=3600,
    )
    assert isinstance(issued, tooken.TokenWithSecret)
    assert issued.id.startswith("tk_")
    assert issued.secret.startswith("tkn_live_") and tooken.credential.is_token(issued.secret)
    assert issued.name == "billing-sync"
    assert issued.description == "nightly export"
    assert issued.scopes == ["invoices:read"]
    assert issued.metadata == {"customer": "acme"}
    assert issued.mode == "live" and issued.status == "active"
    assert issued.hint.endswith(issued.secret[-4:])
    assert issued.created_at.tzinfo is not None
    assert issued.expires_at is not None
    assert timedelta(minutes=59) < issued.expires_at - issued.created_at <= timedelta(hours=1, seconds=1)
    # The secret never reaches a log line through repr().
    assert issued.secret not in repr(issued)
    # …and is not on the token when read back.
    again = client.tokens.get(issued.id)
    assert not hasattr(again, "secret")
    assert again.id == issued.id and again.metadata == {"customer": "acme"}


def test_create_with_expires_at_takes_aware_datetimes_and_refuses_naive_ones(client: tooken.Tooken) -> None:
    when = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0)
    issued = client.tokens.create(name="until", expires_at=when)
    assert issued.expires_at == when
    with pytest.raises(ValueError, match="naive"):
        client.tokens.create(name="naive", expires_at=datetime(2030, 1, 1))


def test_list_follows_the_cursor_across_pages(client: tooken.Tooken) -> None:
    made = [client.tokens.create(name=f"page-{i}", scopes=["pages:read"]).id for i in range(7)]
    listed = [t.id for t in client.tokens.list(scope="pages:read", limit=3)]
    assert listed == list(reversed(made)), "every token once, newest first"
    pages = list(client.tokens.list(scope="pages:read", limit=3).pages())
    assert [len(p.data) for p in pages] == [3, 3, 1]
    assert pages[0].has_more and pages[0].next_cursor
    assert not pages[-1].has_more
    first = client.tokens.list(scope="pages:read", limit=2).first_page()
    rest = [t.id for t in client.tokens.list(scope="pages:read", limit=2, starting_after=first.next_cursor)]
    assert [t.id for t in first.data] + rest == listed


def test_list_filters_by_status_and_name_prefix(client: tooken.Tooken) -> None:
    keep = client.tokens.create(name="filter-keep")
    gone = client.tokens.create(name="filter-gone")
    client.tokens.revoke(gone.id)
    active = {t.id for t in client.tokens.list(name="filter-", status="active")}
    revoked = {t.id for t in client.tokens.list(name="filter-", status="revoked")}
    assert keep.id in active and gone.id not in active
    assert revoked == {gone.id}


def test_update_changes_given_fields_and_none_clears(client: tooken.Tooken) -> None:
    t = client.tokens.create(name="before", description="d", metadata={"a": 1}, expires_in=600)
    updated = client.tokens.update(t.id, name="after", scopes=["x:read", "y:write"])
    assert updated.name == "after" and updated.scopes == ["x:read", "y:write"]
    assert updated.description == "d", "fields not given are left alone"
    cleared = client.tokens.update(t.id, description=None, metadata=None, expires_at=None)
    assert cleared.description is None and cleared.metadata is None and cleared.expires_at is None


def test_rotate_gives_a_new_secret_and_the_grace_period_keeps_the_old(client: tooken.Tooken) -> None:
    t = client.tokens.create(name="rotating", scopes=["r:read"])
    rotated = client.tokens.rotate(t.id, grace_period_seconds=3600)
    assert rotated.id == t.id and rotated.secret != t.secret
    assert client.tokens.verify(rotated.secret).valid
    assert client.tokens.verify(t.secret).valid, "old secret within its grace period"
    again = client.tokens.rotate(t.id)
    assert client.tokens.verify(again.secret).valid
    assert client.tokens.verify(rotated.secret).code == "NOT_FOUND", "no grace: the previous secret stops at once"


def test_revoke_is_idempotent_cascades_and_is_seen_by_verify(client: tooken.Tooken, server: Server) -> None:
    parent = client.tokens.create(name="parent", scopes=["tokens:write", "c:read"])
    as_parent = client.with_options(api_key=parent.secret)
    child = as_parent.tokens.create(name="child", scopes=["c:read"])
    assert child.parent_id == parent.id and child.created_by == parent.id
    revoked = client.tokens.revoke(parent.id, reason="rotation drill")
    assert revoked.status == "revoked" and revoked.revoked_at is not None
    assert client.tokens.revoke(parent.id).status == "revoked"
    assert client.tokens.get(child.id).status == "revoked", "children are revoked with their parent"
    result = client.tokens.verify(token=child.secret, scopes=["c:read"])
    assert (result.valid, result.code) == (False, "REVOKED")
    assert result.token is not None and result.token.id == child.id


def test_verify_answers_each_code(client: tooken.Tooken) -> None:
    t = client.tokens.create(name="verified", scopes=["invoices:*"], metadata={"tier": "gold"})
    ok = client.tokens.verify(token=t.secret, scopes=["invoices:read"])
    assert ok.valid and ok.code == tooken.VerifyCode.VALID
    assert ok.token is not None
    assert ok.token.id == t.id and ok.token.metadata == {"tier": "gold"} and ok.token.mode == "live"
    assert ok.token.has_scope("invoices:write") and not ok.token.has_scope("users:read")
    assert client.tokens.verify(t.secret, scopes=["users:read"]).code == "INSUFFICIENT_SCOPE"
    assert client.tokens.verify("not a token").code == "MALFORMED"
    assert client.tokens.verify(t.secret[:-1] + ("A" if t.secret[-1] != "A" else "B")).code == "MALFORMED"
    assert client.tokens.verify(_well_formed_unknown()).code == "NOT_FOUND"


def _well_formed_unknown() -> str:
    import zlib

    from tooken.credential import _checksum

    head = "tkn_live_" + "a" * 30
    return head + _checksum(zlib.crc32(head.encode()))


def test_verify_reports_expired_tokens(client: tooken.Tooken) -> None:
    # The server's clock decides expiry: a one-second token, asked about
    # until that second has passed on it (bounded).
    t = client.tokens.create(name="short", expires_in=1)
    deadline = time.monotonic() + 10
    code = "VALID"
    while code == "VALID" and time.monotonic() < deadline:
        time.sleep(0.1)
        code = client.tokens.verify(t.secret).code
    assert code == "EXPIRED"
    assert client.tokens.get(t.id).status == "expired"


def test_introspect_is_rfc_7662(client: tooken.Tooken) -> None:
    t = client.tokens.create(name="introspected", scopes=["a:read", "b:read"], expires_in=600)
    active = client.tokens.introspect(t.secret)
    assert active.active and set((active.scope or "").split()) == {"a:read", "b:read"}
    assert active.token_type == "bearer" and active.exp and active.iat and active.exp - active.iat == 600
    client.tokens.revoke(t.id)
    inactive = client.tokens.introspect(t.secret)
    assert inactive == tooken.Introspection(active=False)


def test_usage_counts_verifications(client: tooken.Tooken) -> None:
    t = client.tokens.create(name="used")
    for _ in range(3):
        assert client.tokens.verify(t.secret).valid
    usage = client.tokens.usage(t.id, days=7)
    assert usage.token_id == t.id
    # Usage is flushed within about a second; the shape is what is checked here.
    assert all(isinstance(d.date, date) and d.verifications >= 0 for d in usage.data)


def test_settings_get_and_update(fresh_server: Server) -> None:
    with tooken.Tooken(fresh_server.api_key, base_url=fresh_server.url) as c:
        s = c.settings.get()
        assert s == tooken.Settings(
            require_expiration=False,
            max_token_ttl_seconds=None,
            default_token_ttl_seconds=None,
            token_prefix="tkn",
            audit_retention_days=None,
        )
        s = c.settings.update(require_expiration=True, max_token_ttl_seconds=86400, token_prefix="acme")
        assert s.require_expiration and s.max_token_ttl_seconds == 86400 and s.token_prefix == "acme"
        with pytest.raises(tooken.InvalidRequestError) as e:
            c.tokens.create(name="forever")
        assert e.value.status == 400 and "require_expiration" in e.value.message
        t = c.tokens.create(name="acme", expires_in=60)
        assert t.secret.startswith("acme_live_")
        s = c.settings.update(max_token_ttl_seconds=None, require_expiration=False)
        assert s.max_token_ttl_seconds is None and s.token_prefix == "acme"


def test_whoami_for_an_api_key_and_for_a_token(client: tooken.Tooken) -> None:
    me = client.whoami()
    assert me.kind == "api_key" and me.id.startswith("key_") and me.mode == "live"
    assert me.workspace.name == "default"
    assert "tokens:write" in me.scopes
    t = client.tokens.create(name="me", scopes=["tokens:read"])
    as_token = client.with_options(api_key=t.secret).whoami()
    assert (as_token.kind, as_token.id, as_token.scopes) == ("token", t.id, ["tokens:read"])


def test_audit_log_lists_filters_and_follows_the_cursor(client: tooken.Tooken) -> None:
    t = client.tokens.create(name="audited")
    client.tokens.revoke(t.id, reason="audit test")
    events = list(client.audit_log.list(target=t.id, limit=1))
    assert [e.action for e in events] == ["token.revoked", "token.created"]
    assert all(isinstance(e, tooken.AuditEvent) and e.target and e.target.id == t.id for e in events)
    assert events[0].seq > events[1].seq and events[0].prev_hash and events[0].hash
    assert events[0].actor.kind == "api_key"
    since = events[1].occurred_at
    assert {e.id for e in client.audit_log.list(target=t.id, since=since)} >= {events[0].id}
    assert list(client.audit_log.list(action="token.revoked", target=t.id)) == events[:1]


def test_audit_export_streams_ndjson_oldest_first(client: tooken.Tooken) -> None:
    t = client.tokens.create(name="exported")
    client.tokens.revoke(t.id)
    with client.audit_log.export(target=t.id) as export:
        events = list(export)
    assert [e.action for e in events] == ["token.created", "token.revoked"]
    with client.audit_log.export() as export:
        raw = b"".join(export.iter_bytes())
    lines = raw.decode().splitlines()
    assert len(lines) >= 2 and all(json.loads(line)["hash"] for line in lines)
    seqs = [json.loads(line)["seq"] for line in lines]
    assert seqs == sorted(seqs)


def test_authz_rules_are_replaced_read_and_validated(client: tooken.Tooken) -> None:
    answer = client.authz.rules.put(
        [
            tooken.AuthzRule(methods=["get"], path="/invoices/**", scopes=["invoices:read"]),
            {"methods": "*", "path": "/health", "anonymous": True},
            {"methods": ["GET"], "path": "/invoices/42", "scopes": ["x"], "cost": 3},
        ]
    )
    assert [r.methods for r in answer.rules] == [["GET"], "*", ["GET"]]
    assert answer.rules[1].anonymous and answer.rules[2].cost == 3
    assert [(w.field, w.shadowed_by) for w in answer.warnings] == [("rules[2]", [0])]
    assert client.authz.rules.get() == answer
    with pytest.raises(tooken.InvalidRequestError) as e:
        client.authz.rules.put([{"methods": ["FETCH"], "path": "/x"}])
    assert e.value.field == "rules[0].methods[0]"
    assert client.authz.rules.get().rules == answer.rules, "nothing changed"
    client.authz.rules.put([])
    assert client.authz.rules.get().rules == []


def test_system_endpoints(client: tooken.Tooken) -> None:
    assert client.health() == "ok"
    assert client.ready() == "ready"
    assert "tooken_" in client.metrics()
    doc = client.openapi()
    assert doc["openapi"].startswith("3.") and "/v1/tokens" in doc["paths"]


def test_unknown_fields_are_kept_not_fatal() -> None:
    body = {
        "id": "tk_1",
        "name": "n",
        "description": None,
        "mode": "live",
        "scopes": [],
        "metadata": None,
        "hint": "tkn_live_…abcd",
        "status": "active",
        "created_at": "2030-01-02T03:04:05.123456789Z",
        "created_by": "key_1",
        "expires_at": None,
        "last_used_at": None,
        "revoked_at": None,
        "parent_id": None,
        "allowed_ips": ["203.0.113.0/24"],
        "something_new": {"x": 1},
    }
    t = tooken.Token.from_dict(body)
    assert t.extra == {"allowed_ips": ["203.0.113.0/24"], "something_new": {"x": 1}}
    assert t.created_at == datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    r = tooken.VerifyResult.from_dict({"valid": False, "code": "SOMETHING_NEW"})
    assert r.code == "SOMETHING_NEW" and r.token is None


def test_extra_body_reaches_the_server(client: tooken.Tooken) -> None:
    # A field the server does not know is refused by name: proof it was sent.
    with pytest.raises(tooken.InvalidRequestError) as e:
        client.tokens.create(name="x", extra_body={"not_a_field": 1})
    assert e.value.field == "not_a_field"


def test_ids_cannot_change_the_path(client: tooken.Tooken) -> None:
    with pytest.raises(tooken.NotFoundError):
        client.tokens.get("../settings")
    with pytest.raises(ValueError):
        client.tokens.get("")
