/**
 * The verifier's answer cache.
 *
 * Keyed by the SHA-256 of the presented token, never the token itself (a
 * heap dump of the service yields no usable credential), plus the client
 * address for tokens bound to addresses. Ages run on a monotonic clock, so
 * a wall-clock jump cannot stretch them; `expires_at` and `cache_until` are
 * compared with the wall clock, as Tooken itself does.
 */
import type { VerifiedToken, VerifyResult } from "./types.js";

/** Where time comes from; replaceable in tests. */
export interface Clock {
  /** Wall-clock time, ms since the epoch (compared with `expires_at`). */
  now(): number;
  /** A monotonic time in ms (for ages). */
  monotonic(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};

/** What Tooken said about a token, as far as a later request may reuse it. */
export type Verdict =
  /** The token is valid; its scopes are checked per request. */
  | { kind: "valid"; token: VerifiedToken }
  /** The token is refused whatever the scope (`REVOKED`, `NOT_FOUND`, …). */
  | { kind: "invalid"; code: string; tokenId: string | undefined };

/** How long an answer may be reused, if at all. */
export interface Lifetime {
  /** From when the question was asked, in ms. */
  ttlMs: number;
  /** Wall-clock ms: never reused at or after this. */
  notAfter: number;
  /** Reused only for requests from the same client address. */
  perAddress: boolean;
}

const REFUSED_WHATEVER_THE_SCOPE = new Set(["MALFORMED", "NOT_FOUND", "EXPIRED", "REVOKED", "IP_NOT_ALLOWED"]);

/**
 * The rules, in one place: an answer is reused for the TTL (valid) or the
 * negative TTL (refused), never at or after the token's `expires_at` or the
 * answer's `cache_until`, and never at all when the token has rate limits
 * or a budget (each verification counts), nor answers that depend on the
 * scope asked for (`INSUFFICIENT_SCOPE`) or that are not understood.
 * Answers about tokens bound to addresses are reused per address.
 */
export function lifetimeOf(
  answer: VerifyResult,
  ttls: { validMs: number; invalidMs: number },
  now: number,
): Lifetime | null {
  const token = answer.token as (VerifiedToken & Record<string, unknown>) | undefined;
  if (answer.rate_limits !== undefined || answer.remaining_uses !== undefined) return null;
  if (hasItems(token?.rate_limits) || isSet(token?.remaining_uses)) return null;
  // INSUFFICIENT_SCOPE depends on the scope asked for: never reused.
  const valid = answer.code === "VALID";
  if (!valid && !REFUSED_WHATEVER_THE_SCOPE.has(answer.code)) return null;
  if (valid && token === undefined) return null;
  let notAfter = Infinity;
  for (const time of [valid ? token?.expires_at : undefined, answer.cache_until]) {
    if (typeof time === "string") {
      const t = Date.parse(time);
      // An unreadable time: do not guess how long the answer holds.
      if (Number.isNaN(t)) return null;
      notAfter = Math.min(notAfter, t);
    }
  }
  if (notAfter <= now) return null;
  return {
    ttlMs: valid ? ttls.validMs : ttls.invalidMs,
    notAfter,
    perAddress: answer.code === "IP_NOT_ALLOWED" || hasItems(token?.allowed_ips),
  };
}

function hasItems(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0;
}

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

interface Entry {
  verdict: Verdict | "per-address";
  /** Monotonic ms when the question was asked. */
  askedAt: number;
  /** Monotonic ms: reused before this. */
  useUntil: number;
  /** Wall ms: reused before this. */
  notAfter: number;
}

export class VerdictCache {
  readonly #entries = new Map<string, Entry>();
  readonly #capacity: number;
  #bypass = false;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** A verdict for the token hashed `hash`, presented from `address`, still in force. */
  get(hash: string, address: string | undefined, clock: Clock): Verdict | undefined {
    if (this.#bypass) return undefined;
    let key = hash;
    let entry = this.#live(key, clock);
    if (entry?.verdict === "per-address") {
      key = addressKey(hash, address);
      entry = this.#live(key, clock);
    }
    if (entry === undefined || entry.verdict === "per-address") return undefined;
    return entry.verdict;
  }

  #live(key: string, clock: Clock): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (clock.monotonic() >= entry.useUntil || clock.now() >= entry.notAfter) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /**
   * Records a verdict asked at `askedAt` (monotonic). An older question
   * answered late never replaces a newer answer (a `REVOKED` learnt
   * meanwhile, say).
   */
  put(hash: string, address: string | undefined, verdict: Verdict, lifetime: Lifetime, askedAt: number, clock: Clock): void {
    if (this.#bypass || this.#capacity <= 0 || lifetime.ttlMs <= 0) return;
    const entry = { askedAt, useUntil: askedAt + lifetime.ttlMs, notAfter: lifetime.notAfter };
    if (lifetime.perAddress) {
      this.#set(hash, { ...entry, verdict: "per-address" }, clock);
      this.#set(addressKey(hash, address), { ...entry, verdict }, clock);
    } else {
      this.#set(hash, { ...entry, verdict }, clock);
    }
  }

  #set(key: string, entry: Entry, clock: Clock): void {
    const existing = this.#entries.get(key);
    if (existing !== undefined && existing.askedAt > entry.askedAt) return;
    if (existing === undefined && this.#entries.size >= this.#capacity) this.#makeRoom(clock);
    this.#entries.delete(key);
    this.#entries.set(key, entry);
  }

  /** Drops what is past use; if still full, a tenth: refusals first, then the oldest. */
  #makeRoom(clock: Clock): void {
    const mono = clock.monotonic();
    const now = clock.now();
    for (const [key, e] of this.#entries) {
      if (mono >= e.useUntil || now >= e.notAfter) this.#entries.delete(key);
    }
    let excess = this.#entries.size - this.#capacity + Math.max(1, Math.floor(this.#capacity / 10));
    if (excess <= 0) return;
    for (const [key, e] of this.#entries) {
      if (excess <= 0) return;
      if (typeof e.verdict === "object" && e.verdict.kind === "invalid") {
        this.#entries.delete(key);
        excess--;
      }
    }
    // A Map iterates in insertion order: the oldest first.
    for (const key of this.#entries.keys()) {
      if (excess <= 0) return;
      this.#entries.delete(key);
      excess--;
    }
  }

  /** Forgets every answer about the token with this id. */
  evictToken(id: string): void {
    for (const [key, e] of this.#entries) {
      if (typeof e.verdict !== "object") continue;
      const entryId = e.verdict.kind === "valid" ? e.verdict.token.id : e.verdict.tokenId;
      if (entryId === id) this.#entries.delete(key);
    }
  }

  /** Forgets every answer about tokens whose hash starts with `prefix` (hex). */
  evictHashPrefix(prefix: string): void {
    const p = prefix.toLowerCase();
    for (const key of this.#entries.keys()) {
      if (key.startsWith(p)) this.#entries.delete(key);
    }
  }

  clear(): void {
    this.#entries.clear();
  }

  /**
   * While on, nothing is served from the cache or kept in it, and what it
   * held is dropped: for when a change feed that evicts answers is down
   * and evictions could be missed.
   */
  bypass(on: boolean): void {
    this.#bypass = on;
    if (on) this.#entries.clear();
  }

  get bypassing(): boolean {
    return this.#bypass;
  }
}

function addressKey(hash: string, address: string | undefined): string {
  return `${hash}@${address ?? ""}`;
}
