/**
 * Texts passed to Temporal (docs/architecture.md "Decisions"): Temporal's gRPC API carries strings as UTF-8 and
 * refuses one that is not valid UTF-8 (a JavaScript string with a lone surrogate encodes to such bytes), and its
 * server limits count bytes. Every text the service sends to Temporal from user input is checked here first, so a
 * bad one is a 400 with a clear message rather than a failure half-way between the record and Temporal. Pure.
 */
import { z } from "zod";

/** A UTF-16 surrogate not paired with its other half (with the `u` flag a valid pair is one code point, not `Cs`). */
const LONE_SURROGATE = /\p{Cs}/u;

/** True when `s` is well-formed Unicode (no lone UTF-16 surrogate; what `String.prototype.isWellFormed` tells). */
export function isWellFormedText(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

export const WELL_FORMED_MESSAGE = (field: string) =>
  `${field} must be well-formed Unicode text (it contains a lone UTF-16 surrogate, half of a character)`;

/**
 * A text that is passed to Temporal (a schedule note, a summary, a search attribute value, a memo): Temporal's
 * gRPC API carries it as UTF-8 and refuses a string that is not valid UTF-8, so it must be well-formed Unicode, and
 * within `maxCharacters` characters and `maxBytes` bytes of UTF-8 (Temporal's limits count bytes).
 */
export const temporalText = (field: string, maxCharacters: number, maxBytes: number) =>
  z
    .string()
    .max(maxCharacters, `${field} must be at most ${maxCharacters} characters`)
    .refine(isWellFormedText, WELL_FORMED_MESSAGE(field))
    .refine(
      (s) => new TextEncoder().encode(s).length <= maxBytes,
      `${field} must be at most ${maxBytes} bytes in UTF-8`,
    );

/**
 * Budget (bytes) for a workflow summary's JSON text: Temporal's default `limit.userMetadataSummarySize` is 400 bytes
 * for the whole encoded payload, whose metadata (`encoding: json/plain`) takes about 30.
 */
export const SUMMARY_JSON_MAX_BYTES = 300;

/**
 * `text` made safe for a Temporal summary: lone surrogates replaced by U+FFFD, then cut on a code point boundary
 * (with "…") so that its JSON encoding is at most `maxJsonBytes` bytes of UTF-8. Texts built by the service from
 * names (which may be long in any script) go through it instead of being refused.
 */
export function clampForTemporal(text: string, maxJsonBytes = SUMMARY_JSON_MAX_BYTES): string {
  const size = (s: string) => new TextEncoder().encode(JSON.stringify(s)).length;
  const safe = [...text].map((c) => (isWellFormedText(c) ? c : "\uFFFD")).join("");
  if (size(safe) <= maxJsonBytes) return safe;
  const chars = [...safe];
  let lo = 0;
  let hi = chars.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (size(chars.slice(0, mid).join("") + "…") <= maxJsonBytes) lo = mid;
    else hi = mid - 1;
  }
  return chars.slice(0, lo).join("") + "…";
}
