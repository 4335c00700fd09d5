/**
 * The canonical forms the element checksums hash (`../checksum.ts`, `../legacy-checksums.ts`): JSON with sorted keys
 * for the descriptive parts, little-endian bytes for the numeric arrays. Equal values give equal bytes in any process
 * on any machine.
 */
import type { Hash } from "node:crypto";
import * as os from "node:os";

/**
 * Canonical JSON: object keys sorted, `undefined` members dropped, `undefined` as `null`. Two equal values always
 * serialise to the same string, in any process.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
}

const LITTLE_ENDIAN = os.endianness() === "LE";

/** Feeds `arr` to `hash` as little-endian bytes (float64 or uint32 per element), on any machine. */
export function updateLittleEndian(hash: Hash, arr: Float64Array | Uint32Array): void {
  const buf = Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
  if (LITTLE_ENDIAN) hash.update(buf);
  else hash.update(arr instanceof Float64Array ? Buffer.from(buf).swap64() : Buffer.from(buf).swap32());
}
