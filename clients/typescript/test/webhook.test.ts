/** Webhook signatures (the Standard Webhooks convention). */
import assert from "node:assert/strict";
import { test } from "node:test";
import express from "express";
import { Hono } from "hono";
import { ConfigurationError, WebhookVerificationError, signWebhook, verifyWebhook } from "@tooken/client";
import { listen, serveFetch } from "./support.js";

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
  const refused = async (promise: Promise<unknown>, message: RegExp) => {
    const e = await promise.then(
      () => assert.fail("accepted"),
      (e: unknown) => e,
    );
    assert.ok(e instanceof WebhookVerificationError, String(e));
    assert.equal(e.error, "invalid_webhook");
    assert.match(e.message, message);
  };
  await refused(verifyWebhook(SECRET, headers(), '{"test": 2432232315}', { now: AT }), /no valid signature/);
  await refused(verifyWebhook(SECRET, headers(SIGNATURE, String(TIMESTAMP), "msg_other"), BODY, { now: AT }), /no valid signature/);
  await refused(verifyWebhook(SECRET, headers(SIGNATURE, String(TIMESTAMP + 1)), BODY, { now: AT }), /no valid signature/);
  const other = `whsec_${Buffer.alloc(24, 1).toString("base64")}`;
  await refused(verifyWebhook(other, headers(), BODY, { now: AT }), /no valid signature/);
  await refused(verifyWebhook(SECRET, headers("v1,not base64!"), BODY, { now: AT }), /no valid signature/);
  await refused(verifyWebhook(SECRET, headers(SIGNATURE.replace("v1,", "v2,")), BODY, { now: AT }), /no valid signature/);
});

test("missing headers and a bad timestamp are refused", async () => {
  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    const h = headers();
    delete h[name];
    await assert.rejects(verifyWebhook(SECRET, h, BODY, { now: AT }), /missing webhook-id/);
  }
  await assert.rejects(verifyWebhook(SECRET, headers(SIGNATURE, "soon"), BODY, { now: AT }), /not a number/);
});

test("the timestamp must be within the tolerance, either way", async () => {
  const late = AT + 301_000;
  await assert.rejects(verifyWebhook(SECRET, headers(), BODY, { now: late }), /too old/);
  assert.ok(await verifyWebhook(SECRET, headers(), BODY, { now: late, toleranceSeconds: 600 }));
  assert.ok(await verifyWebhook(SECRET, headers(), BODY, { now: AT + 300_000 }), "at the edge");
  await assert.rejects(verifyWebhook(SECRET, headers(), BODY, { now: AT - 301_000 }), /future/);
  await assert.rejects(verifyWebhook(SECRET, headers(), BODY), /too old/, "the clock by default");
});

test("a parsed body or a secret that is not base64 is a usage error", async () => {
  await assert.rejects(
    verifyWebhook(SECRET, headers(), { test: 2432232314 } as unknown as string, { now: AT }),
    /raw request body/,
  );
  await assert.rejects(verifyWebhook("whsec_***", headers(), BODY, { now: AT }), ConfigurationError);
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
