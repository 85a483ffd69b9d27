"""Every error class, and the retry rules."""

from __future__ import annotations

import sqlite3
import threading

import httpx
import pytest

import tooken
from conftest import Server, start_server
from stub import Reply, Stub, closed_port_url

UNAUTHORIZED = {"error": "unauthorized", "message": "Invalid or missing API key"}


def test_every_error_derives_from_tooken_error() -> None:
    for name in tooken.__all__:
        obj = getattr(tooken, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, tooken.TookenError), name


def test_authentication_error_carries_the_api_fields(server: Server) -> None:
    bad = tooken.Tooken("tok_live_" + "x" * 36, base_url=server.url)
    with pytest.raises(tooken.AuthenticationError) as e:
        bad.whoami()
    err = e.value
    assert (err.status, err.error, err.message) == (401, "unauthorized", "Invalid or missing API key")
    assert err.body == UNAUTHORIZED
    assert err.request_id, "the server's x-request-id, for its logs"
    assert err.headers["www-authenticate"] == 'Bearer realm="tooken", error="invalid_token"'
    assert isinstance(err, tooken.APIStatusError)
    assert "tok_live_xxx" not in str(err), "never the credential in a message"


def test_permission_denied_names_the_scope(client: tooken.Tooken) -> None:
    reader = client.tokens.create(name="reader", scopes=["tokens:read"])
    as_reader = client.with_options(api_key=reader.secret)
    assert [t.id for t in as_reader.tokens.list(limit=1)]
    with pytest.raises(tooken.PermissionDeniedError) as e:
        as_reader.tokens.create(name="nope")
    assert (e.value.status, e.value.error, e.value.required_scope) == (403, "forbidden", "tokens:write")
    assert "tokens:write" in e.value.message
    with pytest.raises(tooken.PermissionDeniedError):
        as_reader.settings.get()
    with pytest.raises(tooken.PermissionDeniedError) as e:
        list(as_reader.audit_log.list())
    assert e.value.required_scope == "audit:read"
    with pytest.raises(tooken.PermissionDeniedError) as e:
        as_reader.audit_log.export()
    assert e.value.required_scope == "audit:read"


def test_not_found(client: tooken.Tooken) -> None:
    with pytest.raises(tooken.NotFoundError) as e:
        client.tokens.get("tk_00000000000000000000000000")
    assert (e.value.status, e.value.error) == (404, "not_found")
    for call in (
        lambda: client.tokens.update("tk_nope", name="x"),
        lambda: client.tokens.rotate("tk_nope"),
        lambda: client.tokens.revoke("tk_nope"),
        lambda: client.tokens.usage("tk_nope"),
    ):
        with pytest.raises(tooken.NotFoundError):
            call()


def test_conflict_on_changing_a_revoked_token(client: tooken.Tooken) -> None:
    t = client.tokens.create(name="done")
    client.tokens.revoke(t.id)
    with pytest.raises(tooken.ConflictError) as e:
        client.tokens.update(t.id, name="again")
    assert (e.value.status, e.value.error) == (409, "conflict")
    with pytest.raises(tooken.ConflictError):
        client.tokens.rotate(t.id)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"name": "ok", "scopes": ["Not A Scope"]}, "scopes[0]"),
        ({"name": "ok", "scopes": [f"s{i}:read" for i in range(51)]}, "scopes"),
        ({"name": "ok", "metadata": {"k": "v" * 5000}}, "metadata"),
        ({"name": "ok", "expires_in": 0}, "expires_in"),
        ({"name": "ok", "expires_in": 10, "expires_at": "2099-01-01T00:00:00Z"}, None),
    ],
)
def test_invalid_request_names_the_field(client: tooken.Tooken, kwargs: dict, field: str | None) -> None:
    with pytest.raises(tooken.InvalidRequestError) as e:
        client.tokens.create(**kwargs)
    assert (e.value.status, e.value.error) == (400, "invalid_request")
    if field is not None:
        assert e.value.field == field, e.value


def test_invalid_list_parameters(client: tooken.Tooken) -> None:
    with pytest.raises(tooken.InvalidRequestError):
        list(client.tokens.list(limit=0))
    with pytest.raises(tooken.InvalidRequestError):
        list(client.tokens.list(status="sleeping"))
    with pytest.raises(tooken.InvalidRequestError):
        client.tokens.rotate(client.tokens.create(name="g").id, grace_period_seconds=604801)


