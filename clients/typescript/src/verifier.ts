/**
 * Accepting Tooken tokens in a service: the framework-neutral core of the
 * Express and Hono middleware. It reads `Authorization: Bearer <token>`,
 * refuses malformed values without a call, asks Tooken
 * (`POST /v1/tokens/verify`) unless a recent answer is cached, and says
 * whether to let the request through or how to refuse it, in Tooken's own
 * error shapes.
 */
import { VerdictCache, lifetimeOf, systemClock } from "./cache.js";
import type { Clock, Verdict } from "./cache.js";
import { sha256Hex } from "./crypto.js";
import { parseCredential } from "./credential.js";
import { readEnv } from "./env.js";
import { ConfigurationError, TookenError } from "./errors.js";
import { Http } from "./http.js";
import { hasScope, isValidScope } from "./scope.js";
import type { VerifiedToken, VerifyResult } from "./types.js";

export type { Clock } from "./cache.js";

/** How long a valid answer is reused unless configured otherwise. */
export const DEFAULT_CACHE_TTL_MS = 5_000;
/** How long a refusal is reused unless configured otherwise. */
export const DEFAULT_NEGATIVE_CACHE_TTL_MS = 1_000;
/** Most answers held unless configured otherwise. */
export const DEFAULT_CACHE_CAPACITY = 10_000;
/** Longest wait for Tooken's answer unless configured otherwise. */
export const DEFAULT_VERIFY_TIMEOUT_MS = 5_000;

/** The `401` message, whatever the cause: a client must not learn which applied. */
export const UNAUTHORIZED_MESSAGE = "Invalid or missing API key";

export interface VerifierOptions {
  /**
   * The credential the service verifies with: a token holding only
   * `tokens:verify` (best: it can do nothing else), or an API key.
   * Default `TOOKEN_VERIFY_KEY`, else `TOOKEN_API_KEY`.
   */
  verifyKey?: string;
  /** Default `TOOKEN_URL`, else `http://127.0.0.1:7878`. */
  baseUrl?: string;
  /**
   * How long a valid answer is reused, in ms (default 5000; 0 asks Tooken
   * every time). Never past the token's `expires_at` or the answer's
   * `cache_until`; never for tokens with rate limits or a budget. A token
   * revoked meanwhile may be accepted this long.
   */
  cacheTtlMs?: number;
  /** How long a refusal (unknown, expired, revoked token) is reused, in ms (default 1000). */
  negativeCacheTtlMs?: number;
  /** Most answers held (default 10 000; 0 disables the cache). */
  cacheCapacity?: number;
  /** Longest wait for Tooken, in ms (default 5000); then the request gets `503`. */
  timeoutMs?: number;
  /** The `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  /**
   * Where problems go (Tooken unreachable: `warn`; the verifier credential
   * refused: `error`). Default `console`; `null` for silence. Never given a
   * token.
   */
  logger?: Pick<Console, "warn" | "error"> | null;
  /** The clock (for tests). */
  clock?: Clock;
}

/** How to refuse a request: status, headers and body, as Tooken itself would. */
export interface Refusal {
  status: 401 | 403 | 429 | 503;
  headers: Record<string, string>;
  body: { error: string; message: string; required_scope?: string };
}

/** The outcome for one request. */
export type Authentication =
  | { ok: true; token: VerifiedToken }
  | { ok: false; refusal: Refusal };

/** What a request needs. */
export interface AuthenticateOptions {
  /** A scope the token must cover (`invoices:read`; `invoices:*` covers it). */
  scope?: string;
  /** The client's address, for tokens bound to addresses. */
  clientIp?: string;
}

const MISSING: Refusal = {
  status: 401,
  headers: { "www-authenticate": 'Bearer realm="tooken"' },
  body: { error: "unauthorized", message: UNAUTHORIZED_MESSAGE },
};

const INVALID: Refusal = {
  status: 401,
  headers: { "www-authenticate": 'Bearer realm="tooken", error="invalid_token"' },
  body: { error: "unauthorized", message: UNAUTHORIZED_MESSAGE },
};

const UNAVAILABLE: Refusal = {
  status: 503,
  headers: { "retry-after": "1" },
  body: { error: "unavailable", message: "the token cannot be verified right now; try again shortly" },
};

function forbidden(scope: string): Refusal {
  return {
    status: 403,
    headers: { "www-authenticate": `Bearer error="insufficient_scope", scope="${scope}"` },
    body: {
      error: "forbidden",
      message: `this token lacks the scope ${scope} required for this operation`,
      required_scope: scope,
    },
  };
}

