/**
 * The credential format, checked offline: `<prefix>_<mode>_<body>`, the
 * body 30 random base62 characters and 6 encoding the CRC32 of everything
 * before them. A value failing this is refused without asking Tooken.
 */

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LEN = 36;
const CHECKSUM_LEN = 6;
/** The prefix of API keys; tokens have another. */
export const API_KEY_PREFIX = "tok";

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function encodeChecksum(crc: number): string {
  let out = "";
  for (let i = 0; i < CHECKSUM_LEN; i++) {
    out = BASE62[crc % 62] + out;
    crc = Math.floor(crc / 62);
  }
  return out;
}

/** What a well-formed credential says about itself. */
export interface CredentialShape {
  prefix: string;
  mode: "live" | "test";
  /** `api_key` for `tok_…`, `token` otherwise. */
  kind: "api_key" | "token";
}

const SHAPE = /^([a-z0-9]{2,12})_(live|test)_([0-9A-Za-z]{36})$/;

/** The credential's parts when `candidate` has the exact format and checksum; otherwise `null`. */
export function parseCredential(candidate: string): CredentialShape | null {
  const m = SHAPE.exec(candidate);
  if (m === null || m[3]!.length !== BODY_LEN) return null;
  const split = candidate.length - CHECKSUM_LEN;
  if (encodeChecksum(crc32(candidate.slice(0, split))) !== candidate.slice(split)) return null;
  const prefix = m[1]!;
  return { prefix, mode: m[2] as "live" | "test", kind: prefix === API_KEY_PREFIX ? "api_key" : "token" };
}

/** The display hint of a credential (`tkn_live_…9fQz`): never the secret. */
export function hintOf(credential: string): string {
  const shape = parseCredential(credential);
  if (shape === null) return "<malformed>";
  return `${shape.prefix}_${shape.mode}_…${credential.slice(-4)}`;
}
