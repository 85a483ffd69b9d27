"""Scope syntax, checked where a route declares the scopes it requires."""

from __future__ import annotations

import re
from typing import Sequence

_SCOPE = re.compile(r"^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$")
MAX_SCOPE_LEN = 64


def required_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """`scopes` as a tuple, each checked: a typo in a route's scope is an
    error when the route is declared, not a 403 on every request."""
    out = []
    for scope in scopes:
        if not isinstance(scope, str) or len(scope) > MAX_SCOPE_LEN or not _SCOPE.match(scope):
            raise ValueError(
                f"{scope!r} is not a scope: lowercase segments separated by ':', "
                "such as 'invoices:read', at most 64 characters"
            )
        out.append(scope)
    return tuple(out)
