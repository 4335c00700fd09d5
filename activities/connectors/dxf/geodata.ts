/**
 * The georeference of a DXF file: its GEODATA object (OBJECTS section, AutoCAD geographic location) read from the raw
 * groups, with the EPSG code of its coordinate-system XML.
 */
import { errorText } from "../common/source-file";
import { finite } from "../common/numbers";
import { normalize, type Vec3 } from "../common/vector";
import type { WarningTally } from "../common/warnings";
import type { Georeference } from "../types";
import type { RawRecord } from "./raw-scan";
import { decodeDxfString } from "./text";

/** CS-MAP coordinate system names (AutoCAD's library) of common projected CRSs → EPSG, when the XML has no alias. */
function epsgFromCsMapName(name: string): number | undefined {
  const known: Record<string, number> = {
    "OSGB1936.NATIONALGRID": 27700,
    BRITISHNATGRID: 27700,
    "WORLD-MERCATOR": 3395,
    "WGS84.PSEUDOMERCATOR": 3857,
    "PSEUDO-MERCATOR": 3857,
    "AMERSFOORT.RDNEW": 28992,
    "RGF93.LAMBERT-93": 2154,
    "ETRS89.LAEA": 3035,
  };
  const upper = name.trim().toUpperCase();
  if (known[upper] !== undefined) return known[upper];
  let m = /^UTM84-(\d{1,2})([NS])$/.exec(upper);
  if (m) return (m[2] === "N" ? 32600 : 32700) + Number(m[1]);
  m = /^(?:ETRS89|ETRF89)\.UTM-(\d{1,2})N$/.exec(upper);
  if (m && Number(m[1]) >= 28 && Number(m[1]) <= 38) return 25800 + Number(m[1]);
  m = /^UTM83-(\d{1,2})$/.exec(upper);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 23) return 26900 + Number(m[1]);
  m = /^UTM27-(\d{1,2})$/.exec(upper);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 22) return 26700 + Number(m[1]);
  return undefined;
}

