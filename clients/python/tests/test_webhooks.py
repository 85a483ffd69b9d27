"""Webhook signatures (Standard Webhooks), on the specification's own test
vector and on deliveries made here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tooken import WebhookVerificationError, webhooks

# The Standard Webhooks specification's published test vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str = SIGNATURE, timestamp: int = TIMESTAMP, msg_id: str = MSG_ID) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_the_specifications_vector() -> None:
    assert webhooks.sign(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    assert webhooks.verify(SECRET, headers(), BODY, now=TIMESTAMP) == {"test": 2432232314}
    assert webhooks.verify(SECRET, headers(), BODY.encode(), now=TIMESTAMP + 299) == {"test": 2432232314}


def test_header_names_are_case_insensitive_and_the_prefix_optional() -> None:
    upper = {k.title(): v for k, v in headers().items()}
    assert webhooks.verify(SECRET, upper, BODY, now=TIMESTAMP)
    assert webhooks.verify(SECRET.removeprefix("whsec_"), headers(), BODY, now=TIMESTAMP)


def test_any_matching_signature_among_several_passes() -> None:
    other = webhooks.sign("whsec_" + "QUJD" * 8, MSG_ID, TIMESTAMP, BODY)
    assert webhooks.verify(SECRET, headers(f"{other} {SIGNATURE}"), BODY, now=TIMESTAMP)
    # Our side of a rotation: either secret may have signed.
    assert webhooks.verify(["whsec_" + "QUJD" * 8, SECRET], headers(), BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("hdrs", "body", "now", "code"),
    [
        (headers(), '{"test": 2432232315}', TIMESTAMP, "no_matching_signature"),
        (headers(msg_id="msg_other"), BODY, TIMESTAMP, "no_matching_signature"),
        (headers(timestamp=TIMESTAMP + 1), BODY, TIMESTAMP, "no_matching_signature"),
        (headers("v1,AAAA"), BODY, TIMESTAMP, "no_matching_signature"),
        (headers("v1,not base64!"), BODY, TIMESTAMP, "no_matching_signature"),
        (headers("v2," + SIGNATURE[3:]), BODY, TIMESTAMP, "no_matching_signature"),
        (headers(), BODY, TIMESTAMP + 301, "timestamp_too_old"),
        (headers(), BODY, TIMESTAMP - 301, "timestamp_too_new"),
        ({"webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}, BODY, TIMESTAMP, "missing_header"),
        ({"webhook-id": MSG_ID, "webhook-signature": SIGNATURE}, BODY, TIMESTAMP, "missing_header"),
        ({"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP)}, BODY, TIMESTAMP, "missing_header"),
        (headers(timestamp="soon"), BODY, TIMESTAMP, "invalid_timestamp"),  # type: ignore[arg-type]
        (headers(timestamp="٣"), BODY, TIMESTAMP, "invalid_timestamp"),  # type: ignore[arg-type]
    ],
)
def test_refusals(hdrs: dict[str, str], body: str, now: int, code: str) -> None:
    with pytest.raises(WebhookVerificationError) as e:
        webhooks.verify(SECRET, hdrs, body, now=now)
    assert e.value.error == code, e.value


def test_the_vectors_shared_with_tooken_core() -> None:
    """`crates/tooken-core/testdata/webhook-vectors.json`: the cases every
    Tooken receiver (Rust, Python, TypeScript) must agree on."""
    path = Path(__file__).resolve().parents[3] / "crates/tooken-core/testdata/webhook-vectors.json"
    if not path.exists():
        pytest.skip("outside a Tooken checkout: no shared webhook vectors")
    vectors = json.loads(path.read_text())
    assert vectors["tolerance_seconds"] == webhooks.DEFAULT_TOLERANCE
    for case in vectors["sign"]:
        assert webhooks.sign(case["secret"], case["id"], case["timestamp"], case["body"]) == case["signature"], case["source"]
    assert len(vectors["verify"]) > 10
    for case in vectors["verify"]:
        if case["valid"]:
            payload = webhooks.verify(case["secret"], case["headers"], case["body"].encode(), now=case["now"])
            assert payload == json.loads(case["body"]), case["name"]
        else:
            with pytest.raises(WebhookVerificationError) as e:
                webhooks.verify(case["secret"], case["headers"], case["body"].encode(), now=case["now"])
            assert e.value.error == case["error"], case["name"]


def test_tolerance_is_configurable() -> None:
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(SECRET, headers(), BODY, now=TIMESTAMP + 61, tolerance=60)
    assert webhooks.verify(SECRET, headers(), BODY, now=TIMESTAMP + 3600, tolerance=7200)


def test_a_bad_secret_is_refused_clearly() -> None:
    for bad in ("whsec_not base64!", "", "whsec_c2hvcnQ=", "whsec_" + "QUJD" * 30):
        with pytest.raises(WebhookVerificationError) as e:
            webhooks.verify(bad, headers(), BODY, now=TIMESTAMP)
        assert e.value.error == "invalid_secret", bad


def test_a_signed_body_that_is_not_json() -> None:
    sig = webhooks.sign(SECRET, MSG_ID, TIMESTAMP, b"not json")
    with pytest.raises(WebhookVerificationError) as e:
        webhooks.verify(SECRET, headers(sig), b"not json", now=TIMESTAMP)
    assert e.value.error == "invalid_body"
