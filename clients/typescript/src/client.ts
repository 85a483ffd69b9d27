import { Http, segment } from "./http.js";
import type { ClientOptions, RequestOptions } from "./http.js";
import { PageIterator } from "./pagination.js";
import { TookenError } from "./errors.js";
import type {
  AuditEvent,
  AuditLogFilters,
  CreateTokenParams,
  IntrospectParams,
  IntrospectResult,
  ListAuditLogParams,
  ListTokensParams,
  Page,
  RevokeTokenParams,
  RotateTokenParams,
  Settings,
  AuthzRule,
  AuthzRules,
  Token,
  TokenUsage,
  TokenUsageParams,
  TokenWithSecret,
  UpdateSettingsParams,
  UpdateTokenParams,
  VerifyParams,
  VerifyResult,
  Whoami,
} from "./types.js";

/** `tooken.tokens`: the tokens Tooken issues for your systems. */
export class Tokens {
  readonly #http: Http;

  constructor(http: Http) {
    this.#http = http;
  }

  /** Issues a token. Its `secret` is in the answer, and only there. */
  create(params: CreateTokenParams, options?: RequestOptions): Promise<TokenWithSecret> {
    return this.#http.json({ method: "POST", path: "/v1/tokens", json: params }, options);
  }

  /**
   * Tokens, newest first: `for await (const t of tokens.list())` follows
   * the cursor; `await tokens.list()` is the first page.
   */
  list(params: ListTokensParams = {}, options?: RequestOptions): PageIterator<Token> {
    const { starting_after, ...filters } = params;
    return new PageIterator<Token>(
      (cursor) =>
        this.#http.json<Page<Token>>(
          { method: "GET", path: "/v1/tokens", query: { ...filters, starting_after: cursor } },
          options,
        ),
      starting_after,
    );
  }

  get(id: string, options?: RequestOptions): Promise<Token> {
    return this.#http.json({ method: "GET", path: `/v1/tokens/${segment(id)}` }, options);
  }

  /** Changes what is given; `null` clears a field. */
  update(id: string, params: UpdateTokenParams, options?: RequestOptions): Promise<Token> {
    return this.#http.json({ method: "PATCH", path: `/v1/tokens/${segment(id)}`, json: params }, options);
  }

  /** A new secret for the same token; the old one works `grace_period_seconds` longer. */
  rotate(id: string, params: RotateTokenParams = {}, options?: RequestOptions): Promise<TokenWithSecret> {
    return this.#http.json({ method: "POST", path: `/v1/tokens/${segment(id)}/rotate`, json: params }, options);
  }

  /** Revokes the token and every token created through it. Idempotent. */
  revoke(id: string, params: RevokeTokenParams = {}, options?: RequestOptions): Promise<Token> {
    return this.#http.json({ method: "POST", path: `/v1/tokens/${segment(id)}/revoke`, json: params }, options);
  }

  /**
   * Verifies a token presented to your service. Always answers (unless
   * Tooken cannot be asked): `valid`, `code` and, when the token exists,
   * `token`. Needs an API key or a token with `tokens:verify`.
   */
  verify(params: VerifyParams, options?: RequestOptions): Promise<VerifyResult> {
    return this.#http.json({ method: "POST", path: "/v1/tokens/verify", json: params }, options);
  }

  /** RFC 7662 introspection (`POST /v1/oauth/introspect`). */
  introspect(params: IntrospectParams, options?: RequestOptions): Promise<IntrospectResult> {
    return this.#http.json(
      { method: "POST", path: "/v1/oauth/introspect", form: { token: params.token, token_type_hint: params.token_type_hint } },
      options,
    );
  }

  /** A token's use per day over the last `days` (default 30). */
  usage(id: string, params: TokenUsageParams = {}, options?: RequestOptions): Promise<TokenUsage> {
    return this.#http.json({ method: "GET", path: `/v1/tokens/${segment(id)}/usage`, query: params }, options);
  }
}

/** `tooken.auditLog`: the tamper-evident audit log (needs `audit:read`). */
export class AuditLog {
  readonly #http: Http;

  constructor(http: Http) {
    this.#http = http;
  }

  /** Events, newest first, following the cursor (or `await` for the first page). */
  list(params: ListAuditLogParams = {}, options?: RequestOptions): PageIterator<AuditEvent> {
    const { starting_after, ...filters } = params;
    return new PageIterator<AuditEvent>(
      (cursor) =>
        this.#http.json<Page<AuditEvent>>(
          { method: "GET", path: "/v1/audit-log", query: { ...filters, starting_after: cursor } },
          options,
        ),
      starting_after,
    );
  }

  /**
   * Every matching event, oldest first (chain order), read from the NDJSON
   * export as it streams: the whole log never has to fit in memory. An
   * error answer rejects before the first event.
   */
  async *export(filters: AuditLogFilters = {}, options?: RequestOptions): AsyncGenerator<AuditEvent, void, undefined> {
    const body = await this.exportStream(filters, options);
    let buffered = "";
    const decoder = new TextDecoder();
    const reader = body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        buffered += done ? decoder.decode() : decoder.decode(value, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) yield parseLine(line);
        }
        if (done) break;
      }
      if (buffered.trim()) yield parseLine(buffered.trim());
    } finally {
      reader.releaseLock();
      await body.cancel().catch(() => {});
    }
  }

  /** The NDJSON export's bytes as they arrive, e.g. to save as a file for `tooken audit verify`. */
  async exportStream(filters: AuditLogFilters = {}, options?: RequestOptions): Promise<ReadableStream<Uint8Array>> {
    const response = await this.#http.stream(
      { method: "GET", path: "/v1/audit-log/export", query: filters },
      options,
    );
    if (response.body === null) {
      throw new TookenError("invalid_response", "the audit export answer has no body", { status: response.status });
    }
    return response.body;
  }
}

