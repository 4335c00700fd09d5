/**
 * Row-major 3×4 affine transforms `[r00 r01 r02 tx, r10 r11 r12 ty, r20 r21 r22 tz]` (translation in metres or
 * drawing units, as the caller's coordinates), the small shared math of the connectors' placement chains (IFC local
 * placements, DXF block inserts and object coordinate systems).
 */
import type { Vec3 } from "./vector";

/** A row-major 3×4 affine transform (see the module comment). */
export type Affine = number[];

/** The identity transform. */
export const IDENTITY: Affine = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0];

/** `a · b`: applies `b` first, then `a`. */
export function multiply(a: Affine, b: Affine): Affine {
  const r = new Array<number>(12);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 4; j++) {
      r[i * 4 + j] = a[i * 4] * b[j] + a[i * 4 + 1] * b[4 + j] + a[i * 4 + 2] * b[8 + j] + (j === 3 ? a[i * 4 + 3] : 0);
    }
  }
  return r;
}

/** Translation by x, y, z. */
export function translation(x: number, y: number, z: number): Affine {
  return [1, 0, 0, x, 0, 1, 0, y, 0, 0, 1, z];
}

/** Scaling by x, y, z along the axes (negative values mirror). */
export function scaling(x: number, y: number, z: number): Affine {
  return [x, 0, 0, 0, 0, y, 0, 0, 0, 0, z, 0];
}

/** Rotation about the z axis, counter-clockwise by `radians`. */
export function rotationZ(radians: number): Affine {
  const c = Math.cos(radians);
  const s = Math.sin(radians);
  return [c, -s, 0, 0, s, c, 0, 0, 0, 0, 1, 0];
}

/** `m` applied to the point `p` (rotation, scale and translation). */
export function transformPoint(m: Affine, p: Vec3): Vec3 {
  return [
    m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3],
    m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7],
    m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11],
  ];
}

/** `m` applied to the direction `v` (rotation and scale, no translation). */
export function transformVector(m: Affine, v: Vec3): Vec3 {
  return [
    m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
    m[4] * v[0] + m[5] * v[1] + m[6] * v[2],
    m[8] * v[0] + m[9] * v[1] + m[10] * v[2],
  ];
}
