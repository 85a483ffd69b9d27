/**
 * Hono middleware (any runtime Hono runs on):
 *
 * ```ts
 * import { Hono } from "hono";
 * import { TookenVerifier } from "@tooken/client";
 * import { requireToken, type TookenEnv } from "@tooken/client/hono";
 *
 * const verifier = new TookenVerifier({ verifyKey: env.TOOKEN_VERIFY_KEY, baseUrl: env.TOOKEN_URL });
 * const app = new Hono<TookenEnv>();
 * app.get("/invoices", requireToken("invoices:read", { verifier }), (c) => c.json({ id: c.get("tooken").id }));
 * ```
 */
import type { Context, MiddlewareHandler } from "hono";
import { TookenVerifier } from "./verifier.js";
import type { VerifiedToken } from "./types.js";
import { isValidScope } from "./scope.js";

/** The variables the middleware sets: `c.get("tooken")` is the verified token. */
export type TookenEnv = { Variables: { tooken: VerifiedToken } };

export interface HonoOptions {
  /** The verifier (and so the cache) to use; default one from the environment, shared. */
  verifier?: TookenVerifier;
  /**
   * The client's address, for tokens bound to addresses. Default: the
   * socket's address under `@hono/node-server` (`c.env.incoming`), else
   * none. Behind a proxy, derive it from headers only the proxy sets.
   */
  clientIp?: (c: Context) => string | undefined;
}

let shared: TookenVerifier | undefined;

function defaultVerifier(): TookenVerifier {
  shared ??= new TookenVerifier();
  return shared;
}

function socketAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}

/**
 * Requires a valid Tooken token (`Authorization: Bearer …`) and, when
 * `scope` is given, one covering it; the token is then `c.get("tooken")`.
 * Refusals are Tooken's own `401`/`403` bodies, `429` with `Retry-After`
 * for a rate-limited token, and `503` when Tooken cannot be asked.
 */
export function requireToken(scope?: string, options: HonoOptions = {}): MiddlewareHandler<TookenEnv> {
  if (scope !== undefined && !isValidScope(scope)) {
    throw new TypeError(`requireToken(${JSON.stringify(scope)}): not a valid scope (like invoices:read)`);
  }
  const clientIp = options.clientIp ?? socketAddress;
  return async (c, next) => {
    const verifier = options.verifier ?? defaultVerifier();
    const result = await verifier.authenticate(c.req.header("authorization"), {
      scope,
      clientIp: clientIp(c),
    });
    if (!result.ok) {
      return c.json(result.refusal.body, result.refusal.status, result.refusal.headers);
    }
    c.set("tooken", result.token);
    await next();
  };
}
