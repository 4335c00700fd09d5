/**
 * DXF curves and splines in 2D/3D point lists: arc sweeps, the tessellation step, polyline bulges and (rational)
 * B-spline evaluation.
 */
import type { Vec3 } from "../common/vector";

/** Largest angle (radians) one segment of a tessellated bulge, ellipse or non-circular arc spans: 5 degrees. */
const MAX_SEGMENT_ANGLE = Math.PI / 36;
/** Samples per non-empty knot span when a SPLINE is evaluated; at most MAX_SPLINE_POINTS points in all. */
const SPLINE_SAMPLES_PER_SPAN = 32;
const MAX_SPLINE_POINTS = 4000;
/** A full turn, radians. */
export const TWO_PI = 2 * Math.PI;

/** Sweep from start to end angle, counter-clockwise, in (0, 2π] (equal angles give a full turn). */
export function ccwSweep(start: number, end: number): number {
  let s = (end - start) % TWO_PI;
  if (s < 0) s += TWO_PI;
  return s <= 1e-12 ? TWO_PI : s;
}

/** Number of equal segments, each spanning at most {@link MAX_SEGMENT_ANGLE}, of a sweep (radians). */
export function segmentsFor(sweep: number): number {
  return Math.max(1, Math.ceil(Math.abs(sweep) / MAX_SEGMENT_ANGLE - 1e-9));
}

/** A polyline vertex in its OCS: x, y (drawing units) and the bulge of the segment that starts at it. */
export interface BulgeVertex {
  x: number;
  y: number;
  bulge: number;
}

/**
 * 2D points of a polyline with bulges (in its OCS): each bulge segment (bulge = tan(included angle / 4), positive
 * counter-clockwise) is tessellated at most {@link MAX_SEGMENT_ANGLE} per segment. For a closed polyline the closing
 * segment (last → first, with the last vertex's bulge) is included and the first point is not repeated.
 */
export function bulgePoints(vertices: BulgeVertex[], closed: boolean): [number, number][] {
  const out: [number, number][] = [];
  const n = vertices.length;
  for (let i = 0; i < n; i++) {
    const p = vertices[i];
    out.push([p.x, p.y]);
    if (i === n - 1 && !closed) break;
    const q = vertices[(i + 1) % n];
    const b = p.bulge;
    if (!b || Math.abs(b) < 1e-12 || n < 2) continue;
    const theta = 4 * Math.atan(b);
    const dx = q.x - p.x;
    const dy = q.y - p.y;
    const d = Math.hypot(dx, dy);
    if (d < 1e-12) continue;
    const h = d / 2 / Math.tan(theta / 2);
    const cx = (p.x + q.x) / 2 - (dy / d) * h;
    const cy = (p.y + q.y) / 2 + (dx / d) * h;
    const r = Math.hypot(p.x - cx, p.y - cy);
    const a0 = Math.atan2(p.y - cy, p.x - cx);
    const segs = segmentsFor(theta);
    for (let k = 1; k < segs; k++) {
      const a = a0 + (theta * k) / segs;
      out.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]);
    }
  }
  return out;
}

/**
 * Points on a (rational) B-spline of degree `p`: control points, knot vector (n + p + 1 values, non-decreasing) and
 * optional weights; {@link SPLINE_SAMPLES_PER_SPAN} samples per non-empty knot span over [t_p, t_n], de Boor's
 * algorithm in homogeneous coordinates. Undefined when the data is inconsistent.
 */
export function evaluateSpline(
  ctrl: Vec3[],
  knots: number[],
  p: number,
  weights: number[] | undefined,
): Vec3[] | undefined {
  const n = ctrl.length;
  if (!Number.isInteger(p) || p < 1 || n < p + 1 || knots.length !== n + p + 1) return undefined;
  for (let i = 1; i < knots.length; i++) if (!(knots[i] >= knots[i - 1])) return undefined;
  const w = weights && weights.length === n && weights.every((x) => x > 0) ? weights : undefined;
  const hom = ctrl.map((c, i) => {
    const wi = w ? w[i] : 1;
    return [c[0] * wi, c[1] * wi, c[2] * wi, wi];
  });
  const deBoor = (k: number, t: number): Vec3 => {
    const d = hom.slice(k - p, k + 1).map((x) => x.slice());
    for (let r = 1; r <= p; r++) {
      for (let j = p; j >= r; j--) {
        const i = j + k - p;
        const den = knots[i + p - r + 1] - knots[i];
        const alpha = den > 0 ? (t - knots[i]) / den : 0;
        for (let c = 0; c < 4; c++) d[j][c] = (1 - alpha) * d[j - 1][c] + alpha * d[j][c];
      }
    }
    const last = d[p];
    return [last[0] / last[3], last[1] / last[3], last[2] / last[3]];
  };
  const spans: number[] = [];
  for (let k = p; k < n; k++) if (knots[k + 1] > knots[k]) spans.push(k);
  if (spans.length === 0) return undefined;
  const samples = Math.max(1, Math.min(SPLINE_SAMPLES_PER_SPAN, Math.floor(MAX_SPLINE_POINTS / spans.length)));
  const out: Vec3[] = [];
  for (const k of spans) {
    for (let j = 0; j < samples; j++) out.push(deBoor(k, knots[k] + ((knots[k + 1] - knots[k]) * j) / samples));
  }
  const lastSpan = spans[spans.length - 1];
  out.push(deBoor(lastSpan, knots[lastSpan + 1]));
  return out.every((q) => q.every(Number.isFinite)) ? out : undefined;
}
