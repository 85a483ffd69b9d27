/**
 * The API's request and response bodies. Field names are the API's own
 * (snake_case), exactly as in `GET /v1/openapi.json`, so a field the API
 * adds is one more optional property here, and anything the server sends
 * that this version does not know still reaches you unchanged.
 */

/** An RFC 3339 UTC time, as the API sends it (`2030-01-01T00:00:00Z`). */
export type Timestamp = string;
/** A time in a request: an RFC 3339 string or a `Date`. */
export type TimeInput = string | Date;

/** `live` or `test`: a credential only sees and creates objects of its own mode. */
export type Mode = "live" | "test";

export type TokenStatus = "active" | "expired" | "revoked";

/**
 * The outcome of a verification. Codes a newer server may add arrive as
 * they are.
 */
export type VerifyCode =
  | "VALID"
  | "MALFORMED"
  | "NOT_FOUND"
  | "EXPIRED"
  | "REVOKED"
  | "INSUFFICIENT_SCOPE"
  | "IP_NOT_ALLOWED"
  | "RATE_LIMITED"
  | "USAGE_EXCEEDED"
  | (string & {});

/** A token, as the API shows it. Never includes the secret. */
export interface Token {
  id: string;
  name: string;
  description: string | null;
  mode: Mode;
  scopes: string[];
  metadata: Record<string, unknown> | null;
  /** Prefix, mode and last four characters of the current secret (`tkn_live_…9fQz`). */
  hint: string;
  status: TokenStatus;
  created_at: Timestamp;
  /** The id of the API key or token that created it. */
  created_by: string;
  expires_at: Timestamp | null;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
  /** The token through which it was created, if any. */
  parent_id: string | null;
}

/** A token with its secret: the only time the secret is shown. */
export interface TokenWithSecret extends Token {
  /** Shown once; Tooken keeps only its SHA-256. */
  secret: string;
}

/** `POST /v1/tokens`. */
export interface CreateTokenParams {
  /** 1–128 characters. */
  name: string;
  description?: string;
  /** At most 50, each like `invoices:read` (`^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$`). */
  scopes?: string[];
  /** A JSON object of at most 4 KiB, returned on verify. */
  metadata?: Record<string, unknown>;
  /** Give this or `expires_in`, not both. */
  expires_at?: TimeInput;
  /** Lifetime in seconds from now. */
  expires_in?: number;
}

/** `PATCH /v1/tokens/{id}`: absent fields are left alone; `null` clears. */
export interface UpdateTokenParams {
  name?: string;
  description?: string | null;
  metadata?: Record<string, unknown> | null;
  scopes?: string[];
  /** `null` removes the expiry (if the workspace policy allows). */
  expires_at?: TimeInput | null;
}

/** `POST /v1/tokens/{id}/rotate`. */
export interface RotateTokenParams {
  /** 0–604800 seconds during which the previous secret keeps working (default 0). */
  grace_period_seconds?: number;
}

/** `POST /v1/tokens/{id}/revoke`. */
export interface RevokeTokenParams {
  /** Why, for the audit log (at most 256 characters). */
  reason?: string;
}

/** `GET /v1/tokens`. */
export interface ListTokensParams {
  /** Tokens per page, 1–100 (default 20). */
  limit?: number;
  /** A token id: the page starts after it. */
  starting_after?: string;
  status?: TokenStatus;
  /** Only tokens carrying exactly this scope. */
  scope?: string;
  /** Only tokens whose name starts with this. */
  name?: string;
}

/** One page of a list, newest first. */
export interface Page<T> {
  data: T[];
  has_more: boolean;
  /** Pass as `starting_after` for the next page; `null` on the last page. */
  next_cursor: string | null;
}

/** `POST /v1/tokens/verify`. */
export interface VerifyParams {
  /** The token a client presented to your service. */
  token: string;
  /** Scopes the token must hold (`invoices:*` covers `invoices:read`). */
  scopes?: string[];
}

/** What a downstream service needs to know about a verified token. */
export interface VerifiedToken {
  id: string;
  name: string;
  scopes: string[];
  metadata: Record<string, unknown> | null;
  expires_at: Timestamp | null;
  mode: Mode;
}

/** A named rate limit's state after a verification (servers with caveats). */
export interface RateLimitState {
  name: string;
  limit: number;
  remaining: number;
  reset_at: Timestamp;
}

/** The answer of `POST /v1/tokens/verify`. */
export interface VerifyResult {
  /** True exactly when `code` is `VALID`. */
  valid: boolean;
  code: VerifyCode;
  /** Present whenever the token exists (in the caller's workspace and mode). */
  token?: VerifiedToken;
  /** The latest time this answer may be reused, when the server says. */
  cache_until?: Timestamp;
  /** The budget left after this call, for tokens that have one. */
  remaining_uses?: number;
  /** The rate limits' state after this call, for tokens that have them. */
  rate_limits?: RateLimitState[];
  /** With `RATE_LIMITED`: seconds until a verification may succeed again. */
  retry_after_seconds?: number;
}

