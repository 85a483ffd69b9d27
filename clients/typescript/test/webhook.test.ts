/** Webhook signatures (the Standard Webhooks convention). */
import assert from "node:assert/strict";
import { test } from "node:test";
import express from "express";
import { Hono } from "hono";
import { readFileSync } from "node:fs";
import { ConfigurationError, WebhookVerificationError, signWebhook, verifyWebhook } from "@tooken/client";
import { listen, serveFetch } from "./support.js";

interface Vectors {
  tolerance_seconds: number;
  sign: { source: string; secret: string; id: string; timestamp: number; body: string; signature: string }[];
  verify: {
    name: string;
    secret: string;
    headers: Record<string, string>;
    body: string;
    now: number;
    valid: boolean;
    error?: string;
  }[];
}

/** The cases every receiver (tooken-core, the client, both SDKs) must agree on. */
const VECTORS = JSON.parse(
  readFileSync(new URL("../../../crates/tooken-core/testdata/webhook-vectors.json", import.meta.url), "utf8"),
) as Vectors;

test("signing agrees with the shared vectors", async () => {
  assert.ok(VECTORS.sign.length >= 2);
  for (const c of VECTORS.sign) {
    assert.equal(await signWebhook(c.secret, c.id, c.timestamp, c.body), c.signature, c.source);
  }
});

test("verification agrees with the shared vectors, reason by reason", async () => {
  assert.ok(VECTORS.verify.length >= 20);
  for (const c of VECTORS.verify) {
    const run = verifyWebhook(c.secret, c.headers, c.body, {
      now: c.now * 1000,
      toleranceSeconds: VECTORS.tolerance_seconds,
    });
    if (c.valid) {
      assert.deepEqual(await run, JSON.parse(c.body), c.name);
    } else {
      const e = await run.then(
        () => assert.fail(`${c.name}: accepted`),
        (e: unknown) => e,
      );
      assert.ok(e instanceof WebhookVerificationError, `${c.name}: ${String(e)}`);
      assert.equal(e.reason, c.error, c.name);
    }
  }
});

// The example of the Standard Webhooks specification.
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP = 1614265330;
const BODY = '{"test": 2432232314}';
const SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const AT = TIMESTAMP * 1000;

function headers(signature = SIGNATURE, timestamp = String(TIMESTAMP), id = ID): Record<string, string> {
  return { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature };
}

test("the specification's example verifies, from a string, bytes or Headers", async () => {
  assert.equal(await signWebhook(SECRET, ID, TIMESTAMP, BODY), SIGNATURE);
  assert.deepEqual(await verifyWebhook(SECRET, headers(), BODY, { now: AT }), { test: 2432232314 });
  assert.deepEqual(await verifyWebhook(SECRET, new Headers(headers()), new TextEncoder().encode(BODY), { now: AT }), {
    test: 2432232314,
  });
  const buffer = Buffer.from(BODY);
  assert.ok(await verifyWebhook(SECRET, headers(), buffer, { now: AT }));
  const upper = Object.fromEntries(Object.entries(headers()).map(([k, v]) => [k.toUpperCase(), v]));
  assert.ok(await verifyWebhook(SECRET, upper, BODY, { now: AT }), "header names in any case");
});

test("any one valid signature among several is enough", async () => {
  const several = `v1,${Buffer.alloc(32).toString("base64")} v2,whatever ${SIGNATURE}`;
  assert.ok(await verifyWebhook(SECRET, headers(several), BODY, { now: AT }));
});

test("during a secret rotation both secrets are accepted", async () => {
  const next = `whsec_${Buffer.alloc(24, 7).toString("base64")}`;
  const signedWithNext = await signWebhook(next, ID, TIMESTAMP, BODY);
  assert.ok(await verifyWebhook([SECRET, next], headers(signedWithNext), BODY, { now: AT }));
  await assert.rejects(verifyWebhook(SECRET, headers(signedWithNext), BODY, { now: AT }), WebhookVerificationError);
});