function parseLine(line: string): AuditEvent {
  try {
    return JSON.parse(line) as AuditEvent;
  } catch (cause) {
    throw new TookenError("invalid_response", "the audit export holds a line that is not JSON", { cause });
  }
}

/** `tooken.settings`: the workspace policy (API keys only). */
export class SettingsResource {
  readonly #http: Http;

  constructor(http: Http) {
    this.#http = http;
  }

  get(options?: RequestOptions): Promise<Settings> {
    return this.#http.json({ method: "GET", path: "/v1/settings" }, options);
  }

  /** Changes what is given; `null` removes a limit. */
  update(params: UpdateSettingsParams, options?: RequestOptions): Promise<Settings> {
    return this.#http.json({ method: "PATCH", path: "/v1/settings", json: params }, options);
  }
}

/** `tooken.authz.rules`: the gateway route rules of the key's workspace and mode (API keys only). */
export class AuthzRulesResource {
  readonly #http: Http;

  constructor(http: Http) {
    this.#http = http;
  }

  /** The rules, first match wins, with warnings about rules that can never match. */
  get(options?: RequestOptions): Promise<AuthzRules> {
    return this.#http.json({ method: "GET", path: "/v1/authz/rules" }, options);
  }

  /** Replaces the rules; answers them as stored, with their warnings. */
  put(rules: AuthzRule[], options?: RequestOptions): Promise<AuthzRules> {
    return this.#http.json({ method: "PUT", path: "/v1/authz/rules", json: { rules } }, options);
  }
}

/** `tooken.authz`: what gateways enforce (docs/gateways.md). */
export class AuthzResource {
  readonly rules: AuthzRulesResource;

  constructor(http: Http) {
    this.rules = new AuthzRulesResource(http);
  }
}

/**
 * A client for the Tooken API.
 *
 * ```ts
 * const tooken = new Tooken({ apiKey: process.env.TOOKEN_API_KEY, baseUrl: "http://127.0.0.1:7878" });
 * const issued = await tooken.tokens.create({ name: "billing-sync", scopes: ["invoices:read"], expires_in: 3600 });
 * const verdict = await tooken.tokens.verify({ token: issued.secret, scopes: ["invoices:read"] });
 * ```
 *
 * Without options it reads `TOOKEN_API_KEY` and `TOOKEN_URL` (default
 * `http://127.0.0.1:7878`).
 */
export class Tooken {
  readonly tokens: Tokens;
  readonly auditLog: AuditLog;
  readonly settings: SettingsResource;
  readonly authz: AuthzResource;
  readonly #http: Http;

  constructor(options: ClientOptions = {}) {
    this.#http = new Http(options, true);
    this.tokens = new Tokens(this.#http);
    this.auditLog = new AuditLog(this.#http);
    this.settings = new SettingsResource(this.#http);
    this.authz = new AuthzResource(this.#http);
  }

  /** The base URL this client talks to. */
  get baseUrl(): string {
    return this.#http.baseUrl;
  }

  /** The calling credential: kind, id, workspace, mode, scopes. */
  whoami(options?: RequestOptions): Promise<Whoami> {
    return this.#http.json({ method: "GET", path: "/v1/whoami" }, options);
  }

  /** `GET /healthz`: true when the server answers `200`. Throws when it cannot be reached. */
  async health(options?: RequestOptions): Promise<boolean> {
    const { status } = await this.#http.probe({ method: "GET", path: "/healthz", anonymous: true }, options);
    return status === 200;
  }

  /** `GET /readyz`: true when the server can reach its store, false when it answers `503`. */
  async ready(options?: RequestOptions): Promise<boolean> {
    const { status } = await this.#http.probe({ method: "GET", path: "/readyz", anonymous: true }, options);
    return status === 200;
  }

  /** `GET /metrics`: Prometheus (OpenMetrics) text. */
  metrics(options?: RequestOptions): Promise<string> {
    return this.#http.text({ method: "GET", path: "/metrics", anonymous: true }, options);
  }

  /** `GET /v1/openapi.json`: the OpenAPI 3 document of the server's API. */
  openapi(options?: RequestOptions): Promise<Record<string, unknown>> {
    return this.#http.json({ method: "GET", path: "/v1/openapi.json" }, options);
  }
}
