/**
 * The SDK keeps in step with the API: every operation the server's
 * OpenAPI document lists has a method here, and every method listed here
 * is an operation the server has. (The forward-auth endpoint is for
 * gateways, authenticated by their own key: not a call an SDK makes, so
 * operations needing only `gateway_key` are left out.)
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Tooken } from "@tooken/client";
import { startServer } from "./support.js";
import type { Server } from "./support.js";

/** `METHOD /path` of each operation → the SDK call that makes it. */
const OPERATIONS: Record<string, string> = {
  "POST /v1/tokens": "tokens.create",
  "GET /v1/tokens": "tokens.list",
  "GET /v1/tokens/{id}": "tokens.get",
  "PATCH /v1/tokens/{id}": "tokens.update",
  "POST /v1/tokens/{id}/rotate": "tokens.rotate",
  "POST /v1/tokens/{id}/revoke": "tokens.revoke",
  "GET /v1/tokens/{id}/usage": "tokens.usage",
  "POST /v1/tokens/verify": "tokens.verify",
  "POST /v1/oauth/introspect": "tokens.introspect",
  "GET /v1/audit-log": "auditLog.list",
  "GET /v1/audit-log/export": "auditLog.export",
  "GET /v1/settings": "settings.get",
  "PATCH /v1/settings": "settings.update",
  "GET /v1/authz/rules": "authz.rules.get",
  "PUT /v1/authz/rules": "authz.rules.put",
  "GET /v1/whoami": "whoami",
  "GET /healthz": "health",
  "GET /readyz": "ready",
  "GET /metrics": "metrics",
  "GET /v1/openapi.json": "openapi",
};

let server: Server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

test("every operation in /v1/openapi.json has a method in the SDK", async () => {
  const tooken = new Tooken({ apiKey: server.apiKey, baseUrl: server.url });
  const doc = (await tooken.openapi()) as { paths: Record<string, Record<string, { security?: unknown }>> };
  const methods = ["get", "put", "post", "patch", "delete", "head", "options", "trace"];
  const forGateways = (op: { security?: unknown }) =>
    JSON.stringify(op.security) === JSON.stringify([{ gateway_key: [] }]);
  const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m, op]) => methods.includes(m) && !forGateways(op))
      .map(([m]) => `${m.toUpperCase()} ${path}`),
  );
  assert.ok(operations.length > 10);

  const missing = operations.filter((op) => OPERATIONS[op] === undefined);
  assert.deepEqual(missing, [], `operations without an SDK method: ${missing.join(", ")}`);
  const gone = Object.keys(OPERATIONS).filter((op) => !operations.includes(op));
  assert.deepEqual(gone, [], `SDK methods for operations the server no longer has: ${gone.join(", ")}`);

  for (const [op, call] of Object.entries(OPERATIONS)) {
    let target: unknown = tooken;
    for (const part of call.split(".")) target = (target as Record<string, unknown>)[part];
    assert.equal(typeof target, "function", `${op} → ${call} is not a method`);
  }
});
