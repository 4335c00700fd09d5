/**
 * Georeferencing without the GCS workspace (docs/facts.md "iTwin.js": the cloud GCS workspace is disabled, so everything here
 * works offline): turns a file's {@link Georeference} into the iModel's `EcefLocation`, with proj4 and a small,
 * documented table of projected CRS definitions. Pure: no iModel, no I/O.
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
 * Heights: IFC OrthogonalHeight and IfcSite RefElevation are heights above a vertical datum (about sea level);
 * there is no geoid model offline, so they are used as ellipsoidal heights (error = the geoid undulation, e.g.
 * ≈ 48 m in Germany, vertical only: latitude/longitude of the location are not affected by it).
 *
 * Datums: ETRS89 is taken equal to WGS84 (they differ by < 1 m in 2025); OSGB36 uses the published 7-parameter
 * Helmert transformation to WGS84 (EPSG:1314, a few metres of accuracy; OSTN15 is a grid file not available offline).
 *
 * Scale: an EcefLocation is rigid (metres to metres), so a map conversion scale is not represented.
 */
import proj4 from "proj4";
import { Cartographic, EcefLocation, type EcefLocationProps, type GeographicCRSProps } from "@itwin/core-common";
import { Angle, type Matrix3d, Point3d } from "@itwin/core-geometry";
import { type Georeference } from "../connectors/types";

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

/** One projected CRS known offline. */
interface CrsDefinition {
  /** proj4 definition string, to WGS84. */
  proj4: string;
  /** EPSG name, for messages. */
  name: string;
  /** Key of the same CRS in Bentley's GCS dictionary (GeographicCRSProps.horizontalCRS.id). */
  bentleyId: string;
}

/**
 * The projected CRSs supported offline, by EPSG code. Built from their defining parameters (EPSG dataset):
 * - 25828–25838 ETRS89 / UTM zones 28N–38N: Transverse Mercator, GRS80, central meridian 6·zone − 183°,
 *   k0 0.9996, false easting 500 000 m, false northing 0 (ETRS89 taken = WGS84, see module notes).
 * - 32601–32660 WGS 84 / UTM zones 1N–60N and 32701–32760 WGS 84 / UTM zones 1S–60S: same with the WGS84
 *   ellipsoid and, in the south, false northing 10 000 000 m.
 * - 27700 OSGB36 / British National Grid: Transverse Mercator on Airy 1830, origin 49°N 2°W, k0 0.9996012717,
 *   false easting 400 000 m, false northing −100 000 m; to WGS84 by EPSG:1314 (Helmert, position-vector
 *   convention as proj's +towgs84: 446.448, −125.157, 542.06 m, 0.15, 0.247, 0.842″, −20.489 ppm).
 *
 * Why a table and not a package: epsg-index 2.0.0 (ISC) is 16 MB in 8 118 files, ESM-only, and its 27700 entry
 * needs the OSTN15 grid file (`+nadgrids`) that proj4js cannot load offline; epsg 0.5.0 (Apache-2.0, 0.5 MB) has
 * the right strings but was last published in 2018. Every code added here must be testable offline.
 */
export function crsDefinition(epsg: number): CrsDefinition | undefined {
  if (!Number.isInteger(epsg)) return undefined;
  if (epsg >= 25828 && epsg <= 25838) {
    const zone = epsg - 25800;
    return {
      proj4: `+proj=utm +zone=${zone} +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs`,
      name: `ETRS89 / UTM zone ${zone}N`,
      bentleyId: `ETRS89.UTM-${zone}N`,
    };
  }
  if ((epsg >= 32601 && epsg <= 32660) || (epsg >= 32701 && epsg <= 32760)) {
    const south = epsg >= 32701;
    const zone = epsg - (south ? 32700 : 32600);
    return {
      proj4: `+proj=utm +zone=${zone}${south ? " +south" : ""} +datum=WGS84 +units=m +no_defs`,
      name: `WGS 84 / UTM zone ${zone}${south ? "S" : "N"}`,
      bentleyId: `UTM84-${zone}${south ? "S" : "N"}`,
    };
  }
  if (epsg === 27700) {
    return {
      proj4:
        "+proj=tmerc +lat_0=49 +lon_0=-2 +k=0.9996012717 +x_0=400000 +y_0=-100000 +ellps=airy " +
        "+towgs84=446.448,-125.157,542.06,0.15,0.247,0.842,-20.489 +units=m +no_defs",
      name: "OSGB36 / British National Grid",
      bentleyId: "BritishNatGrid",
    };
  }
  return undefined;
}

const converters = new Map<number, proj4.Converter>();

