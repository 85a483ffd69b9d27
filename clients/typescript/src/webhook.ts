/**
 * Checking the signature of a webhook Tooken sent (the Standard Webhooks
 * convention): `webhook-signature: v1,<base64 HMAC-SHA256 of
 * "<webhook-id>.<webhook-timestamp>.<body>">`, keyed by the endpoint's
 * secret (`whsec_` + base64).
 */
import { getSubtle } from "./crypto.js";
import { ConfigurationError, TookenError } from "./errors.js";

/** How far a webhook's timestamp may be from now unless told otherwise: 5 minutes. */
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;

/** A webhook's payload. `data` is the object as the API shows it. */
export interface WebhookEvent<D = Record<string, unknown>> {
  /** e.g. `token.revoked`. */
  type: string;
  timestamp: string;
  data: D;
}

/** Request headers: a fetch `Headers`, or Node's/Express's plain object. */
export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

/** The raw request body, exactly as received (not a parsed object). */
export type RawBody = string | Uint8Array | ArrayBuffer;

export interface VerifyWebhookOptions {
  /** How far the timestamp may be from now, either way (default 300 s). */
  toleranceSeconds?: number;
  /** The time to check against (default now). */
  now?: Date | number;
}

/**
 * Why a webhook was refused; the same names as tooken-core's and the
 * Python SDK's receivers.
 */
export type WebhookRefusal =
  | "missing_header"
  | "invalid_timestamp"
  | "timestamp_too_old"
  | "timestamp_too_new"
  | "no_matching_signature"
  | "invalid_body";

/** A webhook that is not provably from Tooken: refuse it (answer `400`). */
export class WebhookVerificationError extends TookenError {
  /** Why, as a stable name. */
  readonly reason: WebhookRefusal;

  constructor(reason: WebhookRefusal, message: string) {
    super("invalid_webhook", message);
    this.reason = reason;
  }
}

/** Secrets are 24 to 64 bytes of key. */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
/** The largest timestamp the Rust receivers read (an i64). */
const MAX_TIMESTAMP = 9223372036854775807n;

const encoder = new TextEncoder();

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") {
    return (headers as Headers).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  let value = record[name];
  if (value === undefined) {
    const key = Object.keys(record).find((k) => k.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  return Array.isArray(value) ? value.join(" ") : value;
}

function bytesOf(body: RawBody): Uint8Array {
  if (typeof body === "string") return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError(
    "verifyWebhook needs the raw request body (a string or bytes), not a parsed object: " +
      "e.g. express.raw({ type: 'application/json' }), or await c.req.text() in Hono",
  );
}

function base64ToBytes(text: string): Uint8Array<ArrayBuffer> | null {
  try {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

async function keyOf(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  const raw = base64ToBytes(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret);
  if (raw === null || raw.length < MIN_SECRET_BYTES || raw.length > MAX_SECRET_BYTES) {
    throw new ConfigurationError(
      "configuration",
      "the webhook secret is not whsec_ followed by the base64 of 24 to 64 bytes",
    );
  }
  return (await getSubtle()).importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

function signedContent(id: string, timestamp: string, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${id}.${timestamp}.`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/**
 * Checks that a webhook comes from Tooken and is recent, and returns its
 * parsed payload. Throws {@link WebhookVerificationError} otherwise.
 *
 * `secret` is the endpoint's signing secret; during a secret rotation pass
 * both the old and the new one. `body` must be the raw body as received:
 * re-serialized JSON would not match the signature.
 */
export async function verifyWebhook<D = Record<string, unknown>>(
  secret: string | readonly string[],
  headers: HeaderSource,
  body: RawBody,
  options: VerifyWebhookOptions = {},
): Promise<WebhookEvent<D>> {
  const bytes = bytesOf(body);
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  for (const [name, value] of [
    ["webhook-id", id],
    ["webhook-timestamp", timestamp],
    ["webhook-signature", signatures],
  ] as const) {
    if (value === undefined) throw new WebhookVerificationError("missing_header", `no ${name} header`);
  }
  if (!/^\d+$/.test(timestamp!) || BigInt(timestamp!) > MAX_TIMESTAMP) {
    throw new WebhookVerificationError("invalid_timestamp", "the webhook-timestamp header is not a number of seconds");
  }
  const tolerance = options.toleranceSeconds ?? DEFAULT_WEBHOOK_TOLERANCE_SECONDS;
  const nowMs = options.now === undefined ? Date.now() : Number(options.now);
  const skew = Math.floor(nowMs / 1000) - Number(timestamp);
  if (skew > tolerance) {
    throw new WebhookVerificationError("timestamp_too_old", "the webhook is too old (its timestamp is outside the tolerance)");
  }
  if (-skew > tolerance) {
    throw new WebhookVerificationError("timestamp_too_new", "the webhook's timestamp is too far in the future");
  }

  const content = signedContent(id!, timestamp!, bytes);
  const subtle = await getSubtle();
  const secrets = typeof secret === "string" ? [secret] : secret;
  if (secrets.length === 0) throw new ConfigurationError("configuration", "no webhook secret given");
  const keys = await Promise.all(secrets.map((s) => keyOf(s, "verify")));
  let verified = false;
  for (const candidate of signatures!.split(" ")) {
    const comma = candidate.indexOf(",");
    if (comma < 0 || candidate.slice(0, comma) !== "v1") continue;
    const signature = base64ToBytes(candidate.slice(comma + 1));
    if (signature === null) continue;
    for (const key of keys) {
      // HMAC verification by Web Crypto compares in constant time.
      if (await subtle.verify("HMAC", key, signature, content)) verified = true;
    }
  }
  if (!verified) {
    throw new WebhookVerificationError("no_matching_signature", "no valid signature: not signed with this secret");
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as WebhookEvent<D>;
  } catch {
    throw new WebhookVerificationError("invalid_body", "the signed body is not JSON");
  }
}

/**
 * The `webhook-signature` value Tooken would send for this id, timestamp
 * and body: for testing your own webhook handler.
 */
export async function signWebhook(secret: string, id: string, timestamp: number | string, body: RawBody): Promise<string> {
  const key = await keyOf(secret, "sign");
  const mac = await (await getSubtle()).sign("HMAC", key, signedContent(id, String(timestamp), bytesOf(body)));
  return `v1,${bytesToBase64(new Uint8Array(mac))}`;
}
