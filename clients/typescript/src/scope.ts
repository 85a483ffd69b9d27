/** Scopes such as `invoices:read`, and how they cover each other. */

const MAX_SCOPE_LEN = 64;
const SCOPE = /^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$/;

/** Is `scope` a valid scope (`^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$`, at most 64 characters)? */
export function isValidScope(scope: string): boolean {
  return scope.length > 0 && scope.length <= MAX_SCOPE_LEN && SCOPE.test(scope);
}

/**
 * Does the `granted` scope cover the `required` one? Segments are compared
 * one by one; `*` matches any one segment, and a last `*` one or more: so
 * `invoices:*` covers `invoices:read` and `invoices:read:own`, not `invoices`.
 */
export function covers(granted: string, required: string): boolean {
  if (granted === required) return true;
  const g = granted.split(":");
  const w = required.split(":");
  for (let i = 0; i < g.length; i++) {
    const last = i === g.length - 1;
    if (i >= w.length) return false;
    if (g[i] === "*" && last) return true;
    if (g[i] === "*" || g[i] === w[i]) continue;
    return false;
  }
  return g.length === w.length;
}

/** Does any of `scopes` cover `required`? */
export function hasScope(scopes: readonly string[], required: string): boolean {
  return scopes.some((s) => covers(s, required));
}
