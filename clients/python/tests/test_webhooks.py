"""Webhook signatures (Standard Webhooks), on the specification's own test
vector and on deliveries made here."""

from __future__ import annotations

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
    ("hdrs", "body", "now", "why"),
    [
        (headers(), '{"test": 2432232315}', TIMESTAMP, "no webhook signature matches"),
        (headers(msg_id="msg_other"), BODY, TIMESTAMP, "no webhook signature matches"),
        (headers(timestamp=TIMESTAMP + 1), BODY, TIMESTAMP, "no webhook signature matches"),
        (headers("v1,AAAA"), BODY, TIMESTAMP, "no webhook signature matches"),
        (headers("v2," + SIGNATURE[3:]), BODY, TIMESTAMP, "no v1 signature"),
        (headers(), BODY, TIMESTAMP + 301, "too far"),
        (headers(), BODY, TIMESTAMP - 301, "too far"),
        ({"webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}, BODY, TIMESTAMP, "webhook-id"),
        ({"webhook-id": MSG_ID, "webhook-signature": SIGNATURE}, BODY, TIMESTAMP, "webhook-timestamp"),
        ({"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP)}, BODY, TIMESTAMP, "webhook-signature"),
        (headers(timestamp="soon"), BODY, TIMESTAMP, "not a number"),  # type: ignore[arg-type]
    ],
)
def test_refusals(hdrs: dict[str, str], body: str, now: int, why: str) -> None:
    with pytest.raises(WebhookVerificationError, match=why):
        webhooks.verify(SECRET, hdrs, body, now=now)


def test_tolerance_is_configurable() -> None:
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(SECRET, headers(), BODY, now=TIMESTAMP + 61, tolerance=60)
    assert webhooks.verify(SECRET, headers(), BODY, now=TIMESTAMP + 3600, tolerance=7200)


def test_a_bad_secret_is_refused_clearly() -> None:
    with pytest.raises(WebhookVerificationError, match="base64"):
        webhooks.verify("whsec_not base64!", headers(), BODY, now=TIMESTAMP)
    with pytest.raises(WebhookVerificationError, match="empty"):
        webhooks.verify("", headers(), BODY, now=TIMESTAMP)


def test_a_signed_body_that_is_not_json() -> None:
    sig = webhooks.sign(SECRET, MSG_ID, TIMESTAMP, b"not json")
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        webhooks.verify(SECRET, headers(sig), b"not json", now=TIMESTAMP)
