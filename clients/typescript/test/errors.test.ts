/** Every error class, and which requests are retried, against the real server. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  AuthenticationError,
  ConfigurationError,
  ConflictError,
  ConnectionError,
  InternalServerError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  RateLimitError,
  RequestTimeoutError,
  ServiceUnavailableError,
  TimeoutError,
  Tooken,
  TookenError,
} from "@tooken/client";
import { closedPortUrl, startProxy, startServer } from "./support.js";
import type { Proxy, Server } from "./support.js";

let server: Server;
let tooken: Tooken;
let proxy: Proxy;
/** The same client, through the proxy. */
let proxied: Tooken;

before(async () => {
  server = await startServer();
  tooken = new Tooken({ apiKey: server.apiKey, baseUrl: server.url });
  proxy = await startProxy(server.url);
  proxied = new Tooken({ apiKey: server.apiKey, baseUrl: proxy.url, timeoutMs: 500 });
});

after(async () => {
  await proxy?.close();
  await server?.stop();
});

/** The requests the proxy saw while `run` ran. */
async function seen(run: () => Promise<unknown>): Promise<string[]> {
  const start = proxy.requests.length;
  await run();
  return proxy.requests.slice(start).map((r) => `${r.method} ${r.path.split("?")[0]}`);
}

const internal = { status: 500, body: '{"error":"internal","message":"internal error"}' };
const unavailable = (retryAfter: string) => ({
  status: 503,
  headers: { "retry-after": retryAfter },
  body: '{"error":"unavailable","message":"the store is unreachable; try again shortly"}',
});

describe("the API's errors", () => {
  test("401: AuthenticationError with the exact message and a request id", async () => {
    const stranger = new Tooken({ apiKey: "tok_live_nope", baseUrl: server.url });
    const e = await rejects(stranger.whoami(), AuthenticationError);
    assert.equal(e.error, "unauthorized");
    assert.equal(e.message, "Invalid or missing API key");
    assert.equal(e.status, 401);
    assert.ok(e.requestId, "x-request-id is kept");
    assert.ok(e instanceof TookenError);
  });

  test("403: PermissionDeniedError naming the required scope", async () => {
    const verifier = await tooken.tokens.create({ name: "verifier", scopes: ["tokens:verify"] });
    const limited = new Tooken({ apiKey: verifier.secret, baseUrl: server.url });
    const e = await rejects(limited.tokens.list(), PermissionDeniedError);
    assert.equal(e.error, "forbidden");
    assert.equal(e.requiredScope, "tokens:read");
    assert.equal(e.status, 403);
    const settings = await rejects(limited.settings.get(), PermissionDeniedError);
    assert.equal(settings.status, 403);
  });

  test("404: NotFoundError", async () => {
    const e = await rejects(tooken.tokens.get("tk_does_not_exist"), NotFoundError);
    assert.deepEqual([e.error, e.status], ["not_found", 404]);
    await rejects(tooken.tokens.revoke("tk_does_not_exist"), NotFoundError);
  });

  test("409: ConflictError for changing a revoked token", async () => {
    const t = await tooken.tokens.create({ name: "revoked" });
    await tooken.tokens.revoke(t.id);
    const e = await rejects(tooken.tokens.update(t.id, { name: "renamed" }), ConflictError);
    assert.deepEqual([e.error, e.status], ["conflict", 409]);
    await rejects(tooken.tokens.rotate(t.id), ConflictError);
  });

  test("400: InvalidRequestError naming the field", async () => {
    const e = await rejects(tooken.tokens.create({ name: "x", scopes: ["Not A Scope"] }), InvalidRequestError);
    assert.deepEqual([e.error, e.status, e.field], ["invalid_request", 400, "scopes[0]"]);
    const name = await rejects(tooken.tokens.create({ name: "" }), InvalidRequestError);
    assert.equal(name.field, "name");
    const query = await rejects(tooken.tokens.list({ limit: 1000 }), InvalidRequestError);
    assert.equal(query.field, "limit");
    const t = await tooken.tokens.create({ name: "usage" });
    const days = await rejects(tooken.tokens.usage(t.id, { days: 0 }), InvalidRequestError);
    assert.equal(days.field, "days");
  });

  test("413: PayloadTooLargeError, an InvalidRequestError", async () => {
    const e = await rejects(tooken.tokens.create({ name: "big", description: "x".repeat(70 * 1024) }), PayloadTooLargeError);
    assert.equal(e.status, 413);
    assert.ok(e instanceof InvalidRequestError);
  });

  test("500: InternalServerError, not retried", async () => {
    proxy.answerNext(internal);
    let e: TookenError | undefined;
    const requests = await seen(async () => {
      e = await rejects(proxied.whoami(), InternalServerError);
    });
    assert.deepEqual([e!.error, e!.status], ["internal", 500]);
    assert.deepEqual(requests, ["GET /v1/whoami"]);
  });

  test("408: RequestTimeoutError; every error keeps the answer's body and headers", async () => {
    proxy.answerNext({ status: 408, headers: { "x-request-id": "req-408" }, body: '{"error":"request_timeout","message":"too slow"}' });
    const e = await rejects(proxied.whoami(), RequestTimeoutError);
    assert.deepEqual([e.error, e.message, e.status, e.requestId], ["request_timeout", "too slow", 408, "req-408"]);
    assert.deepEqual(e.body, { error: "request_timeout", message: "too slow" });
    assert.equal(e.headers?.get("x-request-id"), "req-408");
  });

  test("an error answer that is not JSON is described by its status", async () => {
    proxy.answerNext({ status: 502, headers: { "content-type": "text/html" }, body: "<h1>Bad Gateway</h1>" });
    const e = await rejects(proxied.whoami(), InternalServerError);
    assert.deepEqual([e.error, e.message, e.status], ["internal", "HTTP 502", 502]);
  });
});

