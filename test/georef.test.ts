/**
 * Georeferencing offline: IFC georeference extraction, EcefLocation computation (./activities/imodel/georef) and the
 * writer's set / kept / conflict rules, on the real samples and a real StandaloneDb. Expected positions are computed
 * here independently of the code under test (Krüger transverse Mercator series, Helmert transformation, IfcSite
 * angles decoded from the STEP text).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IModelHost, StandaloneDb } from "@itwin/core-backend";
import { OpenMode } from "@itwin/core-bentley";
import { Cartographic, EcefLocation, QueryRowFormat } from "@itwin/core-common";
import { Point3d } from "@itwin/core-geometry";
import { compoundAngleToDegrees, epsgFromCrsName, parseIfc } from "../activities/connectors/ifc";
import { type Georeference, type ParsedFile } from "../activities/connectors/types";
import proj4 from "proj4";
import { parseDxf } from "../activities/connectors/dxf/parse";
import {
  crsDefinition,
  ecefLocationFor,
  gcsFor,
  gridConvergence,
  gridToGeographic,
  UnsupportedCrsError,
} from "../activities/imodel/georef";
import { startIModelHost, type WriteInput, writeSourceFile } from "../activities/imodel/writer";

const SAMPLES = path.resolve(__dirname, "../samples/ifc");
const UTM = path.join(SAMPLES, "ifc4x3_georef_mapconversion_utm.ifc");
const ARCH = path.join(SAMPLES, "ifc4_architecture_revit_testmodel.ifc");
const STRUCT = path.join(SAMPLES, "ifc2x3_structural_revit_example_rev1.ifc");
const SLOW = { timeout: 120_000 };
const GEOREF = path.join(__dirname, "fixtures", "georef");

// The UTM sample's survey point: engineering (0,0,0) = E 458657.3, N 5438232.25, H 113.7 in EPSG:25832 (zone 32N).
const SURVEY = { e: 458657.3, n: 5438232.25, h: 113.7 };
const XAXIS = { abscissa: 0.270600445976, ordinate: 0.962691746426 };

// ---------------------------------------------------------------------------------------------------------
// Independent geodesy (not the code under test)
// ---------------------------------------------------------------------------------------------------------

interface Ellipsoid {
  a: number;
  f: number;
}
const GRS80: Ellipsoid = { a: 6378137, f: 1 / 298.257222101 };
const WGS84: Ellipsoid = { a: 6378137, f: 1 / 298.257223563 };
const AIRY: Ellipsoid = { a: 6377563.396, f: 1 / 299.3249646 };
const DEG = Math.PI / 180;

interface Tm {
  ellipsoid: Ellipsoid;
  lat0: number; // degrees
  lon0: number; // degrees
  k0: number;
  falseEasting: number;
  falseNorthing: number;
}

/** Krüger series (to n⁴) of the transverse Mercator projection: rectifying radius A and the α, β, δ coefficients. */
function kruger(el: Ellipsoid) {
  const n = el.f / (2 - el.f);
  const n2 = n * n;
  const n3 = n2 * n;
  const n4 = n3 * n;
  return {
    n,
    A: (el.a / (1 + n)) * (1 + n2 / 4 + n4 / 64),
    alpha: [
      n / 2 - (2 * n2) / 3 + (5 * n3) / 16 + (41 * n4) / 180,
      (13 * n2) / 48 - (3 * n3) / 5 + (557 * n4) / 1440,
      (61 * n3) / 240 - (103 * n4) / 140,
      (49561 * n4) / 161280,
    ],
    beta: [
      n / 2 - (2 * n2) / 3 + (37 * n3) / 96 - n4 / 360,
      n2 / 48 + n3 / 15 - (437 * n4) / 1440,
      (17 * n3) / 480 - (37 * n4) / 840,
      (4397 * n4) / 161280,
    ],
    delta: [
      2 * n - (2 * n2) / 3 - 2 * n3 + (116 * n4) / 45,
      (7 * n2) / 3 - (8 * n3) / 5 - (227 * n4) / 45,
      (56 * n3) / 15 - (136 * n4) / 35,
      (4279 * n4) / 630,
    ],
  };
}

/** Northing (before k0 and false northing) of a latitude on the central meridian: A·ξ(φ). */
function meridianNorthing(el: Ellipsoid, latDeg: number): number {
  const { n, A, alpha } = kruger(el);
  const phi = latDeg * DEG;
  const c = (2 * Math.sqrt(n)) / (1 + n);
  const t = Math.sinh(Math.atanh(Math.sin(phi)) - c * Math.atanh(c * Math.sin(phi)));
  const xi1 = Math.atan(t);
  let xi = xi1;
  for (let j = 1; j <= 4; j++) xi += alpha[j - 1] * Math.sin(2 * j * xi1);
  return A * xi;
}

