"""A small Django app: plain views with the decorator, DRF views with the
permission class."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tooken.django import require_token
from tooken.drf import TookenPermission


@require_token("invoices:read")
def list_invoices(request: HttpRequest) -> JsonResponse:
    token = request.tooken  # type: ignore[attr-defined]
    return JsonResponse({"token_id": token.id, "customer": (token.metadata or {}).get("customer")})


@require_token("invoices:read")
async def list_invoices_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"token_id": request.tooken.id})  # type: ignore[attr-defined]


class Invoices(APIView):
    permission_classes = [TookenPermission.require("invoices:read")]

    def get(self, request: Request) -> Response:
        return Response({"token_id": request.tooken.id, "scopes": request.tooken.scopes})


class Reports(APIView):
    permission_classes = [TookenPermission]
    tooken_scopes = ("reports:read",)

    def get(self, request: Request, year: int) -> Response:
        return Response({"year": year, "token_id": request.tooken.id})


urlpatterns = [
    path("invoices", list_invoices),
    path("async/invoices", list_invoices_async),
    path("api/invoices", Invoices.as_view()),
    path("api/reports/<int:year>", Reports.as_view()),
]