test("a changed body, id, timestamp or secret is refused", async () => {
  const refused = async (promise: Promise<unknown>, reason: string) => {
    const e = await promise.then(
      () => assert.fail("accepted"),
      (e: unknown) => e,
    );
    assert.ok(e instanceof WebhookVerificationError, String(e));
    assert.equal(e.error, "invalid_webhook");
    assert.equal(e.reason, reason);
  };
  const none = "no_matching_signature";
  await refused(verifyWebhook(SECRET, headers(), '{"test": 2432232315}', { now: AT }), none);
  await refused(verifyWebhook(SECRET, headers(SIGNATURE, String(TIMESTAMP), "msg_other"), BODY, { now: AT }), none);
  await refused(verifyWebhook(SECRET, headers(SIGNATURE, String(TIMESTAMP + 1)), BODY, { now: AT }), none);
  const other = `whsec_${Buffer.alloc(24, 1).toString("base64")}`;
  await refused(verifyWebhook(other, headers(), BODY, { now: AT }), none);
  await refused(verifyWebhook(SECRET, headers("v1,not base64!"), BODY, { now: AT }), none);
  await refused(verifyWebhook(SECRET, headers(SIGNATURE.replace("v1,", "v2,")), BODY, { now: AT }), none);
  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    const h = headers();
    delete h[name];
    await refused(verifyWebhook(SECRET, h, BODY, { now: AT }), "missing_header");
  }
  for (const bad of ["soon", "", "-1", "99999999999999999999"]) {
    await refused(verifyWebhook(SECRET, headers(SIGNATURE, bad), BODY, { now: AT }), "invalid_timestamp");
  }
});

test("the timestamp must be within the tolerance, either way", async () => {
  const late = AT + 301_000;
  await assert.rejects(verifyWebhook(SECRET, headers(), BODY, { now: late }), { reason: "timestamp_too_old" });
  assert.ok(await verifyWebhook(SECRET, headers(), BODY, { now: late, toleranceSeconds: 600 }));
  assert.ok(await verifyWebhook(SECRET, headers(), BODY, { now: AT + 300_000 }), "at the edge");
  await assert.rejects(verifyWebhook(SECRET, headers(), BODY, { now: AT - 301_000 }), { reason: "timestamp_too_new" });
  await assert.rejects(verifyWebhook(SECRET, headers(), BODY), { reason: "timestamp_too_old" }, "the clock by default");
});

test("a parsed body or a secret that is not base64 is a usage error", async () => {
  await assert.rejects(
    verifyWebhook(SECRET, headers(), { test: 2432232314 } as unknown as string, { now: AT }),
    /raw request body/,
  );
  await assert.rejects(verifyWebhook("whsec_***", headers(), BODY, { now: AT }), ConfigurationError);
  const short = `whsec_${Buffer.alloc(23).toString("base64")}`;
  await assert.rejects(verifyWebhook(short, headers(), BODY, { now: AT }), ConfigurationError);
});

test("an Express and a Hono receiver verify what arrives over HTTP", async () => {
  const received: unknown[] = [];
  const app = express();
  app.post("/hooks", express.raw({ type: "application/json" }), (req, res) => {
    verifyWebhook(SECRET, req.headers, req.body as Buffer).then(
      (event) => {
        received.push(event);
        res.status(204).end();
      },
      () => res.status(400).json({ error: "invalid_request", message: "bad signature" }),
    );
  });
  const hono = new Hono();
  hono.post("/hooks", async (c) => {
    try {
      received.push(await verifyWebhook(SECRET, c.req.raw.headers, await c.req.text()));
      return c.body(null, 204);
    } catch {
      return c.json({ error: "invalid_request", message: "bad signature" }, 400);
    }
  });
  const receivers = [await listen(app), await serveFetch((request, env) => hono.fetch(request, env))];
  try {
    for (const receiver of receivers) {
      const now = Math.floor(Date.now() / 1000);
      const body = JSON.stringify({ type: "token.revoked", timestamp: new Date().toISOString(), data: { id: "tk_1" } });
      const signature = await signWebhook(SECRET, "msg_1", now, body);
      const post = (sig: string) =>
        fetch(`${receiver.url}/hooks`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers(sig, String(now), "msg_1") },
          body,
        });
      assert.equal((await post(signature)).status, 204);
      assert.equal((await post(signature.slice(0, -4) + "AAA=")).status, 400);
    }
    assert.equal(received.length, 2);
    assert.deepEqual((received[0] as { data: unknown }).data, { id: "tk_1" });
  } finally {
    for (const r of receivers) await r.close();
  }
});
