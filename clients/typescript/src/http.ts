import {
  ConfigurationError,
  ConnectionError,
  TimeoutError,
  TookenError,
  errorFromAnswer,
} from "./errors.js";
import { readEnv } from "./env.js";
import { VERSION } from "./version.js";

/** Where the API is when neither `baseUrl` nor `TOOKEN_URL` says. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:7878";
/** Longest wait for an answer, unless configured otherwise. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Retries after the first attempt, unless configured otherwise. */
export const DEFAULT_MAX_RETRIES = 2;
/** A `Retry-After` longer than this is not waited for: the error is thrown. */
export const DEFAULT_MAX_RETRY_AFTER_SECONDS = 30;

/** How to reach Tooken. */
export interface ClientOptions {
  /** An API key (`tok_live_…`) or a token; default `TOOKEN_API_KEY`. */
  apiKey?: string;
  /** Default `TOOKEN_URL`, else `http://127.0.0.1:7878`. */
  baseUrl?: string;
  /**
   * Longest wait for each attempt's answer, in ms (default 10 000: Tooken
   * answers in milliseconds, a longer wait means trouble).
   */
  timeoutMs?: number;
  /**
   * Retries after the first attempt (default 2). Only requests certainly
   * not applied are retried: any request whose connection was refused, a
   * GET after any other network error or timeout, and any request answered
   * `429` or `503`. A POST or PATCH that timed out is never sent again.
   */
  maxRetries?: number;
  /** A `Retry-After` longer than this many seconds is not waited for (default 30). */
  maxRetryAfterSeconds?: number;
  /** The `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
}

/** Per-call overrides. */
export interface RequestOptions {
  /** Cancels the call (and any wait between retries). */
  signal?: AbortSignal;
  timeoutMs?: number;
  maxRetries?: number;
}

type Query = Record<string, string | number | boolean | Date | null | undefined>;

interface Call {
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE";
  path: string;
  query?: object;
  /** A JSON body. */
  json?: unknown;
  /** A form-encoded body. */
  form?: Record<string, string | undefined>;
  /** Needs no credential (health checks). */
  anonymous?: boolean;
}

/** Sends requests to the API: authentication, timeouts, retries, errors. */
export class Http {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #maxRetryAfterSeconds: number;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string>;

  constructor(options: ClientOptions, requireKey: boolean) {
    const apiKey = options.apiKey ?? readEnv("TOOKEN_API_KEY");
    if (requireKey && apiKey === undefined) {
      throw new ConfigurationError(
        "configuration",
        "no API key: pass { apiKey } or set TOOKEN_API_KEY (an API key tok_live_…/tok_test_…, or a token)",
      );
    }
    this.#apiKey = apiKey;
    const baseUrl = options.baseUrl ?? readEnv("TOOKEN_URL") ?? DEFAULT_BASE_URL;
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new ConfigurationError("configuration", `${JSON.stringify(baseUrl)} is not an http:// or https:// URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ConfigurationError("configuration", `${JSON.stringify(baseUrl)} is not an http:// or https:// URL`);
    }
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.#maxRetryAfterSeconds = options.maxRetryAfterSeconds ?? DEFAULT_MAX_RETRY_AFTER_SECONDS;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") {
      throw new ConfigurationError("configuration", "no fetch: pass { fetch } on runtimes without a global one");
    }
    // Called unbound, a runtime's own fetch may refuse `this`.
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#headers = { ...options.headers };
  }

  /** A JSON answer. */
  async json<T>(call: Call, options?: RequestOptions): Promise<T> {
    const { response, done } = await this.#send(call, options);
    try {
      const text = await response.text();
      try {
        return JSON.parse(text) as T;
      } catch (cause) {
        throw new TookenError("invalid_response", `unexpected answer from Tooken: not JSON (HTTP ${response.status})`, {
          status: response.status,
          requestId: response.headers.get("x-request-id") ?? undefined,
          cause,
        });
      }
    } catch (e) {
      throw this.#transportError(e, call);
    } finally {
      done();
    }
  }

  /** A text answer. */
  async text(call: Call, options?: RequestOptions): Promise<string> {
    const { response, done } = await this.#send(call, options);
    try {
      return await response.text();
    } catch (e) {
      throw this.#transportError(e, call);
    } finally {
      done();
    }
  }

  /**
   * The answer's status and text, whatever the status (for readiness,
   * whose `503` is an answer, not an error). Not retried.
   */
  async probe(call: Call, options?: RequestOptions): Promise<{ status: number; text: string }> {
    const { response, done } = await this.#send(call, { ...options, maxRetries: 0 }, true);
    try {
      return { status: response.status, text: await response.text() };
    } catch (e) {
      throw this.#transportError(e, call);
    } finally {
      done();
    }
  }

