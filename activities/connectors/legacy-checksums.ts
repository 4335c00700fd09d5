/**
 * The element checksums of earlier releases, FROZEN: version 2 (both connectors, {@link checksumV2}) and, before it,
 * one per connector (no version mark). They must give exactly
 * the values those releases stored in the ExternalSourceAspects, so never change them (nor what they use here:
 * `canonicalJson`, `updateLittleEndian`, `micro`); `test/checksum-migration.test.ts` pins their output on the samples.
 * The writer compares with them only for aspects without a checksum version, then stores the current checksum
 * (docs/architecture.md "Element checksums"). The DXF connector also derives the identifiers of entities without a
 * handle from the DXF one, so that those identifiers stay what they were.
 */
import { createHash } from "node:crypto";
import type { ConnectorType } from "../../domain/model";
import { canonicalJson, updateLittleEndian } from "./common/hash-input";
import { micro } from "./common/numbers";
import type { RgbaColor, SourceElement } from "./types";

/** What a legacy checksum reads of an element: the element without its identifier and checksum. */
export type ChecksumInput = Omit<SourceElement, "checksum" | "identifier">;

/**
 * The IFC connector's checksum before version 2: sha256 (hex) of a JSON header (v 1, className, name, origin rounded
 * to 1e-6, properties, mesh count; sorted keys), then per mesh a JSON header of its sizes and colour (rounded to
 * 1e-6), its positions as integer micrometres (float64 little-endian) and its indices (uint32 little-endian).
 * Category and curves are not part of it (IFC elements have neither).
 */
export function legacyIfcChecksum(e: ChecksumInput): string {
  const hash = createHash("sha256");
  hash.update(
    canonicalJson({
      v: 1,
      className: e.className,
      name: e.name ?? null,
      origin: e.origin.map(micro),
      properties: e.properties ?? null,
      meshes: e.meshes.length,
    }),
  );
  for (const m of e.meshes) {
    hash.update(canonicalJson({ p: m.positions.length, i: m.indices.length, c: m.color ? m.color.map(micro) : null }));
    const ints = new Float64Array(m.positions.length);
    for (let i = 0; i < ints.length; i++) ints[i] = Math.round(m.positions[i] * 1e6) + 0;
    updateLittleEndian(hash, ints);
    updateLittleEndian(hash, m.indices);
  }
  return hash.digest("hex");
}

/**
 * The DXF connector's checksum before version 2: sha256 (hex) of a JSON header (v 1, className, category, name,
 * origin rounded to 1e-6, properties, mesh and curve counts; sorted keys), then one float64 little-endian array: per
 * mesh `3, position count, index count, colour (millionths, -1 when none), positions in micrometres…, indices…`; per
 * linestring `1, point count, closed, colour, coordinates in micrometres…`; per arc `2, centre and radius in
 * micrometres, start and sweep in nanoradians, normal in billionths, colour`.
 */
export function legacyDxfChecksum(e: ChecksumInput): string {
  const hash = createHash("sha256");
  const curves = e.curves ?? [];
  hash.update(
    canonicalJson({
      v: 1,
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
 * The element checksum of version 2 (both connectors, the releases before property data was synchronized): sha256
 * (hex) of a JSON header (v 2, className, category or null, name or null, origin rounded to 1e-6, properties or null,
 * mesh and curve counts; sorted keys), then the float64 little-endian array of `elementChecksum`'s geometry part.
 * Aspects marked `checksumVersion: 2` hold it.
 */
export function checksumV2(e: ChecksumInput): string {
  const hash = createHash("sha256");
  const curves = e.curves ?? [];
  hash.update(
    canonicalJson({
      v: 2,
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

const LEGACY: Readonly<Partial<Record<ConnectorType, (e: ChecksumInput) => string>>> = {
  IFC: legacyIfcChecksum,
  DXF: legacyDxfChecksum,
};

/**
 * The checksum the releases before version 2 stored for an element of connector `connectorType`; undefined for a
 * connector those releases did not have.
 */
export function legacyChecksum(connectorType: ConnectorType, e: ChecksumInput): string | undefined {
  return LEGACY[connectorType]?.(e);
}
