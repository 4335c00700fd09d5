/**
 * Georeferencing without the GCS workspace (docs/facts.md "iTwin.js": the cloud GCS workspace is disabled, so everything here
 * works offline): turns a file's {@link Georeference} into the iModel's `EcefLocation`, with proj4 and the CRS
 * definitions of an EPSG dataset package. Pure: no iModel, no I/O beyond reading the dataset's files.
 *
 * The dataset (docs/facts.md "EPSG datasets"): `proj4js-definitions` 0.1.0 (CC0: proj4 strings of 4,754 EPSG CRSs as
 * epsg.io and GDAL write them, with each datum's Helmert parameters to WGS 84 inline, also where EPSG's preferred
 * transformation is a grid) gives the projection and datum shift; `epsg-index` 2.0.0 (ISC: 8,112 EPSG entries, current
 * to 2025) gives each CRS's name, unit, area of use and the accuracy of its preferred transformation, and the proj4
 * string of the CRSs the first lacks (e.g. GDA2020). epsg-index's own proj4 strings are not preferred: they carry
 * coordinate-frame rotations with the position-vector sign (Amersfoort / RD New 160 m off, KKJ, Hong Kong 1980) and no
 * Helmert parameters where EPSG prefers a grid.
 *
 * Datum shifts that need a grid file (OSTN15 for the British National Grid, BETA2007 for DHDN, NAD27's NADCON) cannot
 * be loaded offline: the dataset's Helmert parameters are used instead, and {@link crsDefinition} gives the task
 * warning `DatumShiftApproximate` with the expected accuracy. A CRS with a grid and no Helmert, or not in the dataset,
 * is {@link UnsupportedCrsError} (task warning `GeoreferenceUnsupported` naming the code).
 *
 * Conventions (all angles radians, counter-clockwise positive, seen from above):
 * - Map conversion rotation `ρ` (Georeference.rotation): angle from grid east to the engineering x axis
 *   (IFC: atan2(XAxisOrdinate, XAxisAbscissa)).
 * - Grid convergence `γ` ({@link gridConvergence}): angle from true north to grid north at a point. Positive when
 *   grid north lies counter-clockwise (west) of true north, i.e. west of the central meridian in the northern
 *   hemisphere (there `γ ≈ -(λ-λ0)·sin φ > 0`). Grid east lies at the same angle `γ` from true east.
 * - EcefLocation angle `a`: `EcefLocation.createFromCartographicOrigin(origin, point, a)` maps the iModel's x axis
 *   to `cos a · east + sin a · north` (core-common builds the east/north/up frame at the origin and rotates it by
 *   `Rz(a)`), so `a` is the angle from true east to the engineering x axis:
 *   projected: `a = ρ + γ`; geographic: `a = -trueNorth` (north is then the engineering direction (sin a, cos a),
 *   at angle -a counter-clockwise from the engineering y axis, which is what Georeference.trueNorth states).
 *
 * Where the location is computed: an EcefLocation is a rigid transform (metres to metres), exact at one point only,
 * so it is computed at a point inside the model (the writer passes the centre of the file's element extents), not at
 * the engineering origin, which for a model drawn in grid coordinates (IfcMapConversion with zero offsets) lies
 * millions of metres away, outside the projection's domain. Away from that point the error grows with the distance
 * (the projection's scale and the earth's curvature: about 1 cm at 1 km for a scale factor within 1e-5 of 1, and up to
 * 0.4 m at 1 km at the edge of a UTM zone). The map conversion's Scale multiplies engineering lengths into map lengths
 * when the point's grid coordinates are computed.
 *
 * Heights: IFC OrthogonalHeight and IfcSite RefElevation are heights above a vertical datum (about sea level);
 * there is no geoid model offline, so they are used as ellipsoidal heights (error = the geoid undulation, e.g.
 * ≈ 48 m in Germany, vertical only: latitude/longitude of the location are not affected by it).
 */
