"""The verifier cache's rules, on answers as Tooken gives them (including
the fields of tokens with caveats), with clocks the test moves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tooken import VerifierCache, VerifyResult
from tooken.credential import secret_hash

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = NOW

    def advance(self, s: float) -> None:
        self.mono += s
        self.wall += timedelta(seconds=s)


def cache(clock: Clock, **kw: Any) -> VerifierCache:
    return VerifierCache(monotonic=lambda: clock.mono, now=lambda: clock.wall, **kw)


def valid(token_id: str = "tk_1", **extra: Any) -> VerifyResult:
    token = {"id": token_id, "name": "n", "scopes": ["a:read"], "metadata": None, "expires_at": None, "mode": "live"}
    token.update(extra.pop("token", {}))
    return VerifyResult.from_dict({"valid": True, "code": "VALID", "token": token, **extra})


def invalid(code: str, **extra: Any) -> VerifyResult:
    return VerifyResult.from_dict({"valid": False, "code": code, **extra})


H = secret_hash("tkn_live_example")


def test_valid_answers_live_for_the_ttl_counted_from_the_question() -> None:
    clock = Clock()
    c = cache(clock, ttl=5)
    asked = clock.mono
    clock.advance(0.5)  # Tooken took half a second to answer
    c.store(H, None, valid(), asked)
    clock.advance(4.4)
    assert c.lookup(H, None) is not None
    clock.advance(0.1)
    assert c.lookup(H, None) is None, "5 s after the question, not after the answer"


def test_never_past_expires_at_nor_cache_until() -> None:
    clock = Clock()
    c = cache(clock, ttl=60)
    c.store(H, None, valid(token={"expires_at": (NOW + timedelta(seconds=2)).isoformat()}), clock.mono)
    clock.advance(1.9)
    assert c.lookup(H, None) is not None
    clock.advance(0.1)
    assert c.lookup(H, None) is None
    clock = Clock()
    c = cache(clock, ttl=60)
    c.store(H, None, valid(cache_until=(NOW + timedelta(seconds=3)).isoformat()), clock.mono)
    clock.advance(2.9)
    assert c.lookup(H, None) is not None
    clock.advance(0.1)
    assert c.lookup(H, None) is None


@pytest.mark.parametrize(
    "result",
    [
        valid(remaining_uses=10),
        valid(rate_limits=[{"name": "default", "limit": 5, "remaining": 4, "reset_at": "2030-01-01T00:01:00Z"}]),
        valid(token={"remaining_uses": 3}),
        valid(token={"rate_limits": [{"name": "default", "limit": 100, "window_seconds": 60}]}),
        invalid("RATE_LIMITED", retry_after_seconds=3),
        invalid("USAGE_EXCEEDED"),
        invalid("INSUFFICIENT_SCOPE"),
    ],
)
def test_answers_that_must_not_be_reused_are_not_kept(result: VerifyResult) -> None:
    clock = Clock()
    c = cache(clock)
    c.store(H, None, result, clock.mono)
    assert c.lookup(H, None) is None and len(c) == 0


def test_invalid_answers_live_for_the_negative_ttl() -> None:
    clock = Clock()
    c = cache(clock, negative_ttl=1)
    for code in ("NOT_FOUND", "REVOKED", "EXPIRED"):
        c.store(H, None, invalid(code), clock.mono)
        entry = c.lookup(H, None)
        assert entry is not None and entry.token is None and entry.code == code
        clock.advance(1)
        assert c.lookup(H, None) is None


def test_ip_bound_tokens_are_keyed_by_client_address() -> None:
    clock = Clock()
    c = cache(clock)
    c.store(H, "203.0.113.7", valid(token={"allowed_ips": ["203.0.113.0/24"]}), clock.mono)
    assert c.lookup(H, "203.0.113.7") is not None
    assert c.lookup(H, "198.51.100.1") is None, "another address is asked about"
    assert c.lookup(H, None) is None
    c.store(H, "198.51.100.1", invalid("IP_NOT_ALLOWED"), clock.mono)
    entry = c.lookup(H, "198.51.100.1")
    assert entry is not None and entry.code == "IP_NOT_ALLOWED"
    assert c.lookup(H, "203.0.113.7") is not None, "one address's refusal is not another's"


def test_a_late_older_answer_never_replaces_a_newer_one() -> None:
    clock = Clock()
    c = cache(clock)
    old_question = clock.mono
    clock.advance(0.1)
    c.store(H, None, invalid("REVOKED"), clock.mono)
    c.store(H, None, valid(), old_question)
    entry = c.lookup(H, None)
    assert entry is not None and entry.code == "REVOKED"


def test_evict_by_token_id_and_by_hash_prefix() -> None:
    clock = Clock()
    c = cache(clock)
    other = secret_hash("tkn_live_other")
    c.store(H, None, valid("tk_1"), clock.mono)
    c.store(other, None, valid("tk_2"), clock.mono)
    assert c.evict(token_id="tk_1") == 1
    assert c.lookup(H, None) is None and c.lookup(other, None) is not None
    assert c.evict(hash_prefix=other[:12].upper()) == 1
    assert len(c) == 0
    assert c.evict(token_id="tk_unknown") == 0


def test_bypass_serves_and_keeps_nothing() -> None:
    clock = Clock()
    c = cache(clock)
    c.store(H, None, valid(), clock.mono)
    c.bypass(True)
    assert c.bypassing and c.lookup(H, None) is None and len(c) == 0
    c.store(H, None, valid(), clock.mono)
    assert len(c) == 0
    c.bypass(False)
    c.store(H, None, valid(), clock.mono)
    assert c.lookup(H, None) is not None


def test_capacity_is_bounded_dropping_invalid_then_oldest() -> None:
    clock = Clock()
    c = cache(clock, capacity=10)
    for i in range(10):
        c.store(secret_hash(f"v{i}"), None, valid(f"tk_{i}"), clock.mono)
        clock.advance(0.01)
    c.store(secret_hash("bad"), None, invalid("NOT_FOUND"), clock.mono)
    assert len(c) == 10
    assert c.lookup(secret_hash("v0"), None) is None, "the oldest went first"
    c.store(secret_hash("new"), None, valid("tk_new"), clock.mono)
    assert c.lookup(secret_hash("bad"), None) is None, "invalid answers go before valid ones"
    assert c.lookup(secret_hash("v9"), None) is not None


def test_zero_ttl_or_capacity_keeps_nothing() -> None:
    clock = Clock()
    for c in (cache(clock, ttl=0, negative_ttl=0), cache(clock, capacity=0)):
        c.store(H, None, valid(), clock.mono)
        c.store(H, None, invalid("REVOKED"), clock.mono)
        assert len(c) == 0


def test_a_verifier_without_a_credential_fails_when_made(monkeypatch: pytest.MonkeyPatch) -> None:
    import tooken

    for name in ("TOOKEN_VERIFY_KEY", "TOOKEN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for make in (tooken.Verifier, tooken.AsyncVerifier):
        with pytest.raises(tooken.ConfigurationError, match="TOOKEN_VERIFY_KEY or TOOKEN_API_KEY"):
            make()
    monkeypatch.setenv("TOOKEN_API_KEY", "tok_live_k")
    assert tooken.Verifier().client.base_url == "http://127.0.0.1:7878"
    monkeypatch.setenv("TOOKEN_VERIFY_KEY", "tkn_live_v")
    assert tooken.AsyncVerifier()._config.api_key == "tkn_live_v"
