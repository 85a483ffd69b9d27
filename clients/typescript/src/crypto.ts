/**
 * Web Crypto, wherever it is: the global `crypto.subtle` (Node ≥ 19, Deno,
 * Bun, Workers, browsers), or Node 18's `webcrypto`.
 */
let subtle: Promise<SubtleCrypto> | undefined;

export function getSubtle(): Promise<SubtleCrypto> {
  subtle ??= (async () => {
    const global = (globalThis as { crypto?: Crypto }).crypto;
    if (global?.subtle) return global.subtle;
    // Node 18 keeps Web Crypto out of the globals. The specifier is a
    // variable so that bundlers for other runtimes leave it alone.
    const nodeCrypto = "node:crypto";
    const mod = (await import(nodeCrypto)) as { webcrypto?: Crypto };
    if (mod.webcrypto?.subtle) return mod.webcrypto.subtle;
    throw new Error("no Web Crypto (crypto.subtle) on this runtime");
  })();
  return subtle;
}

const encoder = new TextEncoder();

/** Hex SHA-256 of `text`'s UTF-8 bytes. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await (await getSubtle()).digest("SHA-256", encoder.encode(text));
  let hex = "";
  for (const b of new Uint8Array(digest)) hex += b.toString(16).padStart(2, "0");
  return hex;
}