/** `POST /v1/oauth/introspect` (RFC 7662). */
export interface IntrospectParams {
  token: string;
  /** Accepted and ignored, as RFC 7662 allows. */
  token_type_hint?: string;
}

/** RFC 7662 answer. An inactive token gets `{ active: false }` only. */
export interface IntrospectResult {
  active: boolean;
  /** Space-separated scopes. */
  scope?: string;
  exp?: number;
  iat?: number;
  sub?: string;
  client_id?: string;
  token_type?: string;
}

/** One day of a token's use (UTC). */
export interface DailyUsage {
  /** `YYYY-MM-DD`. */
  date: string;
  /** Successful verifications of the token. */
  verifications: number;
  /** Calls to the Tooken API made with the token. */
  api_calls: number;
}

/** `GET /v1/tokens/{id}/usage`: days without use are left out. */
export interface TokenUsage {
  token_id: string;
  last_used_at: Timestamp | null;
  data: DailyUsage[];
}

/** `GET /v1/tokens/{id}/usage`. */
export interface TokenUsageParams {
  /** How many days back, 1–90 (default 30), today included. */
  days?: number;
}

/** Who did something. */
export interface AuditActor {
  /** `api_key`, `token`, `admin`, `user` or `system`. */
  kind: string;
  id: string | null;
  /** The credential's display hint; never the secret. */
  hint: string | null;
}

/** One audit event, as stored, exported and hashed. */
export interface AuditEvent {
  id: string;
  workspace_id: string;
  /** Position in the workspace's chain, from 1. */
  seq: number;
  occurred_at: Timestamp;
  mode: Mode | null;
  actor: AuditActor;
  /** e.g. `token.created`, `token.revoked`, `auth.failed`. */
  action: string;
  target: { kind: string; id: string } | null;
  client_addr: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
  /** Hex SHA-256 of the previous event in this workspace. */
  prev_hash: string;
  /** Hex SHA-256 over `prev_hash` and this event's other fields. */
  hash: string;
}

/** Filters for the audit log. */
export interface AuditLogFilters {
  /** e.g. `token.revoked`. */
  action?: string;
  /** The id of the API key or token that acted. */
  actor?: string;
  /** The id of the object acted on. */
  target?: string;
  /** Events at or after this time. */
  since?: TimeInput;
  /** Events before this time. */
  until?: TimeInput;
}

/** `GET /v1/audit-log`: filters and paging. */
export interface ListAuditLogParams extends AuditLogFilters {
  /** Events per page, 1–100 (default 20). */
  limit?: number;
  /** An event id from a previous page. */
  starting_after?: string;
}

/** Workspace policy. */
export interface Settings {
  /** Every new token must have an expiry (given, or the default TTL). */
  require_expiration: boolean;
  /** Longest lifetime a new or updated token may have. */
  max_token_ttl_seconds: number | null;
  /** Lifetime given to new tokens that do not ask for one. */
  default_token_ttl_seconds: number | null;
  /** Prefix of new tokens: 2–12 lowercase letters or digits, not `tok`. */
  token_prefix: string;
  /** Audit events older than this are pruned; `null` keeps them forever. */
  audit_retention_days: number | null;
}

/** `PATCH /v1/settings`: absent fields are left alone; `null` removes a limit. */
export interface UpdateSettingsParams {
  require_expiration?: boolean;
  max_token_ttl_seconds?: number | null;
  default_token_ttl_seconds?: number | null;
  token_prefix?: string;
  audit_retention_days?: number | null;
}

/** A gateway route rule (SPEC §12), as stored: methods in capitals. */
export interface AuthzRule {
  /** A list of methods (any case when sent), or `"*"` for every method. */
  methods: string[] | "*";
  /** Case-sensitive; `*` is one segment, `**` zero or more (`/invoices/**` also matches `/invoices`). */
  path: string;
  /** All required of the token. */
  scopes?: string[];
  /** A public route: no token needed (no scopes or cost then). */
  anonymous?: boolean;
  /** What a match spends of a token's limits (0 to 1,000,000; 1 when absent). */
  cost?: number;
}

/** A rule that can never match: earlier rules catch every request it would. */
export interface AuthzRuleWarning {
  /** The rule: `rules[3]`. */
  field: string;
  message: string;
  /** Indexes of the earlier rules that catch its requests. */
  shadowed_by: number[];
}

/** The route rules of a workspace and mode, first match wins, with their warnings. */
export interface AuthzRules {
  rules: AuthzRule[];
  warnings: AuthzRuleWarning[];
}

/** The calling credential. */
export interface Whoami {
  /** `api_key` or `token`. */
  kind: string;
  id: string;
  name: string;
  hint: string;
  workspace: { id: string; name: string };
  mode: Mode;
  /** What the credential may do. */
  scopes: string[];
}
