"""Tooken for Django REST framework: a permission class.

::

    from rest_framework.response import Response
    from rest_framework.views import APIView
    from tooken.drf import TookenPermission

    class Invoices(APIView):
        permission_classes = [TookenPermission.require("invoices:read")]

        def get(self, request):
            token = request.tooken        # the VerifiedToken
            return Response({"customer": (token.metadata or {}).get("customer")})

`TookenPermission` alone requires a valid token with no particular scope;
``TookenPermission.require(*scopes)`` a subclass requiring those scopes; a
view may also list them in ``tooken_scopes``. Refusals render as Tooken's
own (same status, body and ``WWW-Authenticate``/``Retry-After`` headers)
through DRF's exception handler. Configured like `tooken.django`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission

from . import django as tooken_django
from ._scopes import required_scopes
from .verifier import Rejection

__all__ = ["TookenPermission", "TookenRejected"]


class TookenRejected(APIException):  # type: ignore[misc]
    """A `Rejection`, as DRF renders errors: the body is Tooken's, the
    ``WWW-Authenticate`` and ``Retry-After`` headers too."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(detail=rejection.body)
        self.status_code = rejection.status
        self.rejection = rejection
        self.auth_header = rejection.headers.get("WWW-Authenticate")
        retry = rejection.headers.get("Retry-After")
        self.wait = int(retry) if retry else None


class TookenPermission(BasePermission):  # type: ignore[misc]
    """Requires a valid Tooken token holding `scopes` (and the view's
    ``tooken_scopes``, if any). The token is then ``request.tooken``."""

    scopes: ClassVar[tuple[str, ...]] = ()
    cost: ClassVar[int | None] = None

    @classmethod
    def require(cls, *scopes: str, cost: int | None = None) -> type[TookenPermission]:
        """A permission class requiring `scopes`."""
        wanted = required_scopes(scopes)
        name = "TookenPermission(" + ", ".join(wanted) + ")"
        return type(name, (cls,), {"scopes": cls.scopes + wanted, "cost": cost})

    def has_permission(self, request: Any, view: Any) -> bool:
        scopes = self.scopes + required_scopes(getattr(view, "tooken_scopes", ()))
        try:
            token = tooken_django.authenticate(request._request, scopes, cost=self.cost)
        except Rejection as r:
            raise TookenRejected(r) from None
        request.tooken = token
        return True