describe("retries", () => {
  test("503 is retried after Retry-After, even a POST (it was not applied)", async () => {
    proxy.answerNext(unavailable("0"));
    let created: { name: string } | undefined;
    const requests = await seen(async () => {
      created = await proxied.tokens.create({ name: "after-503" });
    });
    assert.equal(created!.name, "after-503");
    assert.deepEqual(requests, ["POST /v1/tokens", "POST /v1/tokens"]);
    assert.equal((await tooken.tokens.list({ name: "after-503" }).toArray()).length, 1, "created once");
  });

  test("Retry-After is waited for", async () => {
    proxy.answerNext({ status: 429, headers: { "retry-after": "1" }, body: '{"error":"rate_limited","message":"slow down"}' });
    const started = performance.now();
    const requests = await seen(() => proxied.whoami());
    assert.ok(performance.now() - started >= 990, "waited at least the second it was asked to");
    assert.deepEqual(requests, ["GET /v1/whoami", "GET /v1/whoami"]);
  });

  test("after maxRetries the last answer is thrown: ServiceUnavailableError", async () => {
    proxy.answerNext(unavailable("0"), unavailable("0"), unavailable("0"));
    let e: TookenError | undefined;
    const requests = await seen(async () => {
      e = await rejects(proxied.whoami(), ServiceUnavailableError);
    });
    assert.equal(requests.length, 3, "the first attempt and two retries");
    assert.deepEqual([e!.error, e!.status, e!.retryAfter], ["unavailable", 503, 0]);
  });

  test("a Retry-After longer than the bound is not waited for", async () => {
    const bounded = new Tooken({ apiKey: server.apiKey, baseUrl: proxy.url, maxRetryAfterSeconds: 5 });
    proxy.answerNext({ status: 429, headers: { "retry-after": "3600" }, body: '{"error":"rate_limited","message":"later"}' });
    let e: TookenError | undefined;
    const requests = await seen(async () => {
      e = await rejects(bounded.whoami(), RateLimitError);
    });
    assert.equal(requests.length, 1);
    assert.equal(e!.retryAfter, 3600);
  });

  test("maxRetries 0, per client or per call, sends once", async () => {
    proxy.answerNext(unavailable("0"));
    assert.equal((await seen(() => rejects(proxied.whoami({ maxRetries: 0 }), ServiceUnavailableError))).length, 1);
  });

  test("a GET that timed out is retried; a POST that timed out is not", async () => {
    proxy.stallNext(1);
    const get = await seen(() => proxied.whoami());
    assert.deepEqual(get, ["GET /v1/whoami", "GET /v1/whoami"]);

    proxy.stallNext(1);
    let e: TookenError | undefined;
    const post = await seen(async () => {
      e = await rejects(proxied.tokens.create({ name: "timed-out" }), TimeoutError);
    });
    assert.deepEqual(post, ["POST /v1/tokens"]);
    assert.equal(e!.error, "timeout");
    assert.ok(e instanceof ConnectionError);
  });

  test("an abort signal cancels the call", async () => {
    proxy.stallNext(1);
    const controller = new AbortController();
    const call = proxied.whoami({ signal: controller.signal, timeoutMs: 60_000 });
    setTimeout(() => controller.abort(new Error("cancelled by the caller")), 50);
    await assert.rejects(call, /cancelled by the caller/);
  });

  test("the server's brute-force 429 is a RateLimitError, and is retried after Retry-After", async () => {
    const strict = await startServer(["--auth-block-after", "3", "--auth-window-seconds", "2"]);
    try {
      const stranger = new Tooken({ apiKey: "tok_live_wrong", baseUrl: strict.url, maxRetries: 0 });
      for (let i = 0; i < 3; i++) await rejects(stranger.whoami(), AuthenticationError);
      const once = new Tooken({ apiKey: strict.apiKey, baseUrl: strict.url, maxRetries: 0 });
      const e = await rejects(once.whoami(), RateLimitError);
      assert.equal(e.status, 429);
      assert.ok(e.retryAfter !== undefined && e.retryAfter >= 1 && e.retryAfter <= 2);
      const patient = new Tooken({ apiKey: strict.apiKey, baseUrl: strict.url });
      assert.equal((await patient.whoami()).kind, "api_key", "answered once the window ended");
    } finally {
      await strict.stop();
    }
  });
});

describe("no answer", () => {
  test("ConnectionError when nothing listens", async () => {
    const nowhere = new Tooken({ apiKey: server.apiKey, baseUrl: await closedPortUrl(), maxRetries: 1 });
    const e = await rejects(nowhere.whoami(), ConnectionError);
    assert.equal(e.error, "connection_error");
    assert.equal(e.status, undefined);
    assert.ok(e.cause !== undefined);
  });

  test("ConfigurationError without an API key or with a bad URL", () => {
    const saved = process.env.TOOKEN_API_KEY;
    delete process.env.TOOKEN_API_KEY;
    try {
      assert.throws(() => new Tooken(), ConfigurationError);
      assert.throws(() => new Tooken({ apiKey: "k", baseUrl: "ftp://x" }), /not an http/);
      assert.throws(() => new Tooken({ apiKey: "k", baseUrl: "127.0.0.1:7878" }), ConfigurationError);
    } finally {
      if (saved !== undefined) process.env.TOOKEN_API_KEY = saved;
    }
  });
});

async function rejects<E extends TookenError>(
  promise: PromiseLike<unknown>,
  Class: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof Class, `expected ${Class.name}, got ${String(e)}`);
    assert.equal((e as Error).name, (e as Error).constructor.name);
    return e;
  }
  assert.fail(`expected ${Class.name}, but it succeeded`);
}
