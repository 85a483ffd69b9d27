/**
 * `@tooken/client`: the Tooken API from TypeScript and JavaScript, on any
 * runtime with `fetch` (Node ≥ 18, Deno, Bun, Workers).
 *
 * - {@link Tooken}: the API client (`tokens`, `auditLog`, `settings`, `whoami`, health).
 * - {@link TookenVerifier}: verifying tokens in your service, with a short
 *   cache; the middleware in `@tooken/client/express` and `@tooken/client/hono` use it.
 * - {@link verifyWebhook}: checking a webhook's signature.
 */
export { Tooken, Tokens, AuditLog, SettingsResource, AuthzResource, AuthzRulesResource } from "./client.js";
export {
  DEFAULT_BASE_URL,
  DEFAULT_MAX_RETRIES,
  DEFAULT_MAX_RETRY_AFTER_SECONDS,
  DEFAULT_TIMEOUT_MS,
} from "./http.js";
export type { ClientOptions, RequestOptions } from "./http.js";
export { PageIterator } from "./pagination.js";
export {
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
  TookenError,
} from "./errors.js";
export type { ErrorBody } from "./errors.js";
export {
  TookenVerifier,
  DEFAULT_CACHE_CAPACITY,
  DEFAULT_CACHE_TTL_MS,
  DEFAULT_NEGATIVE_CACHE_TTL_MS,
  DEFAULT_VERIFY_TIMEOUT_MS,
  UNAUTHORIZED_MESSAGE,
} from "./verifier.js";
export type { Authentication, AuthenticateOptions, Clock, Refusal, VerifierOptions } from "./verifier.js";
export {
  DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
  WebhookVerificationError,
  signWebhook,
  verifyWebhook,
} from "./webhook.js";
export type { HeaderSource, RawBody, VerifyWebhookOptions, WebhookEvent, WebhookRefusal } from "./webhook.js";
export { parseCredential, hintOf } from "./credential.js";
export type { CredentialShape } from "./credential.js";
export { covers, hasScope, isValidScope } from "./scope.js";
export { VERSION } from "./version.js";
export type * from "./types.js";
