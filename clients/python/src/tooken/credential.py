"""Tooken's credential format, checked offline.

``<prefix>_<mode>_<body>``: a prefix of 2–12 lowercase letters or digits
(``tok`` for API keys, ``tkn`` or the workspace's own for tokens), ``live``
or ``test``, then 30 random base62 characters and 6 that encode the CRC32
of everything before them. A typo or a random string fails the check
without any call to Tooken.
"""

from __future__ import annotations

import hashlib
import re
import zlib

__all__ = ["is_well_formed", "is_token", "hint", "secret_hash"]

API_KEY_PREFIX = "tok"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHAPE = re.compile(r"^([a-z0-9]{2,12})_(live|test)_([0-9A-Za-z]{36})$")


def _checksum(crc: int) -> str:
    out = []
    for _ in range(6):
        out.append(_BASE62[crc % 62])
        crc //= 62
    return "".join(reversed(out))


def is_well_formed(candidate: str) -> bool:
    """Is `candidate` a Tooken credential (an API key or a token) by its
    shape and checksum?"""
    if not isinstance(candidate, str) or not candidate.isascii():
        return False
    if not _SHAPE.match(candidate):
        return False
    head, check = candidate[:-6], candidate[-6:]
    return _checksum(zlib.crc32(head.encode())) == check


def is_token(candidate: str) -> bool:
    """Is `candidate` a well-formed token (not an API key)?"""
    return is_well_formed(candidate) and not candidate.startswith(API_KEY_PREFIX + "_")


def hint(candidate: str) -> str:
    """The display hint of a well-formed credential (``tkn_live_…9fQz``):
    what may be logged instead of the secret."""
    m = _SHAPE.match(candidate)
    if not m:
        return "<malformed>"
    return f"{m.group(1)}_{m.group(2)}_…{candidate[-4:]}"


def secret_hash(candidate: str) -> str:
    """Hex SHA-256 of a secret: what caches are keyed by, never the secret."""
    return hashlib.sha256(candidate.encode()).hexdigest()