function refusedByCaveat(code: string, message: string): Refusal {
  return { status: 403, headers: { "x-tooken-code": code }, body: { error: "forbidden", message } };
}

function rateLimited(retryAfterSeconds: number | undefined): Refusal {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds ?? 1));
  return {
    status: 429,
    headers: { "retry-after": String(seconds), "x-tooken-code": "RATE_LIMITED" },
    body: { error: "rate_limited", message: `this token's rate limit is reached; retry in ${seconds} s` },
  };
}

/** The refusal for a code that refuses the token whatever the scope. */
function refusalFor(code: string, answer?: VerifyResult): Refusal {
  switch (code) {
    case "IP_NOT_ALLOWED":
      return refusedByCaveat(code, "this token may not be used from this address");
    case "USAGE_EXCEEDED":
      return refusedByCaveat(code, "this token's usage budget is spent");
    case "RATE_LIMITED":
      return rateLimited(answer?.retry_after_seconds);
    default:
      return INVALID;
  }
}

/** The token of exactly `Bearer <token>` (one space, nothing else). */
function bearerToken(authorization: string | readonly string[] | null | undefined): string | Refusal {
  if (authorization === undefined || authorization === null) return MISSING;
  if (typeof authorization !== "string") {
    if (authorization.length === 0) return MISSING;
    if (authorization.length > 1) return INVALID;
    authorization = authorization[0]!;
  }
  if (!authorization.startsWith("Bearer ")) return INVALID;
  const token = authorization.slice("Bearer ".length);
  return token === "" ? INVALID : token;
}

/**
 * Verifies bearer tokens with Tooken, with a short cache. One per service
 * (its cache is shared by every route using it).
 *
 * ```ts
 * const verifier = new TookenVerifier({ verifyKey: process.env.TOOKEN_VERIFY_KEY });
 * const result = await verifier.authenticate(request.headers.get("authorization"), { scope: "invoices:read" });
 * if (!result.ok) return Response.json(result.refusal.body, result.refusal);
 * ```
 */
export class TookenVerifier {
  readonly #http: Http;
  readonly #cache: VerdictCache;
  readonly #ttls: { validMs: number; invalidMs: number };
  readonly #timeoutMs: number;
  readonly #logger: Pick<Console, "warn" | "error"> | null;
  readonly #clock: Clock;
  /** Questions on their way to Tooken, so that concurrent requests ask once. */
  readonly #inFlight = new Map<string, Promise<Answer>>();