/** Inverse transverse Mercator (Krüger / "UTM" series as in Snyder and Karney): grid → geodetic degrees on the same ellipsoid. */
function tmInverse(tm: Tm, e: number, n: number): { latitude: number; longitude: number } {
  const { A, beta, delta } = kruger(tm.ellipsoid);
  const xi = (n - tm.falseNorthing + tm.k0 * meridianNorthing(tm.ellipsoid, tm.lat0)) / (tm.k0 * A);
  const eta = (e - tm.falseEasting) / (tm.k0 * A);
  let xi1 = xi;
  let eta1 = eta;
  for (let j = 1; j <= 4; j++) {
    xi1 -= beta[j - 1] * Math.sin(2 * j * xi) * Math.cosh(2 * j * eta);
    eta1 -= beta[j - 1] * Math.cos(2 * j * xi) * Math.sinh(2 * j * eta);
  }
  const chi = Math.asin(Math.sin(xi1) / Math.cosh(eta1));
  let phi = chi;
  for (let j = 1; j <= 4; j++) phi += delta[j - 1] * Math.sin(2 * j * chi);
  const lambda = tm.lon0 * DEG + Math.atan2(Math.sinh(eta1), Math.cos(xi1));
  return { latitude: phi / DEG, longitude: lambda / DEG };
}

const UTM32_ETRS89: Tm = { ellipsoid: GRS80, lat0: 0, lon0: 9, k0: 0.9996, falseEasting: 500000, falseNorthing: 0 };
const BNG: Tm = { ellipsoid: AIRY, lat0: 49, lon0: -2, k0: 0.9996012717, falseEasting: 400000, falseNorthing: -100000 };

function toEcef(el: Ellipsoid, latDeg: number, lonDeg: number, h: number): [number, number, number] {
  const e2 = el.f * (2 - el.f);
  const phi = latDeg * DEG;
  const lam = lonDeg * DEG;
  const nu = el.a / Math.sqrt(1 - e2 * Math.sin(phi) ** 2);
  return [
    (nu + h) * Math.cos(phi) * Math.cos(lam),
    (nu + h) * Math.cos(phi) * Math.sin(lam),
    (nu * (1 - e2) + h) * Math.sin(phi),
  ];
}

function fromEcef(
  el: Ellipsoid,
  [x, y, z]: [number, number, number],
): { latitude: number; longitude: number; height: number } {
  const e2 = el.f * (2 - el.f);
  const p = Math.hypot(x, y);
  let phi = Math.atan2(z, p * (1 - e2));
  let h = 0;
  for (let i = 0; i < 10; i++) {
    const nu = el.a / Math.sqrt(1 - e2 * Math.sin(phi) ** 2);
    h = p / Math.cos(phi) - nu;
    phi = Math.atan2(z, p * (1 - (e2 * nu) / (nu + h)));
  }
  return { latitude: phi / DEG, longitude: Math.atan2(y, x) / DEG, height: h };
}

/** OSGB36 → WGS84, EPSG:1314 (Helmert, position-vector rotation convention), small-angle form. */
function helmertOsgb36ToWgs84(p: [number, number, number]): [number, number, number] {
  const [tx, ty, tz] = [446.448, -125.157, 542.06];
  const sec = DEG / 3600;
  const [rx, ry, rz] = [0.15 * sec, 0.247 * sec, 0.842 * sec];
  const s = 1 - 20.489e-6;
  const [x, y, z] = p;
  return [tx + s * (x - rz * y + ry * z), ty + s * (rz * x + y - rx * z), tz + s * (-ry * x + rx * y + z)];
}

/** Horizontal distance (m) between two nearby WGS84 positions (local radii of curvature). */
function horizontalMetres(
  a: { latitude: number; longitude: number },
  b: { latitude: number; longitude: number },
): number {
  const e2 = WGS84.f * (2 - WGS84.f);
  const phi = ((a.latitude + b.latitude) / 2) * DEG;
  const w = 1 - e2 * Math.sin(phi) ** 2;
  const m = (WGS84.a * (1 - e2)) / w ** 1.5;
  const nu = WGS84.a / Math.sqrt(w);
  return Math.hypot((b.latitude - a.latitude) * DEG * m, (b.longitude - a.longitude) * DEG * nu * Math.cos(phi));
}

