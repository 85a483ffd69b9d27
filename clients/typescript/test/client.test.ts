/** Every call of the client, against the real server. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { InvalidRequestError, Tooken, VERSION, hintOf, parseCredential } from "@tooken/client";
import type { AuditEvent, Token } from "@tooken/client";
import { readFileSync } from "node:fs";
import { startProxy, startServer } from "./support.js";
import type { Server } from "./support.js";

let server: Server;
let tooken: Tooken;

before(async () => {
  server = await startServer();
  tooken = new Tooken({ apiKey: server.apiKey, baseUrl: server.url });
});

after(async () => {
  await server?.stop();
});

describe("tokens", () => {
  test("create returns the token and its secret, once", async () => {
    const issued = await tooken.tokens.create({
      name: "billing-sync",
      description: "reads invoices",
      scopes: ["invoices:read"],
      metadata: { customer: "acme" },
      expires_in: 3600,
    });
    assert.match(issued.id, /^tk_/);
    assert.equal(issued.name, "billing-sync");
    assert.equal(issued.description, "reads invoices");
    assert.deepEqual(issued.scopes, ["invoices:read"]);
    assert.deepEqual(issued.metadata, { customer: "acme" });
    assert.equal(issued.status, "active");
    assert.equal(issued.mode, "live");
    assert.ok(issued.expires_at !== null);
    const shape = parseCredential(issued.secret);
    assert.deepEqual(shape, { prefix: "tkn", mode: "live", kind: "token" });
    assert.equal(issued.hint, hintOf(issued.secret));
    const fetched = await tooken.tokens.get(issued.id);
    assert.equal(fetched.id, issued.id);
    assert.equal("secret" in fetched, false, "the secret is shown only at creation");
  });

  test("expires_at takes a Date", async () => {
    const at = new Date(Date.now() + 86_400_000);
    at.setUTCMilliseconds(0);
    const issued = await tooken.tokens.create({ name: "dated", expires_at: at });
    assert.equal(Date.parse(issued.expires_at!), at.getTime());
  });

  test("list follows the cursor page by page, and await gives the first page", async () => {
    const names: string[] = [];
    for (let i = 0; i < 5; i++) {
      const t = await tooken.tokens.create({ name: `paged-${i}`, scopes: ["paging:test"] });
      names.push(t.name);
    }
    const seen: string[] = [];
    for await (const token of tooken.tokens.list({ limit: 2, scope: "paging:test" })) {
      seen.push(token.name);
    }
    assert.deepEqual(seen, [...names].reverse(), "newest first, every page");

    const first = await tooken.tokens.list({ limit: 2, scope: "paging:test" });
    assert.equal(first.data.length, 2);
    assert.equal(first.has_more, true);
    assert.equal(first.next_cursor, first.data[1]!.id);

    const pages = [];
    for await (const page of tooken.tokens.list({ limit: 2, scope: "paging:test" }).pages()) pages.push(page.data.length);
    assert.deepEqual(pages, [2, 2, 1]);

    const rest = await tooken.tokens.list({ limit: 2, scope: "paging:test", starting_after: first.next_cursor! }).toArray();
    assert.deepEqual(rest.map((t) => t.name), seen.slice(2));
    assert.deepEqual((await tooken.tokens.list({ name: "paged-3" }).toArray()).map((t) => t.name), ["paged-3"]);
    assert.equal((await tooken.tokens.list({ scope: "paging:test" }).toArray(3)).length, 3);
  });

  test("update changes what is given and clears what is null", async () => {
    const t = await tooken.tokens.create({ name: "to-update", description: "old", metadata: { a: 1 }, expires_in: 60 });
    const later = new Date(Date.now() + 7200_000);
    later.setUTCMilliseconds(0);
    const updated = await tooken.tokens.update(t.id, {
      name: "updated",
      description: null,
      scopes: ["reports:read"],
      expires_at: later,
    });
    assert.equal(updated.name, "updated");
    assert.equal(updated.description, null);
    assert.deepEqual(updated.metadata, { a: 1 }, "absent fields are left alone");
    assert.deepEqual(updated.scopes, ["reports:read"]);
    assert.equal(Date.parse(updated.expires_at!), later.getTime());
    const cleared = await tooken.tokens.update(t.id, { metadata: null, expires_at: null });
    assert.equal(cleared.metadata, null);
    assert.equal(cleared.expires_at, null);
  });

  test("rotate gives a new secret; the old one works during the grace period only", async () => {
    const t = await tooken.tokens.create({ name: "to-rotate", scopes: ["invoices:read"] });
    const graceful = await tooken.tokens.rotate(t.id, { grace_period_seconds: 600 });
    assert.equal(graceful.id, t.id);
    assert.notEqual(graceful.secret, t.secret);
    assert.equal((await tooken.tokens.verify({ token: t.secret })).code, "VALID");
    assert.equal((await tooken.tokens.verify({ token: graceful.secret })).code, "VALID");
    const abrupt = await tooken.tokens.rotate(graceful.id);
    assert.notEqual((await tooken.tokens.verify({ token: graceful.secret })).code, "VALID");
    assert.equal((await tooken.tokens.verify({ token: abrupt.secret })).code, "VALID");
  });

  test("revoke is idempotent and records the reason", async () => {
    const t = await tooken.tokens.create({ name: "to-revoke" });
    const revoked = await tooken.tokens.revoke(t.id, { reason: "left the company" });
    assert.equal(revoked.status, "revoked");
    assert.ok(revoked.revoked_at);
    const again = await tooken.tokens.revoke(t.id);
    assert.equal(again.revoked_at, revoked.revoked_at);
    const events = await tooken.auditLog.list({ action: "token.revoked", target: t.id }).toArray();
    assert.equal(events.length, 1);
    assert.equal(JSON.stringify(events[0]!.details).includes("left the company"), true);
  });

  test("verify answers every code with the token when it exists", async () => {
    const t = await tooken.tokens.create({ name: "verified", scopes: ["invoices:*"], metadata: { customer: "acme" } });
    const ok = await tooken.tokens.verify({ token: t.secret, scopes: ["invoices:read"] });
    assert.equal(ok.valid, true);
    assert.equal(ok.code, "VALID");
    assert.equal(ok.token?.id, t.id);
    assert.deepEqual(ok.token?.metadata, { customer: "acme" });
    assert.deepEqual(ok.token?.scopes, ["invoices:*"]);

    const scope = await tooken.tokens.verify({ token: t.secret, scopes: ["reports:read"] });
    assert.deepEqual([scope.valid, scope.code, scope.token?.id], [false, "INSUFFICIENT_SCOPE", t.id]);

    const malformed = await tooken.tokens.verify({ token: "not-a-token" });
    assert.deepEqual([malformed.valid, malformed.code, malformed.token], [false, "MALFORMED", undefined]);

    const other = await tooken.tokens.create({ name: "gone" });
    await tooken.tokens.revoke(other.id);
    const revoked = await tooken.tokens.verify({ token: other.secret });
    assert.deepEqual([revoked.valid, revoked.code, revoked.token?.id], [false, "REVOKED", other.id]);

    // Well-formed (the checksum holds), but never issued.
    const unknown = "tkn_live_000000000000000000000000000000";
    const candidate = unknown + checksum(unknown);
    assert.notEqual(parseCredential(candidate), null);
    const notFound = await tooken.tokens.verify({ token: candidate });
    assert.deepEqual([notFound.valid, notFound.code], [false, "NOT_FOUND"]);
  });

  test("introspect answers RFC 7662", async () => {
    const t = await tooken.tokens.create({ name: "introspected", scopes: ["a:b", "c:d"], expires_in: 60 });
    const active = await tooken.tokens.introspect({ token: t.secret });
    assert.equal(active.active, true);
    assert.equal(active.scope, "a:b c:d");
    assert.equal(active.sub, t.id);
    assert.equal(active.token_type, "bearer");
    assert.equal(typeof active.exp, "number");
    assert.deepEqual(await tooken.tokens.introspect({ token: "garbage", token_type_hint: "access_token" }), { active: false });
  });

  test("usage lists days of use", async () => {
    const t = await tooken.tokens.create({ name: "used" });
    const usage = await tooken.tokens.usage(t.id, { days: 7 });
    assert.equal(usage.token_id, t.id);
    assert.ok(Array.isArray(usage.data));
  });
});

describe("audit log", () => {
  test("list filters and follows the cursor; export streams the whole chain", async () => {
    const t = await tooken.tokens.create({ name: "audited" });
    const created = await tooken.auditLog.list({ action: "token.created", target: t.id });
    assert.equal(created.data.length, 1);
    assert.equal(created.data[0]!.actor.kind, "api_key");

    const all: AuditEvent[] = [];
    for await (const e of tooken.auditLog.list({ limit: 3 })) all.push(e);
    assert.ok(all.length > 3, "more than one page");
    assert.deepEqual(
      all.map((e) => e.seq),
      [...all.map((e) => e.seq)].sort((a, b) => b - a),
      "newest first",
    );

    const exported: AuditEvent[] = [];
    for await (const e of tooken.auditLog.export()) exported.push(e);
    assert.equal(exported.length, all.length);
    assert.deepEqual(exported.map((e) => e.id), all.map((e) => e.id).reverse(), "chain order");
    for (let i = 1; i < exported.length; i++) assert.equal(exported[i]!.prev_hash, exported[i - 1]!.hash);

    const since = await tooken.auditLog.export({ action: "token.created", since: new Date(Date.parse(t.created_at) - 1000) });
    const ids: string[] = [];
    for await (const e of since) ids.push(e.target?.id ?? "");
    assert.ok(ids.includes(t.id));

    const raw = await tooken.auditLog.exportStream();
    const text = await new Response(raw).text();
    assert.equal(text.trim().split("\n").length, exported.length);
  });
});

describe("settings", () => {
  test("get and update the workspace policy", async () => {
    const before = await tooken.settings.get();
    assert.equal(before.token_prefix, "tkn");
    const changed = await tooken.settings.update({ token_prefix: "acme", max_token_ttl_seconds: 86_400 });
    assert.equal(changed.token_prefix, "acme");
    assert.equal(changed.max_token_ttl_seconds, 86_400);
    const t = await tooken.tokens.create({ name: "prefixed", expires_in: 60 });
    assert.ok(t.secret.startsWith("acme_live_"));
    const restored = await tooken.settings.update({ token_prefix: "tkn", max_token_ttl_seconds: null });
    assert.equal(restored.max_token_ttl_seconds, null);
    assert.deepEqual(await tooken.settings.get(), before);
  });
});

describe("authz rules", () => {
  test("replaced, read back with warnings, and validated", async () => {
    const answer = await tooken.authz.rules.put([
      { methods: ["get"], path: "/invoices/**", scopes: ["invoices:read"] },
      { methods: "*", path: "/health", anonymous: true },
      { methods: ["GET"], path: "/invoices/42", scopes: ["x"], cost: 3 },
    ]);
    assert.deepEqual(answer.rules[0], { methods: ["GET"], path: "/invoices/**", scopes: ["invoices:read"] });
    assert.equal(answer.rules[1]?.anonymous, true);
    assert.equal(answer.rules[2]?.cost, 3);
    assert.deepEqual(
      answer.warnings.map((w) => [w.field, w.shadowed_by]),
      [["rules[2]", [0]]],
    );
    assert.deepEqual(await tooken.authz.rules.get(), answer);
    await assert.rejects(tooken.authz.rules.put([{ methods: ["FETCH"], path: "/x" }]), (e: unknown) => {
      assert.ok(e instanceof InvalidRequestError);
      assert.equal(e.field, "rules[0].methods[0]");
      return true;
    });
    assert.deepEqual((await tooken.authz.rules.get()).rules, answer.rules, "nothing changed");
    assert.deepEqual((await tooken.authz.rules.put([])).rules, []);
  });
});

describe("system", () => {
  test("whoami, health, readiness, metrics and the OpenAPI document", async () => {
    const me = await tooken.whoami();
    assert.equal(me.kind, "api_key");
    assert.equal(me.mode, "live");
    assert.equal(me.workspace.name, "default");
    assert.ok(me.scopes.includes("tokens:write"));
    assert.equal(await tooken.health(), true);
    assert.equal(await tooken.ready(), true);
    assert.match(await tooken.metrics(), /tooken_/);
    const doc = await tooken.openapi();
    assert.equal(typeof doc.paths, "object");
  });

  test("a token calls the API within its scopes", async () => {
    const reader = await tooken.tokens.create({ name: "reader", scopes: ["tokens:read"] });
    const asToken = new Tooken({ apiKey: reader.secret, baseUrl: server.url });
    const me = await asToken.whoami();
    assert.deepEqual([me.kind, me.id, me.scopes], ["token", reader.id, ["tokens:read"]]);
    const page: { data: Token[] } = await asToken.tokens.list({ limit: 1 });
    assert.equal(page.data.length, 1);
  });
});

describe("configuration", () => {
  test("TOOKEN_API_KEY and TOOKEN_URL are read when not given", async () => {
    const saved = { key: process.env.TOOKEN_API_KEY, url: process.env.TOOKEN_URL };
    process.env.TOOKEN_API_KEY = server.apiKey;
    process.env.TOOKEN_URL = `${server.url}/`;
    try {
      const fromEnv = new Tooken();
      assert.equal(fromEnv.baseUrl, server.url, "a trailing slash is dropped");
      assert.equal((await fromEnv.whoami()).kind, "api_key");
      delete process.env.TOOKEN_URL;
      assert.equal(new Tooken().baseUrl, "http://127.0.0.1:7878");
    } finally {
      restore("TOOKEN_API_KEY", saved.key);
      restore("TOOKEN_URL", saved.url);
    }
  });

  test("requests name the SDK and its version; unknown answer fields pass through", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal(VERSION, pkg.version);
    const proxy = await startProxy(server.url);
    try {
      const viaProxy = new Tooken({ apiKey: server.apiKey, baseUrl: proxy.url });
      await viaProxy.whoami();
      assert.equal(proxy.requests[0]!.userAgent, `tooken-typescript/${VERSION}`);
      proxy.answerNext({
        status: 200,
        body: JSON.stringify({ kind: "api_key", id: "key_1", name: "k", hint: "tok_live_…abcd", workspace: { id: "ws", name: "w" }, mode: "live", scopes: [], added_later: { x: 1 } }),
      });
      const me = (await viaProxy.whoami()) as unknown as Record<string, unknown>;
      assert.deepEqual(me.added_later, { x: 1 });
    } finally {
      await proxy.close();
    }
  });
});

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** The six base62 characters of a credential's CRC32 checksum. */
function checksum(head: string): string {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  let crc = 0xffffffff;
  for (const byte of Buffer.from(head)) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  crc = (crc ^ 0xffffffff) >>> 0;
  let out = "";
  for (let i = 0; i < 6; i++) {
    out = alphabet[crc % 62] + out;
    crc = Math.floor(crc / 62);
  }
  return out;
}
