/**
 * Express middleware (Express 4 and 5):
 *
 * ```ts
 * import express from "express";
 * import { TookenVerifier } from "@tooken/client";
 * import { requireToken, getToken } from "@tooken/client/express";
 *
 * const verifier = new TookenVerifier(); // TOOKEN_URL, TOOKEN_VERIFY_KEY
 * const app = express();
 * app.get("/invoices", requireToken("invoices:read", { verifier }), (req, res) => {
 *   res.json({ customer: getToken(req).metadata?.customer });
 * });
 * ```
 *
 * Written against Express's shapes, not its types: this module imports
 * nothing from Express.
 */
import { TookenVerifier } from "./verifier.js";
import type { Authentication } from "./verifier.js";
import type { VerifiedToken } from "./types.js";
import { isValidScope } from "./scope.js";

/** What the middleware reads of a request. */
export interface ExpressRequestLike {
  headers: { authorization?: string | string[] | undefined };
  /** Express's client address (honours `trust proxy`). */
  ip?: string | undefined;
  socket?: { remoteAddress?: string | undefined } | undefined;
}

/** What the middleware uses of a response. */
export interface ExpressResponseLike {
  status(code: number): unknown;
  set(field: Record<string, string>): unknown;
  json(body: unknown): unknown;
  locals?: Record<string, unknown>;
}

export type ExpressNext = (error?: unknown) => void;

export type ExpressMiddleware = (req: ExpressRequestLike, res: ExpressResponseLike, next: ExpressNext) => void;

export interface ExpressOptions {
  /** The verifier (and so the cache) to use; default one from the environment, shared. */
  verifier?: TookenVerifier;
  /** The client's address, for tokens bound to addresses (default `req.ip`). */
  clientIp?: (req: ExpressRequestLike) => string | undefined;
}

const TOKEN = Symbol.for("tooken.token");

let shared: TookenVerifier | undefined;

/** The verifier made from the environment, made on first use. */
function defaultVerifier(): TookenVerifier {
  shared ??= new TookenVerifier();
  return shared;
}

/**
 * Requires a valid Tooken token (`Authorization: Bearer …`) and, when
 * `scope` is given, one covering it. The verified token is then
 * {@link getToken}`(req)` (also `req.tooken` and `res.locals.tooken`).
 * Refusals are Tooken's own `401`/`403` bodies, `429` with `Retry-After`
 * for a rate-limited token, and `503` when Tooken cannot be asked.
 */
export function requireToken(scope?: string, options: ExpressOptions = {}): ExpressMiddleware {
  if (scope !== undefined && !isValidScope(scope)) {
    throw new TypeError(`requireToken(${JSON.stringify(scope)}): not a valid scope (like invoices:read)`);
  }
  const clientIp = options.clientIp ?? ((req: ExpressRequestLike) => req.ip ?? req.socket?.remoteAddress);
  return (req, res, next) => {
    const verifier = options.verifier ?? defaultVerifier();
    verifier
      .authenticate(req.headers.authorization, { scope, clientIp: clientIp(req) })
      .then((result: Authentication) => {
        if (result.ok) {
          const r = req as ExpressRequestLike & { tooken?: VerifiedToken; [TOKEN]?: VerifiedToken };
          r[TOKEN] = result.token;
          r.tooken = result.token;
          if (res.locals) res.locals.tooken = result.token;
          next();
          return;
        }
        res.status(result.refusal.status);
        res.set(result.refusal.headers);
        res.json(result.refusal.body);
      })
      .catch(next);
  };
}

/**
 * The token {@link requireToken} verified for this request. Throws when
 * there is none: the route lacks the middleware, a wiring mistake that
 * must not let the request through.
 */
export function getToken(req: object): VerifiedToken {
  const token = (req as { [TOKEN]?: VerifiedToken })[TOKEN];
  if (token === undefined) {
    throw new Error("no verified Tooken token on this request: put requireToken(…) before this handler");
  }
  return token;
}
