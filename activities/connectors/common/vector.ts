/**
 * 3D vector helpers shared by the connectors (world or local coordinates, metres unless said otherwise), and the
 * arbitrary axis algorithm that defines the x axis of an arc's plane in the connector contract (`SourceCurve`).
 */

/** x, y, z. */
export type Vec3 = [number, number, number];

/** Scalar product. */
export function dot(a: Vec3, b: Vec3): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

/** Vector product `a × b`. */
export function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/** Euclidean length. */
export function length(v: Vec3): number {
  return Math.hypot(v[0], v[1], v[2]);
}

/** `v` scaled to length 1; undefined when its length is 1e-12 or less. */
export function normalize(v: Vec3): Vec3 | undefined {
  const l = length(v);
  return l > 1e-12 ? [v[0] / l, v[1] / l, v[2] / l] : undefined;
}

/** `v · s`. */
export function scaled(v: Vec3, s: number): Vec3 {
  return [v[0] * s, v[1] * s, v[2] * s];
}

/** `a + b`. */
export function added(a: Vec3, b: Vec3): Vec3 {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}

/**
 * x and y axes of the plane with normal `n` by the DXF arbitrary axis algorithm (the object coordinate system of a
 * DXF extrusion direction, and the arc plane of `SourceCurve`): x = (|nx| < 1/64 and |ny| < 1/64 ? Wy × n : Wz × n),
 * normalised; y = n × x, normalised.
 */
export function arbitraryAxes(n: Vec3): [Vec3, Vec3] {
  const ax = normalize(
    Math.abs(n[0]) < 1 / 64 && Math.abs(n[1]) < 1 / 64 ? cross([0, 1, 0], n) : cross([0, 0, 1], n),
  ) ?? [1, 0, 0];
  const ay = normalize(cross(n, ax)) ?? [0, 1, 0];
  return [ax, ay];
}
