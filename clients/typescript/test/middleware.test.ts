/**
 * The Express and Hono middleware, in real apps listening on a port, in
 * front of the real server.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import express from "express";
import { Hono } from "hono";
import { Tooken, TookenVerifier } from "@tooken/client";
import type { VerifierOptions } from "@tooken/client";
import * as forExpress from "@tooken/client/express";
import * as forHono from "@tooken/client/hono";
import type { TookenEnv } from "@tooken/client/hono";
import { TestClock, closedPortUrl, countingFetch, listen, serveFetch, startProxy, startServer } from "./support.js";
import type { Listening, Server } from "./support.js";

let server: Server;
let tooken: Tooken;
/** A token that can only verify: what a service should run with. */
let verifyKey: string;

before(async () => {
  server = await startServer();
  tooken = new Tooken({ apiKey: server.apiKey, baseUrl: server.url });
  verifyKey = (await tooken.tokens.create({ name: "invoices-api", scopes: ["tokens:verify"] })).secret;
});

after(async () => {
  await server?.stop();
});

/** The same service in Express and in Hono: `/invoices` (read, write) and `/whoami`. */
const frameworks: Record<string, (verifier: TookenVerifier) => Promise<Listening>> = {
  express: (verifier) => {
    const app = express();
    const { requireToken, getToken } = forExpress;
    app.get("/invoices", requireToken("invoices:read", { verifier }), (req, res) => {
      res.json({ customer: getToken(req).metadata?.customer ?? null, invoices: [] });
    });
    app.post("/invoices", requireToken("invoices:write", { verifier }), (req, res) => {
      res.status(201).json({ created_by: getToken(req).id });
    });
    app.get("/whoami", requireToken(undefined, { verifier }), (req, res) => {
      res.json(getToken(req));
    });
    return listen(app);
  },
  hono: (verifier) => {
    const app = new Hono<TookenEnv>();
    const { requireToken } = forHono;
    app.get("/invoices", requireToken("invoices:read", { verifier }), (c) =>
      c.json({ customer: c.get("tooken").metadata?.customer ?? null, invoices: [] }),
    );
    app.post("/invoices", requireToken("invoices:write", { verifier }), (c) =>
      c.json({ created_by: c.get("tooken").id }, 201),
    );
    app.get("/whoami", requireToken(undefined, { verifier }), (c) => c.json(c.get("tooken")));
    return serveFetch((request, env) => app.fetch(request, env));
  },
};

const UNAUTHORIZED = { error: "unauthorized", message: "Invalid or missing API key" };