/** IfcSite RefLatitude/RefLongitude/RefElevation straight from the STEP text (first IFCSITE). */
function siteFromStep(file: string): { latitude: number; longitude: number; elevation: number } {
  const text = fs.readFileSync(file, "latin1");
  const m = /IFCSITE\(.*,\(([-\d,\s]+)\),\(([-\d,\s]+)\),([-\d.E+]+|\$)/i.exec(text);
  if (!m) throw new Error(`no IfcSite location in ${file}`);
  const dms = (s: string) => {
    const [d, mi, se, mu = 0] = s.split(",").map(Number);
    // IFC: all components carry the sign
    return d + mi / 60 + (se + mu / 1e6) / 3600;
  };
  return { latitude: dms(m[1]), longitude: dms(m[2]), elevation: m[3] === "$" ? 0 : Number(m[3]) };
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------

let tmp: string;

function readEcef(bimPath: string): EcefLocation | undefined {
  const db = StandaloneDb.openFile(bimPath, OpenMode.Readonly);
  try {
    return db.ecefLocation;
  } finally {
    db.close();
  }
}

function cartographicOf(bimPath: string, spatial: Point3d): { latitude: number; longitude: number; height: number } {
  const db = StandaloneDb.openFile(bimPath, OpenMode.Readonly);
  try {
    expect(db.isGeoLocated).toBe(true);
    const c = db.spatialToCartographicFromEcef(spatial);
    return { latitude: c.latitude / DEG, longitude: c.longitude / DEG, height: c.height };
  } finally {
    db.close();
  }
}

/** A copy of the UTM sample with some text replaced (another file with another georeference). */
/** Placement origins (iModel coordinates, metres) of the physical elements of a `.bim`. */
async function originsOf(bimPath: string): Promise<{ x: number; y: number; z: number }[]> {
  const db = StandaloneDb.openFile(bimPath, OpenMode.Readonly);
  try {
    const rows = await db
      .createQueryReader("SELECT Origin.X x, Origin.Y y, Origin.Z z FROM Generic.PhysicalObject", undefined, {
        rowFormat: QueryRowFormat.UseECSqlPropertyNames,
      })
      .toArray();
    return rows.map((r: any) => ({ x: r.x, y: r.y, z: r.z }));
  } finally {
    db.close();
  }
}

function utmVariant(name: string, replace: [string, string]): string {
  const text = fs.readFileSync(UTM, "latin1");
  expect(text).toContain(replace[0]);
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text.replace(replace[0], replace[1]), "latin1");
  return file;
}

function input(bimPath: string, sourceFileId: string, parsed: ParsedFile, runId = `run-${sourceFileId}`): WriteInput {
  return {
    bimPath,
    connectionId: "conn-geo",
    connectionName: "Georeferenced",
    sourceFileId,
    sourceFilePath: `geo/${sourceFileId}.ifc`,
    contentHash: `hash-${sourceFileId}`,
    runId,
    parsed,
  };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-georef-"));
  await startIModelHost(path.join(tmp, "itwin-cache"), { profileName: `georef-${process.pid}-${Date.now()}` });
}, 120_000);