import * as fs from "node:fs";
import proj4 from "proj4";
import { Cartographic, EcefLocation, type EcefLocationProps, type GeographicCRSProps } from "@itwin/core-common";
import { Angle, type Matrix3d, Point3d, type XYZProps } from "@itwin/core-geometry";
import { type Georeference, type TaskWarning } from "../connectors/types";

type ProjectedGeoreference = Extract<Georeference, { kind: "projected" }>;

/** Thrown when a georeference names a CRS that cannot be used offline; the writer turns it into a warning. */
export class UnsupportedCrsError extends Error {
  /** Task warning code for it. */
  readonly code = "GeoreferenceUnsupported";
  constructor(
    public readonly epsg: number,
    message: string,
  ) {
    super(message);
    this.name = "UnsupportedCrsError";
  }
}

/** A projected CRS as the dataset defines it. */
export interface CrsDefinition {
  epsg: number;
  /** proj4 definition used, to WGS 84 (a grid shift replaced by the dataset's Helmert parameters). */
  proj4: string;
  /** EPSG name, e.g. `CH1903+ / LV95` (`EPSG:<code>` when the dataset has none). */
  name: string;
  /** Name of the CRS's axis unit in the dataset (`metre`, `US survey foot`, ...). */
  unit: string;
  /** Metres per CRS unit (proj4's `to_meter`; 1200/3937 for the US survey foot). */
  metresPerUnit: number;
  /** Warning to give with every georeference in this CRS (an approximate datum shift), if any. */
  warning?: { code: string; message: string };
}

interface EpsgIndexEntry {
  code: string;
  kind: string;
  name: string;
  proj4: string | null;
  unit: string | null;
  area?: string | null;
  accuracy?: number | null;
}

let proj4jsDefinitions: Map<string, string> | undefined;

/** proj4js-definitions' string of `EPSG:<code>` (the whole list is read once, 0.8 MB). */
function datasetProj4(epsg: number): string | undefined {
  proj4jsDefinitions ??= new Map(
    JSON.parse(fs.readFileSync(require.resolve("proj4js-definitions/proj4js-definitions.json"), "utf8")) as [
      string,
      string,
    ][],
  );
  return proj4jsDefinitions.get(`EPSG:${epsg}`);
}

/** epsg-index's entry of a code (one small JSON file per code, read on demand). */
function indexEntry(epsg: number): EpsgIndexEntry | undefined {
  let file: string;
  try {
    file = require.resolve(`epsg-index/s/${epsg}.json`);
  } catch {
    return undefined;
  }
  return JSON.parse(fs.readFileSync(file, "utf8")) as EpsgIndexEntry;
}

const GRID = /\+nadgrids=(?!@null)(\S+)/;
const TOWGS84 = /\+towgs84=(\S+)/;

const definitions = new Map<number, CrsDefinition | UnsupportedCrsError>();

/**
 * The dataset's definition of a projected CRS by EPSG code (cached). A datum shift that needs a grid file is replaced
 * by the dataset's Helmert parameters, with a `DatumShiftApproximate` warning giving the expected accuracy.
 * @throws UnsupportedCrsError when the code is not a projected CRS of the dataset, or needs a grid and has no Helmert.
 */
export function crsDefinition(epsg: number): CrsDefinition {
  const cached = definitions.get(epsg);
  if (cached instanceof UnsupportedCrsError) throw cached;
  if (cached) return cached;
  let result: CrsDefinition | UnsupportedCrsError;
  try {
    result = resolveDefinition(epsg);
  } catch (e) {
    if (!(e instanceof UnsupportedCrsError)) throw e;
    result = e;
  }
  definitions.set(epsg, result);
  if (result instanceof UnsupportedCrsError) throw result;
  return result;
}