async function call(app: Listening, path: string, authorization?: string, method = "GET") {
  const res = await fetch(app.url + path, {
    method,
    headers: authorization === undefined ? {} : { authorization },
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
}

for (const [name, serve] of Object.entries(frameworks)) {
  describe(name, () => {
    let counted: ReturnType<typeof countingFetch>;
    let clock: TestClock;
    let app: Listening;
    let verifier: TookenVerifier;

    const start = async (options: VerifierOptions = {}) => {
      await app?.close();
      counted = countingFetch();
      clock = new TestClock();
      verifier = new TookenVerifier({ verifyKey, baseUrl: server.url, fetch: counted.fetch, clock, ...options });
      app = await serve(verifier);
    };

    after(async () => {
      await app?.close();
    });

    test("a valid token reaches the handler, with its metadata", async () => {
      await start();
      const client = await tooken.tokens.create({
        name: "acme-sync",
        scopes: ["invoices:read"],
        metadata: { customer: "acme" },
        expires_in: 3600,
      });
      const res = await call(app, "/invoices", `Bearer ${client.secret}`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { customer: "acme", invoices: [] });
      const me = await call(app, "/whoami", `Bearer ${client.secret}`);
      assert.deepEqual(
        [me.body?.id, me.body?.name, me.body?.scopes, me.body?.mode],
        [client.id, "acme-sync", ["invoices:read"], "live"],
      );
      assert.equal(counted.calls(), 1, "the second request was answered from the cache");
      assert.equal(verifier.cacheSize, 1);
    });

    test("refusals are Tooken's own 401 bodies and headers, malformed values without a call", async () => {
      await start();
      const missing = await call(app, "/invoices");
      assert.equal(missing.status, 401);
      assert.deepEqual(missing.body, UNAUTHORIZED);
      assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="tooken"');
      const apiKey = `Bearer ${server.apiKey}`;
      const typo = `Bearer ${verifyKey.slice(0, -1)}${verifyKey.endsWith("x") ? "y" : "x"}`;
      for (const authorization of ["Basic abc", "bearer x", "Bearer ", "Bearer garbage", apiKey, typo]) {
        const res = await call(app, "/invoices", authorization);
        assert.equal(res.status, 401, authorization);
        assert.deepEqual(res.body, UNAUTHORIZED);
        assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="tooken", error="invalid_token"');
      }
      assert.equal(counted.calls(), 0, "none of them was worth asking Tooken");
    });

    test("a token without the route's scope gets 403 naming it; invoices:* covers it", async () => {
      await start();
      const reader = await tooken.tokens.create({ name: "reader", scopes: ["invoices:read"] });
      const res = await call(app, "/invoices", `Bearer ${reader.secret}`, "POST");
      assert.equal(res.status, 403);
      assert.deepEqual(res.body, {
        error: "forbidden",
        message: "this token lacks the scope invoices:write required for this operation",
        required_scope: "invoices:write",
      });
      assert.equal(res.headers.get("www-authenticate"), 'Bearer error="insufficient_scope", scope="invoices:write"');
      assert.equal((await call(app, "/invoices", `Bearer ${reader.secret}`)).status, 200, "the route it may use");
      const calls = counted.calls();
      assert.equal((await call(app, "/whoami", `Bearer ${reader.secret}`)).status, 200);
      assert.equal(counted.calls(), calls, "a valid answer serves every route");

      const admin = await tooken.tokens.create({ name: "admin", scopes: ["invoices:*"] });
      const created = await call(app, "/invoices", `Bearer ${admin.secret}`, "POST");
      assert.deepEqual([created.status, created.body], [201, { created_by: admin.id }]);
    });

    test("revoked tokens and rotated-away secrets get 401 at once without a cache", async () => {
      await start({ cacheTtlMs: 0, negativeCacheTtlMs: 0 });
      const t = await tooken.tokens.create({ name: "short-lived", scopes: ["invoices:read"] });
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 200);
      await tooken.tokens.revoke(t.id);
      const revoked = await call(app, "/invoices", `Bearer ${t.secret}`);
      assert.deepEqual([revoked.status, revoked.body], [401, UNAUTHORIZED], "at once, without a cache");
      const rotated = await tooken.tokens.create({ name: "rotated", scopes: ["invoices:read"] });
      await tooken.tokens.rotate(rotated.id);
      assert.equal((await call(app, "/invoices", `Bearer ${rotated.secret}`)).status, 401, "the old secret of a rotation");
    });

    test("a revoked token is accepted from the cache for the TTL, and no longer", async () => {
      await start({ cacheTtlMs: 5_000 });
      const t = await tooken.tokens.create({ name: "cached", scopes: ["invoices:read"] });
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 200);
      await tooken.tokens.revoke(t.id);
      clock.advance(4_999);
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 200, "the documented window");
      clock.advance(1);
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 401);
      assert.equal(counted.calls(), 2);
      // The refusal is cached for the negative TTL.
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 401);
      assert.equal(counted.calls(), 2);
      clock.advance(1_000);
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 401);
      assert.equal(counted.calls(), 3);
    });

    test("evictToken forgets a token's answers at once", async () => {
      await start({ cacheTtlMs: 60_000 });
      const t = await tooken.tokens.create({ name: "evicted", scopes: ["invoices:read"] });
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 200);
      await tooken.tokens.revoke(t.id);
      verifier.evictToken(t.id);
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 401);
    });

    test("a cached answer is never used at or after expires_at", async () => {
      await start({ cacheTtlMs: 3_600_000 });
      const t = await tooken.tokens.create({ name: "expiring", scopes: ["invoices:read"], expires_in: 120 });
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 200);
      clock.advance(119_000);
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 200);
      assert.equal(counted.calls(), 1);
      clock.wall = Date.parse(t.expires_at!);
      // Tooken is asked again (its own clock says the token is still valid).
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 200);
      assert.equal(counted.calls(), 2);
    });

    test("concurrent requests with one token ask Tooken once", async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let calls = 0;
      const gated: typeof fetch = async (input, init) => {
        calls++;
        await gate;
        return fetch(input, init);
      };
      const v = new TookenVerifier({ verifyKey, baseUrl: server.url, fetch: gated });
      const t = await tooken.tokens.create({ name: "popular", scopes: ["invoices:read"] });
      const answers = Array.from({ length: 5 }, () => v.verify(t.secret, { scope: "invoices:read" }));
      await new Promise((resolve) => setTimeout(resolve, 20));
      release();
      for (const answer of await Promise.all(answers)) assert.equal(answer.ok, true);
      assert.equal(calls, 1);
    });

    test("caveat refusals (a server with caveats answering through a proxy): 429 with Retry-After, 403 with the code", async () => {
      const proxy = await startProxy(server.url);
      try {
        await start({ baseUrl: proxy.url, cacheTtlMs: 60_000, negativeCacheTtlMs: 60_000 });
        const t = await tooken.tokens.create({ name: "limited", scopes: ["invoices:read"] });
        const about = { id: t.id, name: t.name, scopes: t.scopes, metadata: null, expires_at: null, mode: "live" };
        const answer = (body: object) => ({ status: 200, body: JSON.stringify(body) });
        const limits = [{ name: "default", limit: 1, remaining: 0, reset_at: new Date(Date.now() + 7000).toISOString() }];
        proxy.answerNext(
          answer({ valid: false, code: "RATE_LIMITED", token: about, rate_limits: limits, retry_after_seconds: 7 }),
          answer({ valid: false, code: "USAGE_EXCEEDED", token: about, remaining_uses: 0 }),
          answer({ valid: false, code: "IP_NOT_ALLOWED", token: { ...about, allowed_ips: ["203.0.113.0/24"] } }),
          answer({ valid: true, code: "VALID", token: about, rate_limits: limits }),
        );
        const limited = await call(app, "/invoices", `Bearer ${t.secret}`);
        assert.equal(limited.status, 429);
        assert.equal(limited.headers.get("retry-after"), "7");
        assert.equal(limited.headers.get("x-tooken-code"), "RATE_LIMITED");
        assert.equal(limited.body?.error, "rate_limited");
        const spent = await call(app, "/invoices", `Bearer ${t.secret}`);
        assert.deepEqual([spent.status, spent.headers.get("x-tooken-code"), spent.body?.error], [403, "USAGE_EXCEEDED", "forbidden"]);
        const elsewhere = await call(app, "/invoices", `Bearer ${t.secret}`);
        assert.deepEqual([elsewhere.status, elsewhere.headers.get("x-tooken-code")], [403, "IP_NOT_ALLOWED"]);
        // Cached for this client address only; a valid answer for a token
        // with rate limits is not cached at all.
        const before = proxy.requests.length;
        assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 403, "the same address: from the cache");
        assert.equal(proxy.requests.length, before);
        await verifier.verify(t.secret, { scope: "invoices:read", clientIp: "192.0.2.1" }).then((r) => assert.equal(r.ok, true));
        await verifier.verify(t.secret, { scope: "invoices:read", clientIp: "192.0.2.1" }).then((r) => assert.equal(r.ok, true));
        assert.equal(proxy.requests.length, before + 2, "another address asks; a rate-limited token is asked about every time");
      } finally {
        await proxy.close();
      }
    });

    test("503 with Retry-After when Tooken cannot be asked; nothing reaches the handler", async () => {
      const logged: string[] = [];
      await start({ baseUrl: await closedPortUrl(), logger: { warn: (m: string) => logged.push(m), error: (m: string) => logged.push(m) } });
      const t = await tooken.tokens.create({ name: "stranded", scopes: ["invoices:read"] });
      const res = await call(app, "/invoices", `Bearer ${t.secret}`);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get("retry-after"), "1");
      assert.deepEqual(res.body, { error: "unavailable", message: "the token cannot be verified right now; try again shortly" });
      assert.equal(logged.length, 1);
      assert.ok(!logged[0]!.includes(t.secret), "the token is never logged");
    });

    test("a verifier credential Tooken refuses is a 503, logged as an error", async () => {
      const errors: string[] = [];
      const revokedKey = await tooken.tokens.create({ name: "old-verifier", scopes: ["tokens:verify"] });
      await tooken.tokens.revoke(revokedKey.id);
      await start({ verifyKey: revokedKey.secret, logger: { warn: () => {}, error: (m: string) => errors.push(m) } });
      const t = await tooken.tokens.create({ name: "client", scopes: ["invoices:read"] });
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 503);
      assert.match(errors[0] ?? "", /refused the verifier credential/);
      // A verifier without tokens:verify: the same.
      const weak = await tooken.tokens.create({ name: "weak-verifier", scopes: ["invoices:read"] });
      await start({ verifyKey: weak.secret, logger: { warn: () => {}, error: (m: string) => errors.push(m) } });
      assert.equal((await call(app, "/invoices", `Bearer ${t.secret}`)).status, 503);
      assert.equal(errors.length, 2);
    });

    test("the default verifier comes from TOOKEN_URL and TOOKEN_VERIFY_KEY", async () => {
      process.env.TOOKEN_URL = server.url;
      process.env.TOOKEN_VERIFY_KEY = verifyKey;
      try {
        const t = await tooken.tokens.create({ name: "env", scopes: ["invoices:read"] });
        const plain =
          name === "express"
            ? await listen(express().get("/x", forExpress.requireToken("invoices:read"), (_req, res) => { res.json({ ok: true }); }))
            : await (async () => {
                const h = new Hono<TookenEnv>().get("/x", forHono.requireToken("invoices:read"), (c) => c.json({ ok: true }));
                return serveFetch((request, env) => h.fetch(request, env));
              })();
        try {
          assert.equal((await call(plain, "/x", `Bearer ${t.secret}`)).status, 200);
        } finally {
          await plain.close();
        }
      } finally {
        delete process.env.TOOKEN_URL;
        delete process.env.TOOKEN_VERIFY_KEY;
      }
    });
  });
}

test("requireToken refuses an invalid scope when the app is built", () => {
  assert.throws(() => forExpress.requireToken("Invoices Read"), /not a valid scope/);
  assert.throws(() => forHono.requireToken("invoices:"), /not a valid scope/);
});

test("getToken on a route without the middleware throws instead of letting the request through", () => {
  assert.throws(() => forExpress.getToken({}), /put requireToken/);
});