afterAll(async () => {
  if (IModelHost.isValid) await IModelHost.shutdown();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

describe("independent reference", () => {
  it("the Krüger inverse reproduces the UTM sample's own IfcSite position and the OS worked example", () => {
    const p = tmInverse(UTM32_ETRS89, SURVEY.e, SURVEY.n);
    const site = siteFromStep(UTM); // the file states the same point twice
    expect(horizontalMetres(p, site)).toBeLessThan(0.05);
    // Ordnance Survey, "A guide to coordinate systems in Great Britain", worked example (OSGB36, Airy):
    // E 651409.903, N 313177.270 → 52°39'27.2531"N, 1°43'4.5177"E
    const os = tmInverse(BNG, 651409.903, 313177.27);
    expect(Math.abs(os.latitude - (52 + 39 / 60 + 27.2531 / 3600)) * 111_000).toBeLessThan(0.01);
    expect(Math.abs(os.longitude - (1 + 43 / 60 + 4.5177 / 3600)) * 111_000 * Math.cos(52.66 * DEG)).toBeLessThan(0.01);
  });
});

describe("IFC value decoding", () => {
  it("IfcCompoundPlaneAngleMeasure: degrees, minutes, seconds, millionths; sign rules; range checks", () => {
    expect(compoundAngleToDegrees([49, 5, 43, 983700])).toBeCloseTo(49 + 5 / 60 + 43.9837 / 3600, 12);
    expect(compoundAngleToDegrees([-71, -1, -58, -789672])).toBeCloseTo(-(71 + 1 / 60 + 58.789672 / 3600), 12);
    expect(compoundAngleToDegrees([-71, 1, 58, 789672])).toBeCloseTo(-(71 + 1 / 60 + 58.789672 / 3600), 12); // only degrees signed
    expect(compoundAngleToDegrees([0, -30, 0])).toBeCloseTo(-0.5, 12); // south of the equator by 30': sign on minutes
    expect(compoundAngleToDegrees([12, 30, 0])).toBeCloseTo(12.5, 12); // 3 components
    expect(compoundAngleToDegrees([12, 60, 0])).toBeUndefined();
    expect(compoundAngleToDegrees([12, 0, 0, 1_000_000])).toBeUndefined();
    expect(compoundAngleToDegrees([])).toBeUndefined();
  });

  it("EPSG codes in CRS names", () => {
    expect(epsgFromCrsName("EPSG:25832")).toBe(25832);
    expect(epsgFromCrsName("epsg: 27700")).toBe(27700);
    expect(epsgFromCrsName("EPSG::32633")).toBe(32633);
    expect(epsgFromCrsName("urn:ogc:def:crs:EPSG:9.9:25833")).toBe(25833);
    expect(epsgFromCrsName("http://www.opengis.net/def/crs/EPSG/0/32760")).toBe(32760);
    expect(epsgFromCrsName("ETRS89 / UTM zone 32N")).toBeUndefined();
    expect(epsgFromCrsName("UTM32")).toBeUndefined();
    expect(epsgFromCrsName(undefined)).toBeUndefined();
  });
});

describe("parseIfc georeference", () => {
  it(
    "UTM sample: IfcMapConversion + IfcProjectedCRS EPSG:25832, map units applied, implausible Scale reported",
    SLOW,
    async () => {
      const p = await parseIfc(UTM);
      expect(p.georeference).toMatchObject({
        kind: "projected",
        epsg: 25832,
        crsName: "EPSG:25832",
        eastings: SURVEY.e,
        northings: SURVEY.n,
        orthogonalHeight: SURVEY.h,
        scale: 1,
      });
      const g = p.georeference as Extract<Georeference, { kind: "projected" }>;
      expect(g.rotation).toBeCloseTo(Math.atan2(XAXIS.ordinate, XAXIS.abscissa), 12);
      expect(g.origin).toContain("IfcMapConversion #2");
      // Scale 1000 with a millimetre project and a metre map unit would mean 1 mm → 1000 m: ignored, with a warning
      const scaleWarnings = p.warnings.filter((w) => w.code === "GeoreferenceScaleIgnored");
      expect(scaleWarnings).toHaveLength(1);
      expect(scaleWarnings[0].message).toContain("ifc4x3_georef_mapconversion_utm.ifc");
      expect(p.warnings.filter((w) => w.code === "GeoreferenceUnreadable")).toEqual([]);
    },
  );

  it(
    "IfcSite latitude/longitude with the IFC sign rule (west = all components negative), elevation in metres",
    SLOW,
    async () => {
      const s = await parseIfc(STRUCT);
      const expected = siteFromStep(STRUCT); // (42,12,46,804504), (-71,-1,-58,-789672), 0.
      expect(s.georeference).toMatchObject({ kind: "geographic", origin: "IfcSite #148" });
      const g = s.georeference as Extract<Georeference, { kind: "geographic" }>;
      expect(g.latitude).toBeCloseTo(expected.latitude, 10);
      expect(g.longitude).toBeCloseTo(expected.longitude, 10);
      expect(g.longitude).toBeLessThan(-71);
      expect(g.height).toBe(0);
      expect(Math.abs(g.trueNorth ?? 0)).toBeLessThan(1e-12); // TrueNorth (6.1E-17, 1.)
      expect(s.warnings).toEqual([]);

      const a = await parseIfc(ARCH);
      const ea = siteFromStep(ARCH);
      const ga = a.georeference as Extract<Georeference, { kind: "geographic" }>;
      expect(ga.kind).toBe("geographic");
      expect(ga.latitude).toBeCloseTo(ea.latitude, 10);
      expect(ga.longitude).toBeCloseTo(ea.longitude, 10);

      const hvac = await parseIfc(path.join(SAMPLES, "ifc4_hvac_air_terminal_duct.ifc")); // no IfcSite
      expect(hvac.georeference).toBeUndefined();
      expect(hvac.warnings.filter((w) => w.code.startsWith("Georeference"))).toEqual([]);
    },
  );

  it(
    "a CRS without an EPSG code is GeoreferenceUnreadable and gives no georeference (no fallback to IfcSite)",
    SLOW,
    async () => {
      const file = utmVariant("no-epsg.ifc", [
        "IFCPROJECTEDCRS('EPSG:25832'",
        "IFCPROJECTEDCRS('ETRS89 / UTM zone 32N'",
      ]);
      const p = await parseIfc(file);
      expect(p.georeference).toBeUndefined();
      const w = p.warnings.filter((x) => x.code === "GeoreferenceUnreadable");
      expect(w).toHaveLength(1);
      expect(w[0].message).toContain("no-epsg.ifc");
      expect(w[0].message).toContain("ETRS89 / UTM zone 32N");
      expect(w[0].message).toContain("EPSG");
      expect(p.elements.map((e) => e.className).sort()).toEqual([
        "IfcBuilding",
        "IfcBuildingElementProxy",
        "IfcBuildingStorey",
        "IfcSite",
      ]); // the proxy and the spatial structure
    },
  );

  it("without MapUnit, Eastings/Northings are in the project length unit", SLOW, async () => {
    // project unit millimetre, no MapUnit: the map unit is the millimetre too, so the point is written in millimetres
    // and the unit-conversion Scale is 1 (mm → mm)
    let text = fs.readFileSync(UTM, "latin1");
    text = text
      .replace("'UTM32',#3);", "'UTM32',$);")
      .replace("458657.30,5438232.25,113.7,", "458657300.,5438232250.,113700.,")
      .replace(",1000.);", ",1.);");
    const file = path.join(tmp, "no-mapunit.ifc");
    fs.writeFileSync(file, text, "latin1");
    const p = await parseIfc(file);
    expect(p.georeference).toMatchObject({ kind: "projected", epsg: 25832, scale: 1 });
    const g = p.georeference as Extract<Georeference, { kind: "projected" }>;
    expect(g.eastings).toBeCloseTo(SURVEY.e, 6);
    expect(g.northings).toBeCloseTo(SURVEY.n, 6);
    expect(g.orthogonalHeight).toBeCloseTo(SURVEY.h, 6);
    expect(p.warnings.filter((w) => w.code.startsWith("Georeference"))).toEqual([]);
  });
});

describe("IfcSite placement and TrueNorth", () => {
  it("the site's lat/long is at its placement origin; TrueNorth rotates the location", SLOW, async () => {
    // site placed 10 m east of the engineering origin (millimetres), true north along engineering -x
    let text = fs.readFileSync(ARCH, "latin1");
    for (const [a, b] of [
      [
        "#5127= IFCAXIS2PLACEMENT3D(#6,$,$);",
        "#5127= IFCAXIS2PLACEMENT3D(#999999,$,$);\n#999999= IFCCARTESIANPOINT((10000.,0.,0.));",
      ],
      ["#97= IFCDIRECTION((6.12303176911189E-17,1.));", "#97= IFCDIRECTION((-1.,0.));"],
    ]) {
      expect(text).toContain(a);
      text = text.replace(a, b);
    }
    const file = path.join(tmp, "arch-site-moved.ifc");
    fs.writeFileSync(file, text, "latin1");
    const g = (await parseIfc(file)).georeference as Extract<Georeference, { kind: "geographic" }>;
    expect(g.kind).toBe("geographic");
    expect(g.trueNorth).toBeCloseTo(Math.PI / 2, 12);
    const site = siteFromStep(ARCH);
    // engineering +x points south, so the engineering origin (10 m along -x from the site) is 10 m north of it
    expect(horizontalMetres(site, g)).toBeCloseTo(10, 2);
    expect(g.latitude).toBeGreaterThan(site.latitude);
    expect(Math.abs(g.longitude - site.longitude) * 111_000).toBeLessThan(1e-3);

    const loc = new EcefLocation(ecefLocationFor(g));
    const carto = (x: number, y: number) => {
      const c = Cartographic.fromEcef(loc.getTransform().multiplyPoint3d(Point3d.create(x, y, 0)))!;
      return { latitude: c.latitude / DEG, longitude: c.longitude / DEG };
    };
    expect(horizontalMetres(carto(10, 0), site)).toBeLessThan(0.01); // the site origin is back at its lat/long
    const north = carto(-10, 0);
    const east = carto(0, 10);
    const origin = carto(0, 0);
    expect(north.latitude).toBeGreaterThan(origin.latitude);
    expect(east.longitude).toBeGreaterThan(origin.longitude);
    expect(Math.abs(east.latitude - origin.latitude) * 111_000).toBeLessThan(1e-3);
  });
});

describe("ecefLocationFor / gcsFor", () => {
  it("projected: proj4 agrees with the independent Krüger inverse; grid convergence has the documented sign", () => {
    const expected = tmInverse(UTM32_ETRS89, SURVEY.e, SURVEY.n);
    const got = gridToGeographic(25832, SURVEY.e, SURVEY.n, SURVEY.h);
    const err = horizontalMetres(expected, got);
    console.info(`[georef] EPSG:25832 survey point: proj4 vs Krüger series ${err.toExponential(2)} m`);
    expect(err).toBeLessThan(0.001);
    // west of the central meridian, northern hemisphere: grid north is counter-clockwise of true north
    const gamma = gridConvergence(25832, got);
    const approx = Math.atan(Math.tan((got.longitude - 9) * DEG) * Math.sin(got.latitude * DEG));
    expect(gamma).toBeGreaterThan(0);
    expect(Math.abs(gamma + approx)).toBeLessThan(2e-5); // the spherical formula gives -(angle) in this convention
  });

  it("British National Grid: the projection and the towgs84 Helmert agree with an independent computation", () => {
    const osgb = tmInverse(BNG, 651409.903, 313177.27);
    const expected = fromEcef(WGS84, helmertOsgb36ToWgs84(toEcef(AIRY, osgb.latitude, osgb.longitude, 0)));
    const got = gridToGeographic(27700, 651409.903, 313177.27, 0);
    const err = horizontalMetres(expected, got);
    console.info(`[georef] EPSG:27700 OS worked example: proj4 vs Krüger + Helmert ${err.toExponential(2)} m`);
    expect(err).toBeLessThan(0.01);
    expect(horizontalMetres(osgb, got)).toBeGreaterThan(50); // the datum shift was applied
  });

  it("codes not in the dataset throw UnsupportedCrsError naming the code; gcsFor names the horizontal and vertical CRS", () => {
    const g: Georeference = {
      kind: "projected",
      epsg: 99999,
      eastings: 3500000,
      northings: 5400000,
      orthogonalHeight: 0,
      rotation: 0,
      scale: 1,
      origin: "test",
    };
    expect(() => ecefLocationFor(g)).toThrow(UnsupportedCrsError);
    expect(() => ecefLocationFor(g)).toThrow(/EPSG:99999/);
    expect(() => crsDefinition(4326)).toThrow(/not a projected/); // geographic, not projected
    expect(() => crsDefinition(26718)).toThrow(/grid file/); // NAD27: a grid, and no Helmert in the dataset
    expect(gcsFor(g)).toBeUndefined();
    expect(gcsFor({ ...g, epsg: 25832 })).toEqual({
      horizontalCRS: { epsg: 25832, description: "ETRS89 / UTM zone 32N", unit: "Meter" },
      verticalCRS: { id: "GEOID" },
    });
    expect(gcsFor({ ...g, epsg: 2263 })?.horizontalCRS).toMatchObject({ unit: "USSurveyFoot" });
    expect(gcsFor({ kind: "geographic", latitude: 1, longitude: 2, height: 0, origin: "x" })).toBeUndefined();
  });

  it("a datum shift that needs a grid file falls back to the dataset's Helmert parameters, with a warning giving the accuracy", () => {
    const bng = crsDefinition(27700);
    expect(bng.name).toBe("OSGB36 / British National Grid");
    expect(bng.proj4).toContain("+towgs84=446.448,-125.157,542.06");
    expect(bng.warning?.code).toBe("DatumShiftApproximate");
    expect(bng.warning?.message).toContain("OSTN15");
    expect(bng.warning?.message).toMatch(/accuracy/);
    const gk = crsDefinition(31467); // DHDN / Gauss-Krüger zone 3: BETA2007 grid, Helmert fallback
    expect(gk.warning?.message).toContain("BETA2007");
    // No grid needed: no warning; US survey feet converted.
    expect(crsDefinition(2056).warning).toBeUndefined();
    expect(crsDefinition(2263)).toMatchObject({ unit: "US survey foot", metresPerUnit: 1200 / 3937 });
  });
});

/**
 * The EPSG definitions as the EPSG registry gives their parameters, written here for proj4 directly (not through the
 * dataset the code under test reads): the expected positions of the grid-coordinate model.
 */
const EPSG_2056 =
  "+proj=somerc +lat_0=46.9524055555556 +lon_0=7.43958333333333 +k_0=1 +x_0=2600000 +y_0=1200000 +ellps=bessel " +
  "+towgs84=674.374,15.056,405.346,0,0,0,0 +units=m +no_defs";

/** The expected positions of `georef/EXPECTED.md`, read from the file (longitude, latitude in degrees). */
function expectedPositions(): Map<string, { code: number; longitude: number; latitude: number }> {
  const text = fs.readFileSync(path.join(GEOREF, "EXPECTED.md"), "utf8");
  const out = new Map<string, { code: number; longitude: number; latitude: number }>();
  for (const m of text.matchAll(/^\| (\S+\.ifc) \| EPSG:(\d+)[^|]*\|[^|]*\|[^|]*\| (-?[\d.]+), (-?[\d.]+) \|$/gm))
    out.set(m[1], { code: Number(m[2]), longitude: Number(m[3]), latitude: Number(m[4]) });
  return out;
}

describe("any EPSG projected CRS from the dataset (georef fixtures)", () => {
  const expected = expectedPositions();

  it("reads the three expected positions", () => {
    expect([...expected.keys()].sort()).toEqual([
      "ifc4_georef_epsg2056_swiss_lv95.ifc",
      "ifc4_georef_epsg2263_ny_state_plane_ftus.ifc",
      "ifc4_georef_epsg28992_dutch_rd.ifc",
    ]);
  });

  for (const [file, crsName] of [
    ["ifc4_georef_epsg2056_swiss_lv95.ifc", "CH1903+ / LV95"],
    ["ifc4_georef_epsg28992_dutch_rd.ifc", "Amersfoort / RD New"],
    ["ifc4_georef_epsg2263_ny_state_plane_ftus.ifc", "NAD83 / New York Long Island (ftUS)"],
  ] as const) {
    it(
      `${file}: the project origin through the iModel's EcefLocation is within 1e-5 degrees of PROJ`,
      SLOW,
      async () => {
        const want = expected.get(file)!;
        const parsed = await parseIfc(path.join(GEOREF, file));
        expect(parsed.georeference).toMatchObject({ kind: "projected", epsg: want.code });
        const bim = path.join(tmp, `${file}.bim`);
        const r = await writeSourceFile(input(bim, file.replace(".ifc", ""), parsed));
        expect(r).toMatchObject({ georeference: "set", warnings: [], crs: { epsg: want.code, name: crsName } });
        const got = cartographicOf(bim, Point3d.createZero());
        const dLon = got.longitude - want.longitude;
        const dLat = got.latitude - want.latitude;
        console.info(
          `[georef] ${file}: Δlongitude ${dLon.toExponential(2)}°, Δlatitude ${dLat.toExponential(2)}° from EXPECTED.md`,
        );
        expect(Math.abs(dLon)).toBeLessThan(1e-5);
        expect(Math.abs(dLat)).toBeLessThan(1e-5);
      },
    );
  }

  it(
    "a model drawn in grid coordinates: every element through the iModel's EcefLocation within 1e-5 degrees of proj4 with the EPSG definition",
    SLOW,
    async () => {
      const parsed = await parseIfc(path.join(GEOREF, "ifc4_grid_coordinates_lv95.ifc"));
      expect(parsed.georeference).toMatchObject({ kind: "projected", epsg: 2056, eastings: 0, northings: 0, scale: 1 });
      expect(parsed.warnings).toEqual([]);
      // The engineering origin is (0, 0) in LV95: far outside the projection's domain, no place for the location.
      const origin = gridToGeographic(2056, 0, 0, 0);
      expect(Math.abs(origin.latitude - 46.95) > 1 || !Number.isFinite(origin.latitude)).toBe(true);

      const bim = path.join(tmp, "grid.bim");
      const r = await writeSourceFile(input(bim, "grid", parsed));
      expect(r).toMatchObject({ inserted: 6, georeference: "set", warnings: [], crs: { epsg: 2056 } }); // and 3 spatial
      const rows = await originsOf(bim);
      expect(rows).toHaveLength(3);
      const reference = proj4(EPSG_2056, "WGS84");
      let worst = 0;
      for (const o of rows) {
        // The element's origin in iModel coordinates (metres) is its LV95 grid position (map conversion: identity).
        const [lon, lat] = reference.forward([o.x, o.y]);
        const got = cartographicOf(bim, Point3d.create(o.x, o.y, o.z));
        worst = Math.max(worst, Math.abs(got.longitude - lon), Math.abs(got.latitude - lat));
        expect(Math.abs(got.longitude - lon), `${o.x}, ${o.y}`).toBeLessThan(1e-5);
        expect(Math.abs(got.latitude - lat), `${o.x}, ${o.y}`).toBeLessThan(1e-5);
        expect(Math.abs(got.height - o.z)).toBeLessThan(1); // heights as given (no geoid offline), curvature < 0.1 m
      }
      console.info(
        `[georef] grid-coordinate model (LV95, 3 elements up to 1 km apart): worst ${worst.toExponential(2)}°`,
      );
      // Published check point: LV95 2600000 / 1200000 is the old Bern observatory, 46°57'03.9"N 7°26'19.1"E.
      const bern = reference.forward([2600000, 1200000]);
      expect(Math.abs(bern[0] - (7 + 26 / 60 + 19.1 / 3600))).toBeLessThan(1e-4);
      expect(Math.abs(bern[1] - (46 + 57 / 60 + 3.9 / 3600))).toBeLessThan(1e-4);
    },
  );

  it(
    "DXF GEODATA with an EPSG code takes the same path: British National Grid with the Helmert fallback and its warning",
    SLOW,
    async () => {
      const parsed = await parseDxf(
        path.join(__dirname, "fixtures", "dxf", "dxf_r2018_houses_of_parliament_geodata.dxf"),
      );
      const bim = path.join(tmp, "bng-dxf.bim");
      const r = await writeSourceFile(input(bim, "parliament", parsed));
      expect(r).toMatchObject({ georeference: "set", crs: { epsg: 27700, name: "OSGB36 / British National Grid" } });
      expect(r.warnings.map((w) => w.code)).toEqual(["DatumShiftApproximate"]);
      // The outline's first point, at BNG 530207.57, 179366.79 (ezdxf's expectation for this file), through the iModel.
      const g = parsed.georeference!;
      if (g.kind !== "projected") throw new Error("projected expected");
      const [e, n] = [530207.5677217417, 179366.7895852687];
      const c = Math.cos(g.rotation);
      const sn = Math.sin(g.rotation);
      const dx = (e - g.eastings) / g.scale;
      const dy = (n - g.northings) / g.scale;
      const p = Point3d.create(c * dx + sn * dy, -sn * dx + c * dy, 0);
      const osgb = tmInverse(BNG, e, n);
      const want = fromEcef(WGS84, helmertOsgb36ToWgs84(toEcef(AIRY, osgb.latitude, osgb.longitude, 0)));
      const got = cartographicOf(bim, p);
      expect(Math.abs(got.longitude - want.longitude)).toBeLessThan(1e-5);
      expect(Math.abs(got.latitude - want.latitude)).toBeLessThan(1e-5);
    },
  );
});

describe("writeSourceFile georeference", () => {
  let bimPath: string;
  let utm: ParsedFile;

  it(
    "UTM sample into a fresh iModel: EcefLocation maps the survey point and the x axis to the independent positions",
    SLOW,
    async () => {
      bimPath = path.join(tmp, "utm.bim");
      utm = await parseIfc(UTM);
      const r = await writeSourceFile(input(bimPath, "utm", utm));
      expect(r).toMatchObject({ inserted: 4, georeference: "set", warnings: [] }); // the proxy and 3 spatial

      // survey point: engineering (0,0,0) ↔ E 458657.3, N 5438232.25
      const expected = tmInverse(UTM32_ETRS89, SURVEY.e, SURVEY.n);
      const got = cartographicOf(bimPath, Point3d.createZero());
      const err = horizontalMetres(expected, got);
      console.info(
        `[georef] iModel EcefLocation at the survey point vs independent TM inverse: ${err.toExponential(2)} m`,
      );
      expect(err).toBeLessThan(1);
      // orthometric height used as ellipsoidal (no geoid offline); core-common's ECEF → cartographic is good to ≈ 1 mm
      expect(Math.abs(got.height - SURVEY.h)).toBeLessThan(0.005);

      // 100 m along the engineering x axis: map point E + 100·cos ρ, N + 100·sin ρ (map scale 1). Checks the rotation,
      // including the grid convergence (≈ 0.43° here: a wrong sign would be ≈ 1.5 m off).
      const len = Math.hypot(XAXIS.abscissa, XAXIS.ordinate);
      const farExpected = tmInverse(
        UTM32_ETRS89,
        SURVEY.e + (100 * XAXIS.abscissa) / len,
        SURVEY.n + (100 * XAXIS.ordinate) / len,
      );
      const far = cartographicOf(bimPath, Point3d.create(100, 0, 0));
      const farErr = horizontalMetres(farExpected, far);
      console.info(
        `[georef] 100 m along engineering x vs independent TM inverse: ${farErr.toExponential(2)} m (grid scale and tangent plane included)`,
      );
      expect(farErr).toBeLessThan(0.1);
    },
  );

  it(
    "a file with another georeference: conflict + warning with file and distance; the location is unchanged",
    SLOW,
    async () => {
      const before = readEcef(bimPath)!.toJSON();
      const moved = await parseIfc(utmVariant("utm-moved.ifc", ["458657.30,5438232.25", "458757.30,5438232.25"])); // 100 m east
      const r = await writeSourceFile(input(bimPath, "moved", moved));
      expect(r.georeference).toBe("conflict");
      const w = r.warnings.filter((x) => x.code === "GeoreferenceConflict");
      expect(w).toHaveLength(1);
      expect(w[0].message).toContain("moved.ifc");
      const metres = Number(/([\d.]+) m away/.exec(w[0].message)?.[1]);
      expect(metres).toBeGreaterThan(99);
      expect(metres).toBeLessThan(101);
      expect(readEcef(bimPath)!.toJSON()).toEqual(before);
    },
  );

  it("the same georeference again: kept, nothing changes; a replay answers the same", SLOW, async () => {
    const before = readEcef(bimPath)!.toJSON();
    const again = await writeSourceFile(input(bimPath, "utm-copy", await parseIfc(UTM)));
    expect(again).toMatchObject({ georeference: "kept", warnings: [] });
    expect(readEcef(bimPath)!.toJSON()).toEqual(before);
    const replay = await writeSourceFile(input(bimPath, "utm", utm)); // same runId + contentHash as the first write
    expect(replay).toMatchObject({ replayed: true, georeference: "set" });
    const replayConflict = await writeSourceFile(
      input(bimPath, "moved", await parseIfc(path.join(tmp, "utm-moved.ifc"))),
    );
    expect(replayConflict.replayed).toBe(true);
    expect(replayConflict.georeference).toBe("conflict");
    expect(replayConflict.warnings.map((x) => x.code)).toEqual(["GeoreferenceConflict"]);
  });

  it(
    "a file without a georeference is none; a code not in the dataset is none with a warning naming the code",
    SLOW,
    async () => {
      const hvac = await parseIfc(path.join(SAMPLES, "ifc4_hvac_air_terminal_duct.ifc"));
      expect(await writeSourceFile(input(bimPath, "hvac", hvac))).toMatchObject({ georeference: "none", warnings: [] });
      const unknown = await parseIfc(utmVariant("unknown-crs.ifc", ["'EPSG:25832'", "'EPSG:99999'"]));
      expect(unknown.georeference).toMatchObject({ kind: "projected", epsg: 99999 });
      const r = await writeSourceFile(input(path.join(tmp, "unknown.bim"), "unknown", unknown));
      expect(r.georeference).toBe("none");
      expect(r.warnings.map((x) => x.code)).toEqual(["GeoreferenceUnsupported"]);
      expect(r.warnings[0].message).toContain("EPSG:99999");
      expect(r.crs).toBeUndefined();
      expect(readEcef(path.join(tmp, "unknown.bim"))).toBeUndefined();
    },
  );

  it("architecture sample (IfcSite only) sets the location to its latitude/longitude", SLOW, async () => {
    const archBim = path.join(tmp, "arch.bim");
    const r = await writeSourceFile(input(archBim, "arch", await parseIfc(ARCH)));
    expect(r.georeference).toBe("set");
    const expected = siteFromStep(ARCH); // (39,54,57,601318), (116,25,58,795166), 0.
    const got = cartographicOf(archBim, Point3d.createZero());
    const err = horizontalMetres(expected, got);
    console.info(`[georef] architecture IfcSite vs iModel EcefLocation: ${err.toExponential(2)} m`);
    expect(err).toBeLessThan(1);
    expect(Math.abs(got.height - expected.elevation)).toBeLessThan(0.005);
    // TrueNorth is +y: 10 m along engineering y goes north
    const north = cartographicOf(archBim, Point3d.create(0, 10, 0));
    expect(north.latitude).toBeGreaterThan(got.latitude);
    expect(Math.abs(north.longitude - got.longitude) * 111_000).toBeLessThan(1e-3);
  });
});
