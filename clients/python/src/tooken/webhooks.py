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


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise WebhookVerificationError("the webhook secret is empty")
    raw = secret[len(_PREFIX) :] if secret.startswith(_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as e:
        raise WebhookVerificationError("the webhook secret is not whsec_ followed by base64") from e


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; HTTP header names are not.
        for k, v in headers.items():
            if k.lower() == name:
                value = v
                break
    if value is None or not str(value).strip():
        raise WebhookVerificationError(f"the {name} header is missing")
    return str(value).strip()


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
    exactly as received. Raises `WebhookVerificationError` when a header
    is missing, the timestamp is more than `tolerance` seconds from `now`
    (either way: a replay, or a clock far off), or no signature matches.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise WebhookVerificationError("no webhook secret given")
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as e:
        raise WebhookVerificationError("the webhook-timestamp header is not a number") from e
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("the webhook timestamp is too far from now (a replay, or a clock far off)")
    presented = []
    for part in signatures.split():
        version, _, value = part.partition(",")
        if version == "v1" and value:
            presented.append(value)
    if not presented:
        raise WebhookVerificationError("the webhook-signature header has no v1 signature")
    expected = [sign(s, msg_id, timestamp, body)[3:] for s in secrets]
    # Every pair is compared, in constant time each, so the time taken
    # does not tell which signature came close.
    matched = False
    for want in expected:
        for got in presented:
            matched |= hmac.compare_digest(want.encode(), got.encode())
    if not matched:
        raise WebhookVerificationError("no webhook signature matches")
    try:
        return json.loads(body)
    except ValueError as e:
        raise WebhookVerificationError("the webhook body is not JSON") from e