function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}(?:\\s[^>]*)?>([^<]*)</${tag}>`, "i").exec(xml);
  return m ? m[1].trim() : undefined;
}

/**
 * EPSG code and name of the projected CRS in a GEODATA coordinate system definition (MapGuide/CS-MAP XML):
 * an `<Alias id="…" type="CoordinateSystem">` in the `EPSG Code` namespace, else a `EPSG:nnnn` mention, else a
 * well-known CS-MAP name. Throws with the reason when there is none or the CRS is not projected.
 */
function crsOfDefinition(xml: string): { epsg: number; crsName?: string } {
  const projected = /<ProjectedCoordinateSystem\b[^>]*\bid="([^"]*)"/i.exec(xml);
  const name = projected ? (xmlText(xml.slice(projected.index), "Name") ?? projected[1]) : undefined;
  if (!projected) {
    if (/<GeographicCoordinateSystem\b/i.test(xml))
      throw new Error("the coordinate system is geographic (latitude/longitude), not projected");
    throw new Error(
      xml.trim() === ""
        ? "the coordinate system definition is empty"
        : "no projected coordinate system in the definition",
    );
  }
  for (const alias of xml.matchAll(/<Alias\b([^>]*)>([\s\S]*?)<\/Alias>/gi)) {
    const attrs = alias[1];
    if (!/\btype="CoordinateSystem"/i.test(attrs)) continue;
    const ns = xmlText(alias[2], "Namespace") ?? "";
    const id = /\bid="(\d+)"/.exec(attrs)?.[1];
    const objectId = xmlText(alias[2], "ObjectId");
    if (id && /epsg/i.test(ns) && (!objectId || objectId === projected[1])) return { epsg: Number(id), crsName: name };
  }
  const mention = /EPSG\s*[:=]\s*(\d{4,5})/i.exec(xml);
  if (mention) return { epsg: Number(mention[1]), crsName: name };
  const known = epsgFromCsMapName(projected[1]) ?? (name ? epsgFromCsMapName(name) : undefined);
  if (known !== undefined) return { epsg: known, crsName: name };
  throw new Error(`no EPSG code for the coordinate system ${JSON.stringify(name ?? projected[1])}`);
}

/**
 * The georeference of a GEODATA object (AutoCAD geographic location, "local grid" coordinate type).
 *
 * GEODATA says: the design point D (group 10/20/30, drawing units) lies at the reference point R (11/21/31, CRS
 * metres); drawing units times the horizontal unit scale s (40) are metres; the north direction (12/22) is the
 * drawing vector that points to grid north. So a drawing point p maps to
 *   CRS = R + s · Rot(θ) · (p − D),   θ = π/2 − atan2(north.y, north.x)
 * (θ turns the drawing's north direction onto grid north, +y; it is the counter-clockwise angle of the drawing x axis
 * from grid east). The engineering coordinates of this connector are q = u · p (u = metres per drawing unit from
 * $INSUNITS), hence CRS = (s/u) · Rot(θ) · q + (R − s · Rot(θ) · D), i.e. the map conversion of the contract:
 *   eastings = Rx − s·(cosθ·Dx − sinθ·Dy), northings = Ry − s·(sinθ·Dx + cosθ·Dy),
 *   orthogonalHeight = Rz − s_v·Dz (s_v: vertical unit scale, group 41), rotation = θ, scale = s/u.
 * This is the transformation ezdxf's `GeoData.get_crs_transformation` applies (translate −D, scale s, rotate θ,
 * translate R).
 */
export function readGeodata(rec: RawRecord, unitScale: number, tally: WarningTally): Georeference | undefined {
  const unreadable = (reason: string) => {
    tally.add(
      "GeoreferenceUnreadable",
      "GEODATA",
      () => `the GEODATA object (line ${rec.line}) could not be used as a georeference: ${reason}`,
    );
    return undefined;
  };
  const start = rec.groups.findIndex((g) => g[0] === 100 && g[1] === "AcDbGeoData");
  const groups = start >= 0 ? rec.groups.slice(start + 1) : rec.groups;
  const first = new Map<number, string>();
  const xmlChunks: string[] = [];
  for (const [code, value] of groups) {
    if (code === 301 || code === 303) xmlChunks.push(value);
    else if (!first.has(code)) first.set(code, value);
  }
  const num = (code: number, fallback?: number): number | undefined => {
    const v = first.get(code);
    if (v === undefined) return fallback;
    const n = Number.parseFloat(v);
    return Number.isFinite(n) ? n : undefined;
  };
  const version = num(90, 2)!;
  if (version < 2)
    return unreadable("GEODATA version 1 (AutoCAD 2009) stores its points with other group codes and is not supported");
  const type = num(70, 3);
  if (type !== 1) {
    const names: Record<number, string> = { 0: "unknown", 2: "projected grid", 3: "geographic (latitude/longitude)" };
    return unreadable(
      `coordinate type ${type} (${names[type ?? -1] ?? "invalid"}) is not supported; only local grid (1) is`,
    );
  }
  const d: Vec3 = [num(10, 0)!, num(20, 0)!, num(30, 0)!];
  const r: Vec3 = [num(11, 0)!, num(21, 0)!, num(31, 0)!];
  const s = num(40, 1);
  const sv = num(41, s);
  const north: [number, number] = [num(12, 0)!, num(22, 1)!];
  if (![...d, ...r, ...north].every(Number.isFinite))
    return unreadable("a design point, reference point or north direction value is not a number");
  if (!finite(s) || s <= 0 || !finite(sv) || sv <= 0)
    return unreadable(`horizontal unit scale ${first.get(40)} is not a positive number`);
  if (Math.hypot(north[0], north[1]) < 1e-12) return unreadable("the north direction is a zero vector");
  const xml = decodeDxfString(xmlChunks.join(""));
  let crs: { epsg: number; crsName?: string };
  try {
    crs = crsOfDefinition(xml);
  } catch (e) {
    return unreadable(errorText(e));
  }
  const approximations: string[] = [];
  const method = num(95, 1);
  if (method !== 1)
    approximations.push(`scale estimation method ${method} (user scale factor ${first.get(141) ?? "1"})`);
  if ((num(294, 0) ?? 0) !== 0) approximations.push(`sea level correction (elevation ${first.get(142) ?? "0"})`);
  const up: Vec3 = [num(210, 0)!, num(220, 0)!, num(230, 1)!];
  const upUnit = normalize(up);
  if (!upUnit || Math.abs(upUnit[2] - 1) > 1e-9) approximations.push(`up direction ${up.join(",")}`);
  if (approximations.length > 0) {
    tally.add(
      "GeoreferenceApproximate",
      "GEODATA",
      () =>
        `GEODATA uses ${approximations.join(", ")}, which is not applied; the georeference is the plain local-grid conversion`,
    );
  }
  const theta = Math.PI / 2 - Math.atan2(north[1], north[0]);
  const rotation = Math.atan2(Math.sin(theta), Math.cos(theta)); // (−π, π]
  const cos = Math.cos(rotation);
  const sin = Math.sin(rotation);
  const scale = s / unitScale;
  if (Math.abs(scale - 1) > 1e-9) {
    tally.add(
      "GeoreferenceUnitMismatch",
      "GEODATA",
      () =>
        `GEODATA's horizontal unit scale (${s} m per drawing unit) differs from $INSUNITS (${unitScale} m); the georeference scale is ${scale}`,
    );
  }
  return {
    kind: "projected",
    epsg: crs.epsg,
    ...(crs.crsName !== undefined ? { crsName: crs.crsName } : {}),
    eastings: r[0] - s * (cos * d[0] - sin * d[1]),
    northings: r[1] - s * (sin * d[0] + cos * d[1]),
    orthogonalHeight: r[2] - sv * d[2],
    rotation,
    scale,
    origin: "DXF GEODATA",
  };
}