  constructor(options: VerifierOptions = {}) {
    const verifyKey = options.verifyKey ?? readEnv("TOOKEN_VERIFY_KEY") ?? readEnv("TOOKEN_API_KEY");
    if (verifyKey === undefined) {
      throw new ConfigurationError(
        "configuration",
        "no verifier credential: pass { verifyKey } or set TOOKEN_VERIFY_KEY (else TOOKEN_API_KEY) " +
          "(a token with the tokens:verify scope, or an API key)",
      );
    }
    this.#http = new Http(
      { apiKey: verifyKey, baseUrl: options.baseUrl, fetch: options.fetch, maxRetries: 0 },
      true,
    );
    this.#ttls = {
      validMs: options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS,
      invalidMs: options.negativeCacheTtlMs ?? DEFAULT_NEGATIVE_CACHE_TTL_MS,
    };
    this.#cache = new VerdictCache(options.cacheCapacity ?? DEFAULT_CACHE_CAPACITY);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS;
    this.#logger = options.logger === undefined ? console : options.logger;
    this.#clock = options.clock ?? systemClock;
  }

  /** The Tooken this verifier asks. */
  get baseUrl(): string {
    return this.#http.baseUrl;
  }

  /** How many answers the cache holds. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Forgets every cached answer about the token with this id (e.g. just revoked). */
  evictToken(id: string): void {
    this.#cache.evictToken(id);
  }

  /** Forgets every cached answer. */
  clearCache(): void {
    this.#cache.clear();
  }

  /**
   * Authenticates a request by its `Authorization` header value (exactly
   * `Bearer <token>`), then {@link TookenVerifier.verify}.
   */
  authenticate(
    authorization: string | readonly string[] | null | undefined,
    options: AuthenticateOptions = {},
  ): Promise<Authentication> {
    const token = bearerToken(authorization);
    if (typeof token !== "string") return Promise.resolve({ ok: false, refusal: token });
    return this.verify(token, options);
  }

  /** Verifies a presented token, from the cache when it can. */
  async verify(presented: string, options: AuthenticateOptions = {}): Promise<Authentication> {
    const { scope, clientIp } = options;
    if (scope !== undefined && !isValidScope(scope)) {
      throw new TypeError(`${JSON.stringify(scope)} is not a valid scope (like invoices:read)`);
    }
    const shape = parseCredential(presented);
    // A typo, garbage or an API key never costs a call to Tooken.
    if (shape === null || shape.kind !== "token") return { ok: false, refusal: INVALID };
    const hash = await sha256Hex(presented);
    const cached = this.#cache.get(hash, clientIp, this.#clock);
    if (cached !== undefined) return this.#judge(cached, scope);

    const flightKey = `${hash} ${scope ?? ""} ${clientIp ?? ""}`;
    let question = this.#inFlight.get(flightKey);
    if (question === undefined) {
      question = this.#ask(presented, hash, scope, clientIp).finally(() => this.#inFlight.delete(flightKey));
      this.#inFlight.set(flightKey, question);
    }
    const answer = await question;
    if ("refusal" in answer) return { ok: false, refusal: answer.refusal };
    return this.#judge(answer.verdict, scope);
  }

  /** A verdict applied to this request's required scope. */
  #judge(verdict: Verdict, scope: string | undefined): Authentication {
    if (verdict.kind === "invalid") return { ok: false, refusal: refusalFor(verdict.code) };
    if (scope !== undefined && !hasScope(verdict.token.scopes, scope)) {
      return { ok: false, refusal: forbidden(scope) };
    }
    return { ok: true, token: verdict.token };
  }

  async #ask(presented: string, hash: string, scope: string | undefined, clientIp: string | undefined): Promise<Answer> {
    const askedAt = this.#clock.monotonic();
    let result: VerifyResult;
    try {
      result = await this.#http.json<VerifyResult>(
        {
          method: "POST",
          path: "/v1/tokens/verify",
          // With the route's scope, so that Tooken spends nothing on a
          // request this scope refuses.
          json: { token: presented, scopes: scope === undefined ? [] : [scope] },
        },
        { timeoutMs: this.#timeoutMs },
      );
    } catch (e) {
      this.#report(e);
      return { refusal: UNAVAILABLE };
    }
    const verdict = verdictOf(result);
    if (verdict === null) {
      if (result.code === "INSUFFICIENT_SCOPE" && scope !== undefined) {
        return { refusal: forbidden(scope) };
      }
      if (result.code === "RATE_LIMITED" || result.code === "USAGE_EXCEEDED") {
        return { refusal: refusalFor(result.code, result) };
      }
      if (result.valid === false && typeof result.code === "string" && result.code !== "VALID") {
        // A code this version does not know: refuse, do not cache.
        return { refusal: INVALID };
      }
      this.#logger?.error(`tooken: inconsistent verify answer (valid=${String(result.valid)}, code=${String(result.code)})`);
      return { refusal: UNAVAILABLE };
    }
    const lifetime = lifetimeOf(result, this.#ttls, this.#clock.now());
    if (lifetime !== null) this.#cache.put(hash, clientIp, verdict, lifetime, askedAt, this.#clock);
    return { verdict };
  }

  #report(e: unknown): void {
    if (e instanceof TookenError && (e.status === 401 || e.status === 403)) {
      this.#logger?.error(
        `tooken: Tooken refused the verifier credential (${e.status} ${e.error}): it must be a valid API key, ` +
          "or a token with the tokens:verify scope",
      );
    } else if (e instanceof TookenError) {
      this.#logger?.warn(`tooken: cannot verify tokens right now: ${e.message}`);
    } else {
      this.#logger?.error(`tooken: verifying a token failed: ${String(e)}`);
    }
  }
}

type Answer = { verdict: Verdict } | { refusal: Refusal };

/** The reusable meaning of an answer; `null` for answers that are not a verdict on the token itself. */
function verdictOf(result: VerifyResult): Verdict | null {
  if (result.valid === true && result.code === "VALID" && result.token !== undefined) {
    return { kind: "valid", token: result.token };
  }
  if (result.valid === false && ["MALFORMED", "NOT_FOUND", "EXPIRED", "REVOKED", "IP_NOT_ALLOWED"].includes(result.code)) {
    return { kind: "invalid", code: result.code, tokenId: result.token?.id };
  }
  return null;
}