function resolveDefinition(epsg: number): CrsDefinition {
  const unsupported = (why: string) => new UnsupportedCrsError(epsg, `EPSG:${epsg} ${why}`);
  if (!Number.isInteger(epsg) || epsg <= 0) throw unsupported("is not an EPSG code");
  const entry = indexEntry(epsg);
  const inDataset = datasetProj4(epsg);
  if (entry && entry.kind !== "CRS-PROJCRS")
    throw unsupported(`(${entry.name}) is not a projected coordinate reference system (${entry.kind})`);
  let definition = inDataset ?? entry?.proj4 ?? undefined;
  if (!definition || !/\+proj=/.test(definition) || /\+proj=longlat/.test(definition))
    throw unsupported("is not a projected coordinate reference system in the EPSG dataset available offline");
  const name = entry?.name ?? `EPSG:${epsg}`;

  // A grid shift (EPSG's preferred transformation, or NAD27's grids in proj4's datum table) cannot be applied offline.
  const grid =
    GRID.exec(entry?.proj4 ?? "")?.[1] ??
    GRID.exec(definition)?.[1] ??
    (/\+datum=NAD27\b/.test(definition) ? "NADCON (NAD27)" : undefined);
  let warning: CrsDefinition["warning"];
  if (grid) {
    const helmert = TOWGS84.exec(definition)?.[1] ?? TOWGS84.exec(inDataset ?? "")?.[1];
    if (!helmert || GRID.test(definition) || (/\+datum=NAD27\b/.test(definition) && !TOWGS84.test(definition)))
      throw unsupported(
        `(${name}) needs the datum grid file ${grid}, which is not available offline, and the dataset has no Helmert transformation for it`,
      );
    const gridAccuracy = entry?.accuracy ? ` (${entry.accuracy} m with the grid)` : "";
    warning = {
      code: "DatumShiftApproximate",
      message:
        `EPSG:${epsg} (${name}): its datum shift to WGS 84 needs the grid file ${grid}, which is not available offline; ` +
        `the dataset's Helmert transformation (+towgs84=${helmert}) is used instead, expected accuracy a few metres ` +
        `(typically 1 to 5 m, about 1e-5 to 5e-5 degrees)${gridAccuracy}`,
    };
  }
  let converter: proj4.Converter;
  try {
    converter = proj4(definition, "WGS84");
  } catch (e) {
    throw unsupported(`(${name}) cannot be used by proj4: ${(e as Error).message}`);
  }
  const metresPerUnit =
    new (proj4.Proj as unknown as new (def: string) => { to_meter?: number })(definition).to_meter ?? 1;
  converters.set(epsg, converter);
  definition = definition.trim();
  return {
    epsg,
    proj4: definition,
    name,
    unit: entry?.unit ?? (metresPerUnit === 1 ? "metre" : `${metresPerUnit} m`),
    metresPerUnit,
    ...(warning ? { warning } : {}),
  };
}

const converters = new Map<number, proj4.Converter>();

/** proj4 converter from the CRS (its own unit) to WGS84 longitude/latitude (degrees); `forward` = grid → geographic. */
function converterFor(epsg: number): { converter: proj4.Converter; metresPerUnit: number } {
  const def = crsDefinition(epsg);
  return { converter: converters.get(epsg)!, metresPerUnit: def.metresPerUnit };
}

/** A WGS84 position: degrees and ellipsoidal height in metres. */
export interface GeographicPosition {
  latitude: number;
  longitude: number;
  height: number;
}

/**
 * Map (grid) coordinates of the CRS, in metres whatever the CRS's unit (converted here), → WGS84.
 * @throws UnsupportedCrsError
 */
export function gridToGeographic(epsg: number, easting: number, northing: number, height = 0): GeographicPosition {
  const { converter, metresPerUnit } = converterFor(epsg);
  const [longitude, latitude, h] = converter.forward([easting / metresPerUnit, northing / metresPerUnit, height]);
  if (![longitude, latitude].every(Number.isFinite))
    throw new UnsupportedCrsError(
      epsg,
      `EPSG:${epsg}: ${easting}, ${northing} cannot be converted (outside the projection's domain)`,
    );
  return { latitude, longitude, height: Number.isFinite(h) ? h : height };
}