/** proj4 converter from the CRS (metres) to WGS84 longitude/latitude (degrees); `forward` = grid → geographic. */
function converterFor(epsg: number): proj4.Converter {
  let c = converters.get(epsg);
  if (!c) {
    const def = crsDefinition(epsg);
    if (!def) {
      throw new UnsupportedCrsError(
        epsg,
        `EPSG:${epsg} is not one of the coordinate reference systems supported offline (ETRS89/WGS84 UTM zones: EPSG 25828–25838, 32601–32660, 32701–32760; British National Grid: EPSG 27700)`,
      );
    }
    c = proj4(def.proj4, "WGS84");
    converters.set(epsg, c);
  }
  return c;
}

/** A WGS84 position: degrees and ellipsoidal height in metres. */
export interface GeographicPosition {
  latitude: number;
  longitude: number;
  height: number;
}

/** Map (grid) coordinates of the CRS → WGS84. @throws UnsupportedCrsError */
export function gridToGeographic(epsg: number, easting: number, northing: number, height = 0): GeographicPosition {
  const [longitude, latitude, h] = converterFor(epsg).forward([easting, northing, height]);
  if (![longitude, latitude].every(Number.isFinite))
    throw new UnsupportedCrsError(
      epsg,
      `EPSG:${epsg}: ${easting}, ${northing} cannot be converted (outside the projection's domain)`,
    );
  return { latitude, longitude, height: Number.isFinite(h) ? h : height };
}

/** WGS84 → map (grid) coordinates of the CRS. @throws UnsupportedCrsError */
export function geographicToGrid(epsg: number, p: GeographicPosition): [number, number, number] {
  const [e, n, h] = converterFor(epsg).inverse([p.longitude, p.latitude, p.height]);
  return [e, n, h];
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

/** Where the engineering origin (0,0,0) of a projected georeference is on WGS84. @throws UnsupportedCrsError */
export function projectedOrigin(georef: ProjectedGeoreference): GeographicPosition {
  return gridToGeographic(georef.epsg, georef.eastings, georef.northings, georef.orthogonalHeight);
}

/**
 * The iModel's EcefLocation for a file's georeference, computed offline. The engineering origin (0,0,0) (the
 * iModel's spatial origin) is placed at the georeferenced point and the engineering x axis at angle `a` from true
 * east (module notes): projected `a = rotation + gridConvergence`, geographic `a = -trueNorth`.
 * @throws UnsupportedCrsError for a projected CRS not supported offline.
 */
export function ecefLocationFor(georef: Georeference): EcefLocationProps {
  let position: GeographicPosition;
  let angle: number;
  if (georef.kind === "projected") {
    position = projectedOrigin(georef);
    angle = georef.rotation + gridConvergence(georef.epsg, position);
  } else {
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
  return EcefLocation.createFromCartographicOrigin(origin, Point3d.createZero(), Angle.createRadians(angle)).toJSON();
}

/**
 * The geographic coordinate system matching a georeference, as `GeographicCRSProps`: for a supported projected
 * CRS its EPSG code and Bentley dictionary key, vertical CRS `GEOID` (IFC heights are orthometric); `undefined`
 * for a geographic-only georeference (the iModel's spatial system is then a local tangent plane that only the
 * EcefLocation describes) and for CRSs not supported offline.
 *
 * Not stored in the iModel: with the GCS workspace disabled, core-backend 5.7.3 cannot resolve a GCS
 * (`setGeographicCoordinateSystem` + `updateIModelProps` logs "Unable to find GCS file assets/coordsys.dty in any
 * workspace" and the iModel reopens without a GCS). Kept for records and for a deployment with GCS data.
 */
export function gcsFor(georef: Georeference): GeographicCRSProps | undefined {
  if (georef.kind !== "projected") return undefined;
  const def = crsDefinition(georef.epsg);
  if (!def) return undefined;
  return {
    horizontalCRS: { id: def.bentleyId, epsg: georef.epsg, description: def.name, unit: "Meter" },
    verticalCRS: { id: "GEOID" },
  };
}

/** How far apart two EcefLocations put the iModel: distance of their origins (m) and angle between orientations (rad). */
export function ecefLocationDifference(
  a: EcefLocationProps,
  b: EcefLocationProps,
): { distance: number; angle: number } {
  const la = new EcefLocation(a);
  const lb = new EcefLocation(b);
  const distance = la.origin.distance(lb.origin);
  const rel: Matrix3d = la.orientation.toMatrix3d().transpose().multiplyMatrixMatrix(lb.orientation.toMatrix3d());
  // rotation angle of a rotation matrix from its trace: cos θ = (trace − 1) / 2
  const cos = Math.max(-1, Math.min(1, (rel.at(0, 0) + rel.at(1, 1) + rel.at(2, 2) - 1) / 2));
  return { distance, angle: Math.acos(cos) };
}
