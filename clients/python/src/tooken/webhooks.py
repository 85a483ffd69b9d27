"""Checking the signature of Tooken's webhook requests.

Tooken signs each delivery the Standard Webhooks way: headers
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of
``"{id}.{timestamp}.{body}"``, keyed with the endpoint's secret
``whsec_<base64>``; several space-separated signatures while a secret
rotation overlaps). Check it on the raw body, before parsing it::

    from tooken import webhooks

    @app.post("/hooks/tooken")
    async def hook(request: Request):
        body = await request.body()
        try:
            event = webhooks.verify(os.environ["TOOKEN_WEBHOOK_SECRET"], request.headers, body)
        except webhooks.WebhookVerificationError:
            return Response(status_code=400)
        if event["type"] == "token.revoked": ...
        return Response(status_code=204)

The same ``webhook-id`` comes with every attempt of one event: use it to
ignore repeats (delivery is at least once).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Iterable, Mapping

from ._errors import WebhookVerificationError

__all__ = ["verify", "sign", "WebhookVerificationError", "DEFAULT_TOLERANCE"]

#: How far (seconds) a delivery's timestamp may be from now, either way.
DEFAULT_TOLERANCE = 300
_PREFIX = "whsec_"
_MIN_KEY_BYTES, _MAX_KEY_BYTES = 24, 64


def _fail(code: str, message: str) -> WebhookVerificationError:
    return WebhookVerificationError(message, error=code)


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise _fail("invalid_secret", "the webhook secret is empty")
    raw = secret[len(_PREFIX) :] if secret.startswith(_PREFIX) else secret
    try:
        # Padded or not, as Standard Webhooks libraries accept it.
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise _fail("invalid_secret", "the webhook secret is not whsec_ followed by base64") from e
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise _fail("invalid_secret", "a webhook secret is whsec_ followed by the base64 of 24 to 64 bytes")
    return key


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; HTTP header names are not.
        for k, v in headers.items():
            if k.lower() == name:
                value = v
                break
    if value is None:
        raise _fail("missing_header", f"missing header {name}")
    return str(value)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value Tooken sends for this delivery
    (``v1,<base64>``): for testing your endpoint."""
    payload = body.encode() if isinstance(body, str) else bytes(body)
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str | Iterable[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Any:
    """Checks a webhook request and returns its parsed JSON payload
    (``{"type": …, "timestamp": …, "data": {…}}``).

    `secret` is the endpoint's signing secret (``whsec_…``), or several
    (during your own rotation); `headers` the request's headers (any
    mapping; names are matched case-insensitively); `body` the raw body,
    exactly as received. Raises `WebhookVerificationError` whose `error`
    says why, with the same codes as Tooken's own check
    (``tooken-core``'s ``webhook::verify``, whose test vectors this SDK
    shares): ``missing_header``, ``invalid_timestamp``,
    ``timestamp_too_old`` (more than `tolerance` seconds before `now`: a
    replay?), ``timestamp_too_new``, ``no_matching_signature``; and
    ``invalid_secret`` for a secret that is not ``whsec_`` + base64,
    ``invalid_body`` for a signed body that is not JSON.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise _fail("invalid_secret", "no webhook secret given")
    keys = [_key(s) for s in secrets]
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not stamp or not stamp.isascii() or not stamp.isdigit():
        raise _fail("invalid_timestamp", "webhook-timestamp is not a number of seconds")
    timestamp = int(stamp)
    current = int(time.time() if now is None else now)
    if current - timestamp > tolerance:
        raise _fail("timestamp_too_old", "webhook-timestamp is too old (a replay, or a clock far off)")
    if timestamp - current > tolerance:
        raise _fail("timestamp_too_new", "webhook-timestamp is too far in the future (a clock far off)")
    payload = body.encode() if isinstance(body, str) else bytes(body)
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
    presented = []
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue  # other versions are not ours to check
        try:
            presented.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    # Every pair is compared, each in constant time, so the time taken
    # does not tell which signature came close.
    matched = False
    for want in expected:
        for got in presented:
            matched |= hmac.compare_digest(want, got)
    if not matched:
        raise _fail("no_matching_signature", "no signature matches")
    try:
        return json.loads(payload)
    except ValueError as e:
        raise _fail("invalid_body", "the webhook body is not JSON") from e
