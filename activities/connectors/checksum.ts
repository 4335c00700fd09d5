/**
 * The element checksum: one hash of everything the iModel writer stores for an element of the connector contract,
 * the same for every connector. The writer stores it as the Checksum of the element's ExternalSourceAspect and marks
 * the aspect with {@link CHECKSUM_VERSION}; an equal checksum means the element is unchanged
 * (docs/architecture.md "Element checksums").
 */
import { createHash, type Hash } from "node:crypto";
import type { ConnectorType } from "../../domain/model";
import { checksumV2, legacyChecksum } from "./legacy-checksums";
import { canonicalJson, updateLittleEndian } from "./common/hash-input";
import { micro } from "./common/numbers";
import type { RgbaColor, SourceDefinition, SourceElement } from "./types";

/**
 * Version of {@link elementChecksum}. Any change to what it hashes or how must raise it, and the writer then needs a
 * way to recognise the previous version (as it does for the checksums written before version 2, kept in
 * `legacy-checksums.ts`).
 */
export const CHECKSUM_VERSION = 3;

/**
 * sha256 (hex) of everything the writer stores for an element (the identifier is the aspect's key, not hashed),
 * in one canonical form:
 * - a JSON header with sorted keys ({@link canonicalJson}): version ({@link CHECKSUM_VERSION}), className, category
 *   (null when absent), name, origin (rounded to 1e-6 m), properties, numbers of meshes and curves, and the content
 *   (version 3): kind, container, type, material uses and property values;
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
      kind: e.kind ?? "physical",
      container: e.container ?? null,
      type: e.type ?? null,
      materials: e.materials ?? [],
      propertyValues: e.propertyValues ?? [],
    }),
  );
  updateGeometry(hash, e);
  return hash.digest("hex");
}

/**
 * sha256 (hex) of everything the writer stores for a definition (type or material): a JSON header with sorted keys
 * (version {@link CHECKSUM_VERSION}, kind, className, name, properties, property values, materials).
 */
export function definitionChecksum(d: Omit<SourceDefinition, "checksum" | "identifier">): string {
  return createHash("sha256")
    .update(
      canonicalJson({
        v: CHECKSUM_VERSION,
        kind: d.kind,
        className: d.className,
        name: d.name ?? null,
        properties: d.properties ?? null,
        propertyValues: d.propertyValues ?? [],
        materials: d.materials ?? [],
      }),
    )
    .digest("hex");
}

/** The geometry part of {@link elementChecksum} (see there). */
function updateGeometry(hash: Hash, e: Omit<SourceElement, "checksum" | "identifier">): void {
  const curves = e.curves ?? [];
  let size = 0;
  for (const m of e.meshes) size += 7 + m.positions.length + m.indices.length;
  for (const c of curves) size += c.kind === "linestring" ? 7 + c.points.length : 14;
  if (size === 0) return;
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
}

/**
 * How an element compares with the checksum stored for it: `unchanged`; `unchanged-legacy` (unchanged, but the stored
 * checksum is of an earlier version: the writer rewrites it); `content-added` (what an earlier version stored is
 * unchanged, but the element now has content that version did not write: properties, quantities, type, materials,
 * spatial structure; the writer updates the element, once); `changed`.
 */
export type ChecksumMatch = "unchanged" | "unchanged-legacy" | "content-added" | "changed";

/** Whether an element has content that checksum versions before 3 did not cover (nor the writer write). */
export function hasVersion3Content(e: Omit<SourceElement, "checksum" | "identifier">): boolean {
  return (
    (e.kind !== undefined && e.kind !== "physical") ||
    e.container !== undefined ||
    e.type !== undefined ||
    (e.materials?.length ?? 0) > 0 ||
    (e.propertyValues?.length ?? 0) > 0
  );
}

/**
 * Compares an element (with its current {@link elementChecksum}) with the checksum stored in its aspect
 * (docs/architecture.md "Element checksums").
 * - `storedVersion` = {@link CHECKSUM_VERSION}: the checksums are compared directly.
 * - `storedVersion` 2: the element's version 2 checksum ({@link checksumV2}) is compared with the stored one.
 * - `storedVersion` undefined (aspects written before version 2 carry no version): the element's checksum by the
 *   released algorithm of `connectorType` ({@link legacyChecksum}) is compared with the stored one; without a
 *   connector type, or for a connector without a legacy checksum, the element counts as changed.
 * - any other version: changed.
 * An earlier checksum that is equal gives `unchanged-legacy`, or `content-added` when the element has content of
 * version 3 ({@link hasVersion3Content}).
 */
export function compareChecksum(
  e: SourceElement,
  stored: { checksum?: string; version?: number },
  connectorType: ConnectorType | undefined,
): ChecksumMatch {
  if (stored.checksum === undefined) return "changed";
  if (stored.version === CHECKSUM_VERSION) return stored.checksum === e.checksum ? "unchanged" : "changed";
  let earlier: string | undefined;
  if (stored.version === 2) earlier = checksumV2(e);
  else if (stored.version === undefined && connectorType !== undefined) earlier = legacyChecksum(connectorType, e);
  if (earlier === undefined || earlier !== stored.checksum) return "changed";
  return hasVersion3Content(e) ? "content-added" : "unchanged-legacy";
}
