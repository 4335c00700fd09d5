/**
 * The low corner of an element's geometry, which both connectors use as the element's origin (world metres).
 */
import type { SourceCurve, SourceMesh } from "../types";
import { micro } from "./numbers";
import { arbitraryAxes, type Vec3 } from "./vector";

const TWO_PI = 2 * Math.PI;

/**
 * Low corner (x, y, z minima, rounded to 1e-6 m) of the range of `curves` (arcs by their exact extent, not their
 * end points) and `meshes`, in world metres; undefined when there is no point or a coordinate is not finite.
 */
export function lowCorner(curves: SourceCurve[], meshes: SourceMesh[]): Vec3 | undefined {
  const low: Vec3 = [Infinity, Infinity, Infinity];
  const take = (arr: Float64Array) => {
    for (let i = 0; i + 2 < arr.length; i += 3) {
      if (arr[i] < low[0]) low[0] = arr[i];
      if (arr[i + 1] < low[1]) low[1] = arr[i + 1];
      if (arr[i + 2] < low[2]) low[2] = arr[i + 2];
    }
  };
  for (const c of curves) {
    if (c.kind === "linestring") {
      take(c.points);
      continue;
    }
    const [ax, ay] = arbitraryAxes(c.normal);
    for (let k = 0; k < 3; k++) {
      const at = (t: number) => c.center[k] + c.radius * (ax[k] * Math.cos(t) + ay[k] * Math.sin(t));
      let v = Math.min(at(c.startAngle), at(c.startAngle + c.sweepAngle));
      // the minimum of coordinate k is at angle atan2(ay_k, ax_k) + π; include it when the arc passes there
      const tMin = Math.atan2(ay[k], ax[k]) + Math.PI;
      let rel = (tMin - c.startAngle) % TWO_PI;
      if (rel < 0) rel += TWO_PI;
      if (rel <= c.sweepAngle) v = Math.min(v, c.center[k] - c.radius * Math.hypot(ax[k], ay[k]));
      if (v < low[k]) low[k] = v;
    }
  }
  for (const m of meshes) take(m.positions);
  return low.every(Number.isFinite) ? [micro(low[0]), micro(low[1]), micro(low[2])] : undefined;
}
