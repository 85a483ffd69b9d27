/**
 * The verifier cache's rules, on answers of every kind, including those of
 * servers with token caveats (rate limits, budgets, address bounds,
 * `cache_until`).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { VerdictCache, lifetimeOf } from "../dist/cache.js";
import type { Verdict } from "../dist/cache.js";
import type { VerifiedToken, VerifyResult } from "@tooken/client";
import { TestClock } from "./support.js";

const TTLS = { validMs: 5_000, invalidMs: 1_000 };
const NOW = Date.parse("2030-01-01T00:00:00Z");

function token(extra: Record<string, unknown> = {}): VerifiedToken {
  return { id: "tk_1", name: "svc", scopes: ["invoices:read"], metadata: null, expires_at: null, mode: "live", ...extra };
}

function valid(extra: Partial<VerifyResult> = {}, tokenExtra: Record<string, unknown> = {}): VerifyResult {
  return { valid: true, code: "VALID", token: token(tokenExtra), ...extra };
}

test("a valid answer lives for the TTL, a refusal for the negative TTL", () => {
  assert.deepEqual(lifetimeOf(valid(), TTLS, NOW), { ttlMs: 5_000, notAfter: Infinity, perAddress: false });
  for (const code of ["NOT_FOUND", "REVOKED", "EXPIRED", "MALFORMED"]) {
    assert.equal(lifetimeOf({ valid: false, code }, TTLS, NOW)?.ttlMs, 1_000, code);
  }
  const scope = lifetimeOf({ valid: false, code: "INSUFFICIENT_SCOPE", token: token() }, TTLS, NOW);
  assert.equal(scope, null, "depends on the scope asked for");
});

test("never past expires_at nor cache_until, whichever is earlier", () => {
  const expires = "2030-01-01T00:01:00Z";
  assert.equal(lifetimeOf(valid({}, { expires_at: expires }), TTLS, NOW)?.notAfter, Date.parse(expires));
  const until = "2030-01-01T00:00:30Z";
  assert.equal(lifetimeOf(valid({ cache_until: until }, { expires_at: expires }), TTLS, NOW)?.notAfter, Date.parse(until));
  assert.equal(lifetimeOf(valid({ cache_until: expires }, { expires_at: until }), TTLS, NOW)?.notAfter, Date.parse(until));
  assert.equal(lifetimeOf(valid({ cache_until: "2029-12-31T23:59:59Z" }), TTLS, NOW), null, "already past");
  assert.equal(lifetimeOf(valid({ cache_until: "soon" }), TTLS, NOW), null, "unreadable: not cached");
  assert.equal(
    lifetimeOf({ valid: false, code: "REVOKED", cache_until: until }, TTLS, NOW)?.notAfter,
    Date.parse(until),
  );
});

test("never cached: tokens with rate limits or a budget, and codes that spend or are unknown", () => {
  const limits = [{ name: "default", limit: 10, remaining: 9, reset_at: "2030-01-01T00:01:00Z" }];
  assert.equal(lifetimeOf(valid({ rate_limits: limits }), TTLS, NOW), null);
  assert.equal(lifetimeOf(valid({ remaining_uses: 99 }), TTLS, NOW), null);
  assert.equal(lifetimeOf(valid({}, { rate_limits: [{ name: "default", limit: 1, window_seconds: 1 }] }), TTLS, NOW), null);
  assert.equal(lifetimeOf(valid({}, { remaining_uses: 0 }), TTLS, NOW), null);
  assert.notEqual(lifetimeOf(valid({}, { rate_limits: null, remaining_uses: null }), TTLS, NOW), null, "null means unset");
  assert.equal(lifetimeOf({ valid: false, code: "RATE_LIMITED", retry_after_seconds: 3 }, TTLS, NOW), null);
  assert.equal(lifetimeOf({ valid: false, code: "USAGE_EXCEEDED" }, TTLS, NOW), null);
  assert.equal(lifetimeOf({ valid: false, code: "SOMETHING_NEW" }, TTLS, NOW), null);
  assert.equal(lifetimeOf({ valid: true, code: "VALID" }, TTLS, NOW), null, "valid without a token is not a verdict");
});

test("address-bound tokens are cached per client address", () => {
  assert.equal(lifetimeOf(valid({}, { allowed_ips: ["203.0.113.0/24"] }), TTLS, NOW)?.perAddress, true);
  assert.equal(lifetimeOf(valid({}, { allowed_ips: null }), TTLS, NOW)?.perAddress, false);
  assert.deepEqual(lifetimeOf({ valid: false, code: "IP_NOT_ALLOWED", token: token() }, TTLS, NOW), {
    ttlMs: 1_000,
    notAfter: Infinity,
    perAddress: true,
  });

  const clock = new TestClock();
  const cache = new VerdictCache(100);
  const ok: Verdict = { kind: "valid", token: token() };
  const refused: Verdict = { kind: "invalid", code: "IP_NOT_ALLOWED", tokenId: "tk_1" };
  const bound = { ttlMs: 5_000, notAfter: Infinity, perAddress: true };
  cache.put("hash", "203.0.113.7", ok, bound, clock.monotonic(), clock);
  cache.put("hash", "198.51.100.1", refused, { ...bound, ttlMs: 1_000 }, clock.monotonic(), clock);
  assert.deepEqual(cache.get("hash", "203.0.113.7", clock), ok);
  assert.deepEqual(cache.get("hash", "198.51.100.1", clock), refused);
  assert.equal(cache.get("hash", "192.0.2.1", clock), undefined, "another address asks again");
  assert.equal(cache.get("hash", undefined, clock), undefined);
});

test("entries age on the monotonic clock and end at notAfter on the wall clock", () => {
  const clock = new TestClock();
  const cache = new VerdictCache(100);
  const ok: Verdict = { kind: "valid", token: token() };
  cache.put("a", undefined, ok, { ttlMs: 5_000, notAfter: Infinity, perAddress: false }, clock.monotonic(), clock);
  clock.mono += 4_999;
  assert.deepEqual(cache.get("a", undefined, clock), ok);
  clock.mono += 1;
  assert.equal(cache.get("a", undefined, clock), undefined);
  assert.equal(cache.size, 0, "dropped when met");

  cache.put("b", undefined, ok, { ttlMs: 60_000, notAfter: clock.wall + 1_000, perAddress: false }, clock.monotonic(), clock);
  clock.wall += 999;
  assert.deepEqual(cache.get("b", undefined, clock), ok);
  clock.wall += 1;
  assert.equal(cache.get("b", undefined, clock), undefined);
});

test("a late answer to an older question does not replace a newer one", () => {
  const clock = new TestClock();
  const cache = new VerdictCache(100);
  const life = { ttlMs: 5_000, notAfter: Infinity, perAddress: false };
  const revoked: Verdict = { kind: "invalid", code: "REVOKED", tokenId: "tk_1" };
  cache.put("a", undefined, revoked, life, 10, clock);
  cache.put("a", undefined, { kind: "valid", token: token() }, life, 5, clock);
  assert.deepEqual(cache.get("a", undefined, clock), revoked);
});

test("the cache never grows past its capacity; refusals go first", () => {
  const clock = new TestClock();
  const cache = new VerdictCache(10);
  const life = { ttlMs: 60_000, notAfter: Infinity, perAddress: false };
  cache.put("keep", undefined, { kind: "valid", token: token() }, life, clock.monotonic(), clock);
  for (let i = 0; i < 100; i++) {
    cache.put(`bad${i}`, undefined, { kind: "invalid", code: "NOT_FOUND", tokenId: undefined }, life, clock.monotonic(), clock);
    assert.ok(cache.size <= 10);
  }
  assert.notEqual(cache.get("keep", undefined, clock), undefined);
  const none = new VerdictCache(0);
  none.put("a", undefined, { kind: "valid", token: token() }, life, 0, clock);
  assert.equal(none.size, 0);
});

test("evicting by token id or hash prefix", () => {
  const clock = new TestClock();
  const cache = new VerdictCache(100);
  const life = { ttlMs: 60_000, notAfter: Infinity, perAddress: false };
  cache.put("aaaa", undefined, { kind: "valid", token: token({ id: "tk_a" }) }, life, 0, clock);
  cache.put("bbbb", undefined, { kind: "invalid", code: "REVOKED", tokenId: "tk_b" }, life, 0, clock);
  cache.put("cccc", undefined, { kind: "valid", token: token({ id: "tk_c" }) }, life, 0, clock);
  cache.evictToken("tk_a");
  cache.evictToken("tk_b");
  assert.equal(cache.size, 1);
  cache.evictHashPrefix("CC");
  assert.equal(cache.size, 0);
});

test("while bypassed, nothing is served or kept, and what was held is dropped", () => {
  const clock = new TestClock();
  const cache = new VerdictCache(100);
  const life = { ttlMs: 60_000, notAfter: Infinity, perAddress: false };
  const ok: Verdict = { kind: "valid", token: token() };
  cache.put("a", undefined, ok, life, 0, clock);
  cache.bypass(true);
  assert.equal(cache.bypassing, true);
  assert.equal(cache.size, 0);
  cache.put("a", undefined, ok, life, 0, clock);
  assert.equal(cache.get("a", undefined, clock), undefined);
  cache.bypass(false);
  cache.put("a", undefined, ok, life, 0, clock);
  assert.deepEqual(cache.get("a", undefined, clock), ok);
});
