/**
 * Reading the environment without Node's types: `process.env` where there
 * is one (Node, Bun, Deno 2), `Deno.env` otherwise; nothing on Workers.
 */
export function readEnv(name: string): string | undefined {
  const g = globalThis as {
    process?: { env?: Record<string, string | undefined> };
    Deno?: { env?: { get(name: string): string | undefined } };
  };
  try {
    const value = g.process?.env?.[name] ?? g.Deno?.env?.get(name);
    return value === undefined || value === "" ? undefined : value;
  } catch {
    // Deno without --allow-env throws: treat as unset.
    return undefined;
  }
}
