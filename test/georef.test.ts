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
import { Cartographic, EcefLocation } from "@itwin/core-common";
import { Point3d } from "@itwin/core-geometry";
import { compoundAngleToDegrees, epsgFromCrsName, parseIfc } from "../activities/connectors/ifc";
import { type Georeference, type ParsedFile } from "../activities/connectors/types";
import {
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
      expect(p.elements).toHaveLength(1);
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

  it("unknown EPSG codes throw UnsupportedCrsError; gcsFor names the horizontal and vertical CRS", () => {
    const g: Georeference = {
      kind: "projected",
      epsg: 31467,
      eastings: 3500000,
      northings: 5400000,
      orthogonalHeight: 0,
      rotation: 0,
      scale: 1,
      origin: "test",
    };
    expect(() => ecefLocationFor(g)).toThrow(UnsupportedCrsError);
    expect(gcsFor(g)).toBeUndefined();
    expect(gcsFor({ ...g, epsg: 25832 })).toEqual({
      horizontalCRS: { id: "ETRS89.UTM-32N", epsg: 25832, description: "ETRS89 / UTM zone 32N", unit: "Meter" },
      verticalCRS: { id: "GEOID" },
    });
    expect(gcsFor({ ...g, epsg: 32733 })?.horizontalCRS?.id).toBe("UTM84-33S");
    expect(gcsFor({ kind: "geographic", latitude: 1, longitude: 2, height: 0, origin: "x" })).toBeUndefined();
  });
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
      expect(r).toMatchObject({ inserted: 1, georeference: "set", warnings: [] });

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

  it("a file without a georeference is none; an unsupported CRS is none with a warning", SLOW, async () => {
    const hvac = await parseIfc(path.join(SAMPLES, "ifc4_hvac_air_terminal_duct.ifc"));
    expect(await writeSourceFile(input(bimPath, "hvac", hvac))).toMatchObject({ georeference: "none", warnings: [] });
    const gk = await parseIfc(utmVariant("gauss-krueger.ifc", ["'EPSG:25832'", "'EPSG:31467'"]));
    expect(gk.georeference).toMatchObject({ kind: "projected", epsg: 31467 });
    const r = await writeSourceFile(input(path.join(tmp, "gk.bim"), "gk", gk));
    expect(r.georeference).toBe("none");
    expect(r.warnings.map((x) => x.code)).toEqual(["GeoreferenceUnsupported"]);
    expect(r.warnings[0].message).toContain("EPSG:31467");
    expect(readEcef(path.join(tmp, "gk.bim"))).toBeUndefined();
  });

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