/** WGS84 → map (grid) coordinates of the CRS, in metres. @throws UnsupportedCrsError */
export function geographicToGrid(epsg: number, p: GeographicPosition): [number, number, number] {
  const { converter, metresPerUnit } = converterFor(epsg);
  const [e, n, h] = converter.inverse([p.longitude, p.latitude, p.height]);
  return [e * metresPerUnit, n * metresPerUnit, h];
}

/** Metres of latitude per radian near `latitude` (meridional radius of curvature of WGS84). */
function meridionalRadius(latitudeRad: number): number {
  const a = 6378137;
  const e2 = 0.00669437999014;
  const s = Math.sin(latitudeRad);
  return (a * (1 - e2)) / Math.pow(1 - e2 * s * s, 1.5);
}

/**
 * Grid convergence of the CRS at a WGS84 point (radians, counter-clockwise from true north to grid north; see the
 * module notes), computed numerically: the points 1 m south and 1 m north of it on its meridian are projected,
 * and the grid direction between them is the grid direction of true north.
 * @throws UnsupportedCrsError
 */
export function gridConvergence(epsg: number, p: GeographicPosition): number {
  const dLat = (1 / meridionalRadius((p.latitude * Math.PI) / 180)) * (180 / Math.PI); // 1 m in degrees
  const south = geographicToGrid(epsg, { ...p, latitude: p.latitude - dLat });
  const north = geographicToGrid(epsg, { ...p, latitude: p.latitude + dLat });
  const dE = north[0] - south[0];
  const dN = north[1] - south[1];
  // True north has grid direction (dE, dN), at angle atan2(-dE, dN) counter-clockwise from grid north;
  // grid north is the opposite angle from true north.
  return Math.atan2(dE, dN);
}

/**
 * Grid coordinates (metres) of an engineering point (metres) under a projected georeference: the map conversion
 * `grid = (E, N, H) + scale · Rz(ρ) · point` (IfcMapConversion; Scale applied to all three axes).
 */
export function engineeringToGrid(
  georef: ProjectedGeoreference,
  point: XYZProps = Point3d.createZero(),
): [number, number, number] {
  const p = Point3d.fromJSON(point);
  const c = Math.cos(georef.rotation);
  const s = Math.sin(georef.rotation);
  const k = georef.scale;
  return [
    georef.eastings + k * (c * p.x - s * p.y),
    georef.northings + k * (s * p.x + c * p.y),
    georef.orthogonalHeight + k * p.z,
  ];
}

/** Where an engineering point (default the origin) of a projected georeference is on WGS84. @throws UnsupportedCrsError */
export function projectedPosition(georef: ProjectedGeoreference, point?: XYZProps): GeographicPosition {
  const [e, n, h] = engineeringToGrid(georef, point);
  return gridToGeographic(georef.epsg, e, n, h);
}

/**
 * The iModel's EcefLocation for a file's georeference, computed offline at the engineering point `at` (metres; the
 * writer passes the centre of the file's element extents, see the module notes): that point is placed at its
 * georeferenced position, and the engineering x axis at angle `a` from true east there (projected
 * `a = rotation + gridConvergence`, geographic `a = -trueNorth`). A geographic georeference (IfcSite) is exact at the
 * engineering origin, so it is computed there.
 * @throws UnsupportedCrsError for a projected CRS not supported offline; RangeError for a point outside the
 *   projection's domain.
 */
