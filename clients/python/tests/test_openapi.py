"""Every operation of the server's OpenAPI document has a call in the SDK,
sync and async: a new endpoint without one fails here, named. (The
forward-auth endpoint is for gateways, authenticated by their own key,
not a call an SDK makes: operations needing only `gateway_key` are left
out.)"""

from __future__ import annotations

import inspect
from typing import Any

import tooken
from conftest import Server

# operationId (as utoipa names it: the handler's name) -> the SDK call.
SDK_CALLS = {
    "create_token": "tokens.create",
    "list_tokens": "tokens.list",
    "get_token": "tokens.get",
    "update_token": "tokens.update",
    "rotate_token": "tokens.rotate",
    "revoke_token": "tokens.revoke",
    "token_usage": "tokens.usage",
    "verify_token": "tokens.verify",
    "introspect": "tokens.introspect",
    "list_events": "audit_log.list",
    "export_events": "audit_log.export",
    "get_settings": "settings.get",
    "update_settings": "settings.update",
    "get_authz_rules": "authz.rules.get",
    "put_authz_rules": "authz.rules.put",
    "whoami": "whoami",
    "healthz": "health",
    "readyz": "ready",
    "render": "metrics",
    "openapi_json": "openapi",
}


def _resolve(client: Any, dotted: str) -> Any:
    obj = client
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _for_gateways(op: dict[str, Any]) -> bool:
    return op.get("security") == [{"gateway_key": []}]


def test_every_operation_has_a_call(server: Server) -> None:
    with tooken.Tooken(server.api_key, base_url=server.url) as client:
        doc = client.openapi()
    operations = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete") and not _for_gateways(op):
                operations.append((op.get("operationId") or f"{method.upper()} {path}", method.upper(), path))
    missing = [f"{op_id} ({method} {path})" for op_id, method, path in operations if op_id not in SDK_CALLS]
    assert not missing, "operations without an SDK call: " + ", ".join(missing)
    sync = tooken.Tooken("tok_live_k")
    asyn = tooken.AsyncTooken("tok_live_k")
    for op_id, _, _ in operations:
        for c in (sync, asyn):
            call = _resolve(c, SDK_CALLS[op_id])
            assert callable(call), f"{op_id}: {SDK_CALLS[op_id]}"
    sync.close()


def test_the_sdk_sends_what_the_document_says(server: Server) -> None:
    """Each operation function asks the method and path the document names."""
    from tooken import _operations as ops

    with tooken.Tooken(server.api_key, base_url=server.url) as client:
        doc = client.openapi()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or _for_gateways(op):
                continue
            fn = getattr(ops, op["operationId"])
            kwargs = {
                name: ("tk_x" if name == "token_id" else tooken.NOT_GIVEN)
                for name, p in inspect.signature(fn).parameters.items()
                if p.default is inspect.Parameter.empty
            }
            built = fn(**kwargs)
            assert built.method == method.upper(), op["operationId"]
            assert built.path == path.replace("{id}", "tk_x"), op["operationId"]
