/**
 * DXF geometry math and output: object coordinate systems (extrusion directions), dxf-parser points as vectors, and
 * the sink that turns local geometry into the world curves and meshes (metres) of one element.
 */
import type { IPoint } from "dxf-parser";
import { type Affine, IDENTITY, transformPoint, transformVector } from "../common/affine";
import { finite, micro, nano } from "../common/numbers";
import { added, arbitraryAxes, cross, dot, length, normalize, scaled, type Vec3 } from "../common/vector";
import type { RgbaColor, SourceCurve, SourceMesh } from "../types";
import { segmentsFor, TWO_PI } from "./curves";

/** OCS → WCS rotation for extrusion direction `extrusion` (identity for 0,0,1 or none). */
export function ocsMatrix(extrusion: Vec3 | undefined): Affine {
  const n = extrusion ? normalize(extrusion) : undefined;
  if (!n || (Math.abs(n[0]) < 1e-12 && Math.abs(n[1]) < 1e-12 && n[2] > 0)) return IDENTITY;
  const [ax, ay] = arbitraryAxes(n);
  return [ax[0], ay[0], n[0], 0, ax[1], ay[1], n[1], 0, ax[2], ay[2], n[2], 0];
}

/** A dxf-parser point as a vector; z defaults to `fallbackZ`; undefined when x or y is missing or not finite. */
export function vec(p: Partial<IPoint> | undefined, fallbackZ = 0): Vec3 | undefined {
  if (!p || !finite(p.x) || !finite(p.y)) return undefined;
  return [p.x, p.y, finite(p.z) ? p.z : fallbackZ];
}

/** True when two points are equal within 1e-12 per coordinate. */
export function samePoint(a: Vec3, b: Vec3): boolean {
  return Math.abs(a[0] - b[0]) < 1e-12 && Math.abs(a[1] - b[1]) < 1e-12 && Math.abs(a[2] - b[2]) < 1e-12;
}

/** Collects the world geometry (metres) of one element. */
export class GeometrySink {
  readonly curves: SourceCurve[] = [];
  readonly meshes: SourceMesh[] = [];
  /** Pieces dropped because a coordinate was missing or not finite. */
  dropped = 0;

  linestring(points: Vec3[], closed: boolean, color: RgbaColor): void {
    if (points.length === 0 || !points.every((p) => p.every(Number.isFinite))) {
      this.dropped++;
      return;
    }
    const flat = new Float64Array(points.length * 3);
    points.forEach((p, i) => {
      flat[i * 3] = micro(p[0]);
      flat[i * 3 + 1] = micro(p[1]);
      flat[i * 3 + 2] = micro(p[2]);
    });
    const curve: SourceCurve = { kind: "linestring", points: flat, color };
    if (closed && points.length > 2) curve.closed = true;
    this.curves.push(curve);
  }

  /**
   * A circular arc given in local coordinates (centre `c`, orthonormal in-plane axes `u`, `v`, radius, start and
   * counter-clockwise sweep from `u` towards `v`), transformed by `m`. It stays an `arc` when `m` maps the circle to a
   * circle (rotation, uniform scale, mirror); otherwise (non-uniform block scale) it is tessellated into a linestring.
   */
  arc(m: Affine, c: Vec3, u: Vec3, v: Vec3, radius: number, start: number, sweep: number, color: RgbaColor): void {
    if (![...c, ...u, ...v, radius, start, sweep].every(Number.isFinite) || radius <= 0) {
      this.dropped++;
      return;
    }
    const center = transformPoint(m, c);
    const cs = Math.cos(start);
    const sn = Math.sin(start);
    const a0 = transformVector(m, added(scaled(u, radius * cs), scaled(v, radius * sn)));
    const a90 = transformVector(m, added(scaled(u, -radius * sn), scaled(v, radius * cs)));
    const l0 = length(a0);
    const l90 = length(a90);
    let normal = normalize(cross(a0, a90));
    const full = sweep >= TWO_PI - 1e-12;
    if (normal && l0 > 0 && Math.abs(l0 - l90) <= 1e-9 * l0 && Math.abs(dot(a0, a90)) <= 1e-9 * l0 * l90) {
      // Mirrored references give normals pointing down: the same arc, run the other way round from its end point,
      // has an upward normal (so 2D drawings always give normal 0,0,1).
      let startVector = a0;
      if (normal[2] < -1e-12) {
        normal = [-normal[0], -normal[1], -normal[2]];
        startVector = added(scaled(a0, Math.cos(sweep)), scaled(a90, Math.sin(sweep)));
      }
      const [ax, ay] = arbitraryAxes(normal);
      let st = nano(Math.atan2(dot(startVector, ay), dot(startVector, ax)));
      if (st < 0) st = nano(st + TWO_PI);
      if (st >= nano(TWO_PI)) st = 0;
      this.curves.push({
        kind: "arc",
        center: [micro(center[0]), micro(center[1]), micro(center[2])],
        radius: micro(l0),
        startAngle: full ? 0 : st,
        sweepAngle: full ? nano(TWO_PI) : nano(sweep),
        normal: [nano(normal[0]), nano(normal[1]), nano(normal[2])],
        color,
      });
      return;
    }
    const segs = segmentsFor(sweep);
    const points: Vec3[] = [];
    for (let k = 0; k <= (full ? segs - 1 : segs); k++) {
      const t = (sweep * k) / segs;
      points.push(added(center, added(scaled(a0, Math.cos(t)), scaled(a90, Math.sin(t)))));
    }
    this.linestring(points, full, color);
  }

  mesh(points: Vec3[], indices: number[], color: RgbaColor): void {
    if (indices.length < 3 || !points.every((p) => p.every(Number.isFinite))) {
      this.dropped++;
      return;
    }
    const positions = new Float64Array(points.length * 3);
    points.forEach((p, i) => {
      positions[i * 3] = micro(p[0]);
      positions[i * 3 + 1] = micro(p[1]);
      positions[i * 3 + 2] = micro(p[2]);
    });
    this.meshes.push({ positions, indices: Uint32Array.from(indices), color });
  }
}