  /**
   * A success answer whose body is handed over unread, for streaming. The
   * timeout covers the wait for the answer's head only.
   */
  async stream(call: Call, options?: RequestOptions): Promise<Response> {
    const { response, done } = await this.#send(call, options);
    done();
    return response;
  }

  /**
   * Sends `call`, retrying what may be retried. Resolves with a success
   * answer (or any answer when `anyStatus`) and `done`, which clears the
   * timeout once the body has been read.
   */
  async #send(
    call: Call,
    options: RequestOptions = {},
    anyStatus = false,
  ): Promise<{ response: Response; done: () => void }> {
    const maxRetries = options.maxRetries ?? this.#maxRetries;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const url = this.#url(call);
    const init = this.#init(call);
    for (let attempt = 0; ; attempt++) {
      options.signal?.throwIfAborted();
      const controller = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
      const onAbort = () => controller.abort(options.signal?.reason);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      let response: Response;
      try {
        response = await this.#fetch(url, { ...init, signal: controller.signal });
      } catch (e) {
        done();
        if (options.signal?.aborted) throw options.signal.reason;
        const error = timedOut
          ? new TimeoutError("timeout", `Tooken did not answer ${call.method} ${call.path} within ${timeoutMs} ms`, {
              cause: e,
            })
          : new ConnectionError("connection_error", `cannot reach Tooken at ${this.baseUrl}: ${describe(e)}`, {
              cause: e,
            });
        // A GET is harmless to send again; anything else only when it
        // never left (a POST that got no answer may have been applied).
        if ((call.method === "GET" || neverSent(e)) && attempt < maxRetries) {
          await sleep(backoffMs(attempt), options.signal);
          continue;
        }
        throw error;
      }
      if (response.ok || anyStatus) {
        return { response, done };
      }
      const retryAfter = retryAfterSeconds(response.headers.get("retry-after"));
      // 429 and 503 mean the request was not applied: safe to send again,
      // after the wait the server asks for.
      if ((response.status === 429 || response.status === 503) && attempt < maxRetries) {
        const waitMs = retryAfter !== undefined ? retryAfter * 1000 : backoffMs(attempt);
        if (waitMs <= this.#maxRetryAfterSeconds * 1000) {
          await response.body?.cancel().catch(() => {});
          done();
          await sleep(waitMs, options.signal);
          continue;
        }
      }
      let text = "";
      try {
        text = await response.text();
      } catch {
        // The status says enough.
      } finally {
        done();
      }
      throw errorFromAnswer(response.status, response.headers, text, retryAfter);
    }
  }

  #url(call: Call): string {
    let url = this.baseUrl + call.path;
    const query = encodeQuery(call.query as Query | undefined);
    if (query) url += `?${query}`;
    return url;
  }

  #init(call: Call): RequestInit {
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": `tooken-typescript/${VERSION}`,
      ...this.#headers,
    };
    if (!call.anonymous && this.#apiKey !== undefined) {
      headers.authorization = `Bearer ${this.#apiKey}`;
    }
    let body: string | undefined;
    if (call.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(call.json);
    } else if (call.form !== undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = encodeQuery(call.form);
    }
    return { method: call.method, headers, body };
  }

  /** An error met while reading an answer's body. */
  #transportError(e: unknown, call: Call): TookenError {
    if (e instanceof TookenError) return e;
    if (e instanceof Error && e.name === "AbortError") {
      return new TimeoutError("timeout", `Tooken's answer to ${call.method} ${call.path} did not arrive in time`, {
        cause: e,
      });
    }
    return new ConnectionError("connection_error", `reading Tooken's answer failed: ${describe(e)}`, { cause: e });
  }
}

/** `a=1&b=x`: undefined values left out, dates as RFC 3339. */
function encodeQuery(query: Query | undefined): string {
  if (query === undefined) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    params.append(key, value instanceof Date ? value.toISOString() : String(value));
  }
  return params.toString();
}

/** An id as one path segment. */
export function segment(id: string): string {
  return encodeURIComponent(id);
}

/** `Retry-After` as seconds: a number of seconds or an HTTP date. */
export function retryAfterSeconds(value: string | null): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** 0.5 s, 1 s, 2 s, … up to 8 s, with up to a quarter of jitter. */
function backoffMs(attempt: number): number {
  const base = Math.min(8000, 500 * 2 ** attempt);
  return base * (0.75 + Math.random() * 0.25);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Did the request certainly never reach the server? Node's fetch says so
 * in the cause's code (refused connection, unknown host); other runtimes
 * do not, and get no such retry.
 */
function neverSent(e: unknown): boolean {
  const code = (e as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN";
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return cause.message;
    return e.message;
  }
  return String(e);
}
