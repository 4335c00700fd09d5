/**
 * Row-major 3×4 affine transforms `[r00 r01 r02 tx, r10 r11 r12 ty, r20 r21 r22 tz]` (translation in metres), the
 * small shared math of the connectors' placement chains (IFC local placements, DXF block inserts and OCS).
 */
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
