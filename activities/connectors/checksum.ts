/**
 * The element checksum: one hash of everything the iModel writer stores for an element of the connector contract,
 * the same for every connector. The writer stores it as the Checksum of the element's ExternalSourceAspect and marks
 * the aspect with {@link CHECKSUM_VERSION}; an equal checksum means the element is unchanged
 * (docs/architecture.md "Element checksums").
 */
import { createHash } from "node:crypto";
import type { ConnectorType } from "../../domain/model";
import { legacyChecksum } from "./legacy-checksums";
import { canonicalJson, updateLittleEndian } from "./shared/hash-input";
import { micro } from "./shared/numbers";
import type { RgbaColor, SourceElement } from "./types";

/**
 * Version of {@link elementChecksum}. Any change to what it hashes or how must raise it, and the writer then needs a
 * way to recognise the previous version (as it does for the checksums written before version 2, kept in
 * `legacy-checksums.ts`).
 */
export const CHECKSUM_VERSION = 2;

/**
 * sha256 (hex) of everything the writer stores for an element (the identifier is the aspect's key, not hashed),
 * in one canonical form:
 * - a JSON header with sorted keys ({@link canonicalJson}): version ({@link CHECKSUM_VERSION}), className, category
 *   (null when absent), name, origin (rounded to 1e-6 m), properties, numbers of meshes and curves;
 * - then one float64 little-endian array of integers: per mesh `3, position count, index count, colour (r, g, b, a in
 *   millionths; -1 each when none), positions in micrometres…, indices…`; per linestring `1, point count, closed
 *   (1/0), colour, x, y, z in micrometres…`; per arc `2, centre and radius in micrometres, start and sweep in
 *   nanoradians, normal in billionths, colour`.
 * Equal input gives the same checksum in any process on any machine.
 */
export function elementChecksum(e: Omit<SourceElement, "checksum" | "identifier">): string {
  const hash = createHash("sha256");
  const curves = e.curves ?? [];
  hash.update(
    canonicalJson({
      v: CHECKSUM_VERSION,
      className: e.className,
      category: e.category ?? null,
      name: e.name ?? null,
      origin: e.origin.map(micro),
      properties: e.properties ?? null,
      meshes: e.meshes.length,
      curves: curves.length,
    }),
  );
  let size = 0;
  for (const m of e.meshes) size += 7 + m.positions.length + m.indices.length;
  for (const c of curves) size += c.kind === "linestring" ? 7 + c.points.length : 14;
  if (size === 0) return hash.digest("hex");
  const data = new Float64Array(size);
  let k = 0;
  const color = (c: RgbaColor | undefined) => {
    for (let i = 0; i < 4; i++) data[k++] = c ? Math.round(c[i] * 1e6) + 0 : -1;
  };
  for (const m of e.meshes) {
    data[k++] = 3;
    data[k++] = m.positions.length / 3;
    data[k++] = m.indices.length;
    color(m.color);
    for (let i = 0; i < m.positions.length; i++) data[k++] = Math.round(m.positions[i] * 1e6) + 0;
    for (let i = 0; i < m.indices.length; i++) data[k++] = m.indices[i];
  }
  for (const c of curves) {
    if (c.kind === "linestring") {
      data[k++] = 1;
      data[k++] = c.points.length / 3;
      data[k++] = c.closed === true ? 1 : 0;
      color(c.color);
      for (let i = 0; i < c.points.length; i++) data[k++] = Math.round(c.points[i] * 1e6) + 0;
    } else {
      data[k++] = 2;
      for (let i = 0; i < 3; i++) data[k++] = Math.round(c.center[i] * 1e6) + 0;
      data[k++] = Math.round(c.radius * 1e6) + 0;
      data[k++] = Math.round(c.startAngle * 1e9) + 0;
      data[k++] = Math.round(c.sweepAngle * 1e9) + 0;
      for (let i = 0; i < 3; i++) data[k++] = Math.round(c.normal[i] * 1e9) + 0;
      color(c.color);
    }
  }
  updateLittleEndian(hash, data);
  return hash.digest("hex");
}

/**
 * How an element compares with the checksum stored for it: `unchanged`; `unchanged-legacy` (unchanged, but the stored
 * checksum is of an earlier version: the writer rewrites it); `changed`.
 */
export type ChecksumMatch = "unchanged" | "unchanged-legacy" | "changed";

/**
 * Compares an element (with its current {@link elementChecksum}) with the checksum stored in its aspect.
 * - `storedVersion` = {@link CHECKSUM_VERSION}: the checksums are compared directly.
 * - `storedVersion` undefined (aspects written before version 2 carry no version): the element's checksum by the
 *   released algorithm of `connectorType` ({@link legacyChecksum}) is compared with the stored one; without a
 *   connector type, or for a connector without a legacy checksum, the element counts as changed.
 * - any other version: changed.
 */
export function compareChecksum(
  e: SourceElement,
  stored: { checksum?: string; version?: number },
  connectorType: ConnectorType | undefined,
): ChecksumMatch {
  if (stored.checksum === undefined) return "changed";
  if (stored.version === CHECKSUM_VERSION) return stored.checksum === e.checksum ? "unchanged" : "changed";
  if (stored.version !== undefined || connectorType === undefined) return "changed";
  const legacy = legacyChecksum(connectorType, e);
  return legacy !== undefined && legacy === stored.checksum ? "unchanged-legacy" : "changed";
}