def test_payload_too_large(client: tooken.Tooken) -> None:
    with pytest.raises(tooken.PayloadTooLargeError) as e:
        client.tokens.create(name="big", description="x" * 70_000)
    assert e.value.status == 413 and isinstance(e.value, tooken.InvalidRequestError)


def test_rate_limit_error_carries_retry_after(tmp_path) -> None:
    s = start_server(tmp_path, "--auth-slow-after", "1", "--auth-block-after", "2")
    try:
        bad = tooken.Tooken("tok_live_" + "y" * 36, base_url=s.url, max_retries=0)
        seen = []
        for _ in range(6):
            try:
                bad.whoami()
            except tooken.TookenError as e:
                seen.append(e)
                if isinstance(e, tooken.RateLimitError):
                    break
        limited = seen[-1]
        assert isinstance(limited, tooken.RateLimitError), seen
        assert (limited.status, limited.error) == (429, "rate_limited")
        assert limited.retry_after is not None and 0 < limited.retry_after <= 60
        assert limited.headers["retry-after"] == str(int(limited.retry_after))
    finally:
        s.stop()


def test_service_unavailable_when_the_store_is_locked(fresh_server: Server) -> None:
    """A real 503: another process holds SQLite's write lock past the
    server's busy timeout."""
    path = fresh_server.database.removeprefix("sqlite://")
    lock = sqlite3.connect(path, timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        c = tooken.Tooken(fresh_server.api_key, base_url=fresh_server.url, max_retries=0, timeout=60)
        with pytest.raises(tooken.ServiceUnavailableError) as e:
            c.tokens.create(name="blocked")
        assert (e.value.status, e.value.error) == (503, "unavailable")
        assert e.value.retry_after is not None
    finally:
        lock.execute("ROLLBACK")
        lock.close()


def test_internal_server_error_and_unexpected_answers() -> None:
    body = b'{"error":"internal","message":"internal error"}'
    with Stub([Reply(500, body, {"Content-Type": "application/json", "x-request-id": "req-1"})]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url, max_retries=0)
        with pytest.raises(tooken.InternalServerError) as e:
            c.whoami()
        assert (e.value.status, e.value.error, e.value.request_id) == (500, "internal", "req-1")
    with Stub([Reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url, max_retries=0)
        with pytest.raises(tooken.InternalServerError) as e:
            c.whoami()
        assert e.value.status == 502 and e.value.body is None
    with Stub([Reply(200, b"not json", {"Content-Type": "text/plain"})]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url, max_retries=0)
        with pytest.raises(tooken.UnexpectedResponseError):
            c.whoami()
    with Stub([Reply(200, b'{"kind":"api_key"}')]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url, max_retries=0)
        with pytest.raises(tooken.UnexpectedResponseError, match="'id' is missing"):
            c.whoami()
    with Stub([Reply(408, b'{"error":"request_timeout","message":"too slow"}')]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url, max_retries=0)
        with pytest.raises(tooken.RequestTimeoutError):
            c.whoami()


def test_connection_errors() -> None:
    c = tooken.Tooken("tok_live_k", base_url=closed_port_url(), max_retries=0)
    with pytest.raises(tooken.APIConnectionError) as e:
        c.whoami()
    assert e.value.status is None and "tok_live_k" not in str(e.value)
    with Stub([Reply(200, b"{}", delay=5)]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url, max_retries=0, timeout=0.3)
        with pytest.raises(tooken.APITimeoutError):
            c.whoami()


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOOKEN_API_KEY", raising=False)
    with pytest.raises(tooken.ConfigurationError, match="TOOKEN_API_KEY"):
        tooken.Tooken()
    with pytest.raises(tooken.ConfigurationError, match="http"):
        tooken.Tooken("tok_live_k", base_url="ftp://example")
    with pytest.raises(tooken.ConfigurationError, match="whitespace"):
        tooken.Tooken("tok_live_k\n")


def test_environment_configures_the_client(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOKEN_API_KEY", server.api_key)
    monkeypatch.setenv("TOOKEN_URL", server.url)
    with tooken.Tooken() as c:
        assert c.base_url == server.url
        assert c.whoami().kind == "api_key"
    monkeypatch.delenv("TOOKEN_URL")
    assert tooken.Tooken().base_url == "http://127.0.0.1:7878"


def test_requests_carry_the_user_agent_and_the_key() -> None:
    me = b'{"kind":"api_key","id":"key_1","name":"n","hint":"h","workspace":{"id":"ws","name":"default"},"mode":"live","scopes":[]}'
    with Stub([Reply(200, me)]) as stub:
        tooken.Tooken("tok_live_k", base_url=stub.url).whoami()
        headers = stub.seen[0].headers
    assert headers["user-agent"].startswith(f"tooken-python/{tooken.__version__} ")
    assert headers["authorization"] == "Bearer tok_live_k"


# -- retries ------------------------------------------------------------


def _recording(c: tooken.Tooken) -> list[float]:
    sleeps: list[float] = []
    c._sleep = sleeps.append
    return sleeps


def test_429_and_503_are_retried_after_retry_after_for_any_method() -> None:
    body = b'{"valid":true,"code":"VALID"}'
    replies = [
        Reply(503, b'{"error":"unavailable","message":"m"}', {"Retry-After": "1"}),
        Reply(429, b'{"error":"rate_limited","message":"m"}', {"Retry-After": "2"}),
        Reply(200, body),
    ]
    with Stub(replies) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url)
        sleeps = _recording(c)
        assert c.tokens.verify("x").valid
        assert [s.method for s in stub.seen] == ["POST", "POST", "POST"]
    assert sleeps == [1.0, 2.0]


def test_retries_are_bounded() -> None:
    with Stub([Reply(503, b'{"error":"unavailable","message":"m"}', {"Retry-After": "0"})]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url, max_retries=3)
        sleeps = _recording(c)
        with pytest.raises(tooken.ServiceUnavailableError):
            c.whoami()
        assert len(stub.seen) == 4 and sleeps == [0.0, 0.0, 0.0]


def test_a_long_retry_after_is_not_waited_for() -> None:
    with Stub([Reply(429, b'{"error":"rate_limited","message":"m"}', {"Retry-After": "3600"})]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url)
        sleeps = _recording(c)
        with pytest.raises(tooken.RateLimitError) as e:
            c.whoami()
        assert len(stub.seen) == 1 and sleeps == []
        assert e.value.retry_after == 3600


def test_a_get_is_retried_after_a_timeout_but_a_post_never_is() -> None:
    me = b'{"kind":"api_key","id":"key_1","name":"n","hint":"h","workspace":{"id":"ws","name":"default"},"mode":"live","scopes":[]}'
    with Stub([Reply(200, me, delay=2), Reply(200, me)]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url, timeout=0.3)
        sleeps = _recording(c)
        assert c.whoami().id == "key_1"
        assert len(stub.seen) == 2 and len(sleeps) == 1
    with Stub([Reply(200, b"{}", delay=2)]) as stub:
        c = tooken.Tooken("tok_live_k", base_url=stub.url, timeout=0.3)
        sleeps = _recording(c)
        with pytest.raises(tooken.APITimeoutError):
            c.tokens.create(name="maybe applied")
        assert len(stub.seen) == 1 and sleeps == [], "a POST that may have been applied is not sent again"


def test_a_request_that_never_connected_is_retried_whatever_its_method() -> None:
    c = tooken.Tooken("tok_live_k", base_url=closed_port_url(), max_retries=2)
    sleeps = _recording(c)
    with pytest.raises(tooken.APIConnectionError):
        c.tokens.create(name="never sent")
    assert len(sleeps) == 2


def test_client_errors_are_never_retried(server: Server) -> None:
    c = tooken.Tooken(server.api_key, base_url=server.url)
    sleeps = _recording(c)
    with pytest.raises(tooken.NotFoundError):
        c.tokens.get("tk_missing")
    assert sleeps == []


def test_retry_policy_table() -> None:
    from tooken._core import retry_delay

    def req(**kw: object) -> float | None:
        return retry_delay("GET", 0, 2, jitter=lambda: 0.5, **kw)  # type: ignore[arg-type]

    assert req(error=httpx.ReadTimeout("t")) == 0.5
    assert retry_delay("POST", 0, 2, error=httpx.ReadTimeout("t")) is None
    assert retry_delay("PATCH", 0, 2, error=httpx.RemoteProtocolError("x")) is None
    assert retry_delay("POST", 0, 2, error=httpx.ConnectError("refused"), jitter=lambda: 0.5) == 0.5
    assert retry_delay("GET", 2, 2, error=httpx.ConnectError("refused")) is None
    assert retry_delay("GET", 1, 5, error=httpx.ConnectError("refused"), jitter=lambda: 0.5) == 1.0
    r = httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert req(response=r) == 0.0, "a date in the past: at once"
    assert req(response=httpx.Response(500)) is None
    assert req(response=httpx.Response(429)) == 0.5


def test_threads_share_one_client(client: tooken.Tooken) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                client.whoami()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
