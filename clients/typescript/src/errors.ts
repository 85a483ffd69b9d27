/**
 * Errors. Every failure of a call is a {@link TookenError}; the API's
 * answers become the subclass for their status, so callers can catch
 * exactly what they handle:
 *
 * ```ts
 * try {
 *   await tooken.tokens.get(id);
 * } catch (e) {
 *   if (e instanceof NotFoundError) return null;
 *   throw e;
 * }
 * ```
 */

/** What the API sends with every error answer. */
export interface ErrorBody {
  /** `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, … */
  error: string;
  message: string;
  /** The request field at fault, for validation errors (`scopes[2]`). */
  field?: string;
  /** The scope the operation needs, for `forbidden`. */
  required_scope?: string;
}

/** Where an error came from, beside the API's body. */
export interface ErrorDetails {
  status?: number;
  requestId?: string;
  field?: string;
  requiredScope?: string;
  retryAfter?: number;
  body?: unknown;
  headers?: Headers;
  cause?: unknown;
}

/** The base of every error this package throws. */
export class TookenError extends Error {
  /**
   * The API's error code (`unauthorized`, `not_found`, …), or for failures
   * without an answer `connection_error`, `timeout`, `configuration` or
   * `invalid_response`.
   */
  readonly error: string;
  /** The request field at fault, for validation errors. */
  readonly field: string | undefined;
  /** The scope the operation needs, for `forbidden`. */
  readonly requiredScope: string | undefined;
  /** The HTTP status, when Tooken answered. */
  readonly status: number | undefined;
  /** The `x-request-id` of the answer: quote it when reporting a problem. */
  readonly requestId: string | undefined;
  /** The answer's `Retry-After`, in seconds, when it had one. */
  readonly retryAfter: number | undefined;
  /** The answer's body, parsed when it was JSON. */
  readonly body: unknown;
  /** The answer's headers. */
  readonly headers: Headers | undefined;

  constructor(error: string, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.error = error;
    this.field = details.field;
    this.requiredScope = details.requiredScope;
    this.status = details.status;
    this.requestId = details.requestId;
    this.retryAfter = details.retryAfter;
    this.body = details.body;
    this.headers = details.headers;
  }
}

/** `400`: a parameter or the body is invalid (`field` names it). */
export class InvalidRequestError extends TookenError {}
/** `413`: the body is larger than the API accepts. */
export class PayloadTooLargeError extends InvalidRequestError {}
/** `401`: the credential is missing, malformed, unknown, revoked or expired. */
export class AuthenticationError extends TookenError {}
/** `403`: the credential is valid but lacks `requiredScope`. */
export class PermissionDeniedError extends TookenError {}
/** `404`: no such object in the credential's workspace and mode. */
export class NotFoundError extends TookenError {}
/** `408`: the server did not receive the whole request in time. */
export class RequestTimeoutError extends TookenError {}
/** `409`: the object's state does not allow it (e.g. updating a revoked token). */
export class ConflictError extends TookenError {}
/** `429`: too many requests (see `retryAfter`). */
export class RateLimitError extends TookenError {}
/** `500` and other server errors. */
export class InternalServerError extends TookenError {}
/** `503`: Tooken cannot serve the request right now (see `retryAfter`). */
export class ServiceUnavailableError extends TookenError {}
/** No answer: connection refused or reset, DNS failure, TLS failure. */
export class ConnectionError extends TookenError {}
/** No answer within the timeout. A POST that timed out may have been applied. */
export class TimeoutError extends ConnectionError {}
/** The client is not configured (no API key, a base URL that is not http(s)). */
export class ConfigurationError extends TookenError {}

const byStatus: Record<number, new (error: string, message: string, details?: ErrorDetails) => TookenError> = {
  400: InvalidRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  408: RequestTimeoutError,
  409: ConflictError,
  413: PayloadTooLargeError,
  429: RateLimitError,
  503: ServiceUnavailableError,
};

const fallbackCodes: Record<number, string> = {
  400: "invalid_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  408: "request_timeout",
  409: "conflict",
  413: "payload_too_large",
  429: "rate_limited",
  503: "unavailable",
};

/** The error an answer with `status`, `headers` and `text` as its body stands for. */
export function errorFromAnswer(status: number, headers: Headers, text: string, retryAfter: number | undefined): TookenError {
  let parsed: unknown = text;
  let body: Partial<ErrorBody> = {};
  try {
    parsed = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object") body = parsed as Partial<ErrorBody>;
  } catch {
    // Not the API's error shape (a proxy's page, say): described by status.
  }
  const code = typeof body.error === "string" ? body.error : (fallbackCodes[status] ?? (status >= 500 ? "internal" : "error"));
  const message = typeof body.message === "string" ? body.message : `HTTP ${status}`;
  const Class = byStatus[status] ?? (status >= 500 ? InternalServerError : TookenError);
  return new Class(code, message, {
    status,
    requestId: headers.get("x-request-id") ?? undefined,
    retryAfter,
    body: parsed,
    headers,
    field: typeof body.field === "string" ? body.field : undefined,
    requiredScope: typeof body.required_scope === "string" ? body.required_scope : undefined,
  });
}