export function ecefLocationFor(georef: Georeference, at: XYZProps = Point3d.createZero()): EcefLocationProps {
  let position: GeographicPosition;
  let angle: number;
  let point = Point3d.fromJSON(at);
  if (georef.kind === "projected") {
    position = projectedPosition(georef, point);
    angle = georef.rotation + gridConvergence(georef.epsg, position);
  } else {
    point = Point3d.createZero();
    position = { latitude: georef.latitude, longitude: georef.longitude, height: georef.height };
    angle = -(georef.trueNorth ?? 0);
  }
  if (![position.latitude, position.longitude, position.height, angle].every(Number.isFinite)) {
    throw new RangeError(`georeference from ${georef.origin} is not finite`);
  }
  const origin = Cartographic.fromDegrees({
    longitude: position.longitude,
    latitude: position.latitude,
    height: position.height,
  });
  return EcefLocation.createFromCartographicOrigin(origin, point, Angle.createRadians(angle)).toJSON();
}

/** The CRS of a projected georeference as recorded on the iModel record: EPSG code and name. @throws UnsupportedCrsError */
export function crsOf(georef: ProjectedGeoreference): { epsg: number; name: string } {
  const def = crsDefinition(georef.epsg);
  return { epsg: def.epsg, name: def.name };
}

/** The task warnings a georeference gives whatever the iModel: an approximate datum shift of its CRS. */
export function georeferenceWarnings(georef: Georeference, fileLabel: string): TaskWarning[] {
  if (georef.kind !== "projected") return [];
  const w = crsDefinition(georef.epsg).warning;
  return w ? [{ code: w.code, message: `${fileLabel}: ${w.message}`, target: fileLabel }] : [];
}

/** core-common's unit name of a dataset unit. */
function unitType(unit: string): "Meter" | "InternationalFoot" | "USSurveyFoot" | "Unsupported" {
  const u = unit.toLowerCase();
  return u === "metre"
    ? "Meter"
    : u === "foot"
      ? "InternationalFoot"
      : u === "us survey foot"
        ? "USSurveyFoot"
        : "Unsupported";
}

/**
 * The geographic coordinate system matching a georeference, as `GeographicCRSProps`: for a projected CRS of the
 * dataset its EPSG code, name and unit, vertical CRS `GEOID` (IFC heights are orthometric); `undefined` for a
 * geographic-only georeference (the iModel's spatial system is then a local tangent plane that only the EcefLocation
 * describes) and for CRSs not supported offline.
 *
 * Not stored in the iModel: with the GCS workspace disabled, core-backend 5.7.3 cannot resolve a GCS
 * (`setGeographicCoordinateSystem` + `updateIModelProps` logs "Unable to find GCS file assets/coordsys.dty in any
 * workspace" and the iModel reopens without a GCS). Kept for records and for a deployment with GCS data.
 */
export function gcsFor(georef: Georeference): GeographicCRSProps | undefined {
  if (georef.kind !== "projected") return undefined;
  let def: CrsDefinition;
  try {
    def = crsDefinition(georef.epsg);
  } catch {
    return undefined;
  }
  return {
    horizontalCRS: { epsg: georef.epsg, description: def.name, unit: unitType(def.unit) },
    verticalCRS: { id: "GEOID" },
  };
}

/**
 * How far apart two EcefLocations put the iModel at an engineering point `at` (metres; the centre of the file being
 * compared): distance of that point's ECEF positions (m) and angle between the orientations (rad).
 */
export function ecefLocationDifference(
  a: EcefLocationProps,
  b: EcefLocationProps,
  at: XYZProps = Point3d.createZero(),
): { distance: number; angle: number } {
  const la = new EcefLocation(a);
  const lb = new EcefLocation(b);
  const p = Point3d.fromJSON(at);
  const distance = la.getTransform().multiplyPoint3d(p).distance(lb.getTransform().multiplyPoint3d(p));
  const rel: Matrix3d = la.orientation.toMatrix3d().transpose().multiplyMatrixMatrix(lb.orientation.toMatrix3d());
  // rotation angle of a rotation matrix from its trace: cos θ = (trace − 1) / 2
  const cos = Math.max(-1, Math.min(1, (rel.at(0, 0) + rel.at(1, 1) + rel.at(2, 2) - 1) / 2));
  return { distance, angle: Math.acos(cos) };
}
