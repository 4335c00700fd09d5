/**
 * Number helpers shared by the connectors: the rounding that makes equal geometry serialise (and hash) equally, and
 * the finiteness test for values read from a file.
 */

/** Rounds to the micro unit (1e-6; micrometres for lengths in metres); `+ 0` turns -0 into 0 so equal values serialise equally. */
export function micro(v: number): number {
  return Math.round(v * 1e6) / 1e6 + 0;
}

/** Rounds to 1e-9 (angles in radians, components of unit vectors); `+ 0` turns -0 into 0. */
export function nano(v: number): number {
  return Math.round(v * 1e9) / 1e9 + 0;
}

/** True for a number that is neither NaN nor ±Infinity (anything else, e.g. a missing value, is false). */
export function finite(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}
