/**
 * IFC connector: reads an IFC file (IFC2X3, IFC4, IFC4X3) with web-ifc and returns the elements of the
 * connector contract (`ParsedFile`), in metres, in the file's own engineering coordinate system (Z up).
 *
 * One `IfcAPI` (one WebAssembly instance) is initialised lazily per process and reused. All work on it after
 * the file has been read happens in one synchronous block (open, read, stream geometry, close), so parses
 * never interleave on the shared instance and no model stays open across an `await`.
 */
import * as path from "node:path";
import * as WebIFC from "web-ifc";
import { definitionChecksum, elementChecksum } from "./checksum";
import { IfcContentReader } from "./ifc-content";
import { type Affine, IDENTITY, multiply } from "./common/affine";
import { bindConsoleToCaptures, CapturedMessages, captureOutput } from "./common/console-capture";
import { micro } from "./common/numbers";
import { lowCorner } from "./common/range";
import { errorText, readSourceFile } from "./common/source-file";
import { cross, dot, normalize, type Vec3 } from "./common/vector";
import { NotWrittenTally } from "./common/items";
import { listed, plural, WarningTally } from "./common/warnings";
import { enumValue, ifcClassName, ifcSpelling, lengthUnitScale, num, ref, str } from "./ifc-lines";
import { scanStep, type StepContent } from "./step-scan";
import {
  type Georeference,
  type ParsedFile,
  type SourceElement,
  SourceFileError,
  type SourceMesh,
  type TaskWarning,
} from "./types";

/**
 * web-ifc outputs meshes Y-up (IFC z becomes mesh y, IFC y becomes mesh -z). This column-major matrix,
 * installed with `SetGeometryTransformation`, maps them back to the IFC Z-up system: (x, y, z) -> (x, -z, y).
 */
const Y_UP_TO_Z_UP = [1, 0, 0, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 0, 0, 1];

// ---------------------------------------------------------------------------------------------------------
// One IfcAPI per process, with web-ifc's console output routed into the current parse's warnings.
// ---------------------------------------------------------------------------------------------------------

let apiPromise: Promise<WebIFC.IfcAPI> | undefined;

/**
 * The emscripten module binds `console.log`/`console.error` once, when it is instantiated inside `Init()`
 * (`var err = console.error.bind(console)`), and prints C++ log lines such as
 * `[WEB-IFC][error][GetColor()] unexpected style type 481` through them. Instantiating it under
 * `bindConsoleToCaptures` makes those bound functions hand their lines to the capture around each parse, for the
 * life of the process, without leaving the global console patched. The TypeScript-side `Log` helper of web-ifc calls
 * `console.*` at call time; those calls are caught by `captureOutput` around each (synchronous) parse.
 */
async function createApi(): Promise<WebIFC.IfcAPI> {
  const api = new WebIFC.IfcAPI();
  // "web-ifc/package.json" is not in the package's "exports"; the main entry sits next to the .wasm files.
  const wasmDir = path.dirname(require.resolve("web-ifc"));
  api.SetWasmPath(wasmDir + path.sep, true);
  await bindConsoleToCaptures(() => api.Init(undefined, true));
  api.SetLogLevel(WebIFC.LogLevel.LOG_LEVEL_ERROR);
  return api;
}

function getApi(): Promise<WebIFC.IfcAPI> {
  if (!apiPromise) {
    apiPromise = createApi().catch((e: unknown) => {
      apiPromise = undefined;
      throw e;
    });
  }
  return apiPromise;
}

/** Drops the shared instance (after a WebAssembly crash) so that the next parse starts a fresh one. */
function discardApi(): void {
  apiPromise = undefined;
}

/** Highest model id web-ifc has handed out so far; used to close models leaked by a failed `OpenModel`. */
let highestModelId = -1;

function closeLeakedModels(api: WebIFC.IfcAPI): void {
  for (let id = 0; id <= highestModelId + 8; id++) {
    try {
      if (api.IsModelOpen(id)) {
        api.CloseModel(id);
        highestModelId = Math.max(highestModelId, id);
      }
    } catch {
      // ignore: the id was never used
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers for web-ifc line objects
// ---------------------------------------------------------------------------------------------------------

/** Metres per model length unit, from the IfcProject's unit assignment (1 when none is declared). */
function projectLengthScale(api: WebIFC.IfcAPI, modelId: number, warnings: TaskWarning[]): number {
  try {
    const projects = api.GetLineIDsWithType(modelId, WebIFC.IFCPROJECT, true);
    if (projects.size() === 0) return 1;
    const project = api.GetLine(modelId, projects.get(0));
    const assignmentId = ref(project?.UnitsInContext);
    if (assignmentId === undefined) return 1;
    const assignment = api.GetLine(modelId, assignmentId);
    for (const u of (assignment?.Units ?? []) as unknown[]) {
      const id = ref(u);
      if (id === undefined) continue;
      const unit = api.GetLine(modelId, id);
      if (enumValue(unit?.UnitType) !== "LENGTHUNIT") continue;
      const s = lengthUnitScale(api, modelId, id);
      if (s !== undefined && Number.isFinite(s) && s > 0) return s;
    }
  } catch (e) {
    warnings.push({
      code: "UnitProblem",
      message: `could not read the project length unit, metres assumed (${errorText(e)})`,
    });
  }
  return 1;
}

// ---------------------------------------------------------------------------------------------------------
// Placements
// ---------------------------------------------------------------------------------------------------------

function readVector(api: WebIFC.IfcAPI, modelId: number, id: number | undefined, attr: string): Vec3 | undefined {
  if (id === undefined) return undefined;
  const line = api.GetLine(modelId, id);
  const list = line?.[attr];
  if (!Array.isArray(list)) return undefined;
  const v: Vec3 = [num(list[0]) ?? 0, num(list[1]) ?? 0, num(list[2]) ?? 0];
  return v.every(Number.isFinite) ? v : undefined;
}

/** Transform of an IfcAxis2Placement3D / 2D (in model units). */
function axisPlacement(api: WebIFC.IfcAPI, modelId: number, id: number): Affine {
  const ap = api.GetLine(modelId, id);
  if (!ap) return IDENTITY;
  const loc = readVector(api, modelId, ref(ap.Location), "Coordinates") ?? [0, 0, 0];
  const z = normalize(readVector(api, modelId, ref(ap.Axis), "DirectionRatios") ?? [0, 0, 1]) ?? [0, 0, 1];
  const refDir = readVector(api, modelId, ref(ap.RefDirection), "DirectionRatios") ?? [1, 0, 0];
  const d = dot(refDir, z);
  let x = normalize([refDir[0] - d * z[0], refDir[1] - d * z[1], refDir[2] - d * z[2]]);
  if (!x) x = normalize(Math.abs(z[0]) < 0.9 ? cross([0, 1, 0], z) : cross(z, [0, 0, 1])) ?? [1, 0, 0];
  const y = cross(z, x);
  return [x[0], y[0], z[0], loc[0], x[1], y[1], z[1], loc[1], x[2], y[2], z[2], loc[2]];
}

/**
 * Resolves an object placement to a world transform in model units: IfcLocalPlacement chains
 * (PlacementRelTo + RelativePlacement) are composed here; other placement kinds (grid, linear) fall back to
 * web-ifc's `GetWorldTransformMatrix`.
 */
function worldPlacement(
  api: WebIFC.IfcAPI,
  modelId: number,
  id: number,
  cache: Map<number, Affine>,
  depth = 0,
): Affine {
  const cached = cache.get(id);
  if (cached) return cached;
  if (depth > 64) throw new Error(`placement chain too deep at #${id}`);
  const line = api.GetLine(modelId, id);
  // A placement the file does not define (web-ifc answers an empty line, and an identity matrix for it).
  if (!line || line.type === undefined || line.type === 0) throw new Error(`#${id} is not in the file`);
  let result: Affine;
  if (line.type === WebIFC.IFCLOCALPLACEMENT) {
    const relTo = ref(line.PlacementRelTo);
    const parent = relTo !== undefined ? worldPlacement(api, modelId, relTo, cache, depth + 1) : IDENTITY;
    const relId = ref(line.RelativePlacement);
    result = multiply(parent, relId !== undefined ? axisPlacement(api, modelId, relId) : IDENTITY);
  } else {
    const m = api.GetWorldTransformMatrix(modelId, id); // column-major 4x4, model units, Z up
    if (!Array.isArray(m) || m.length !== 16) throw new Error(`unsupported placement #${id}`);
    result = [m[0], m[4], m[8], m[12], m[1], m[5], m[9], m[13], m[2], m[6], m[10], m[14]];
  }
  cache.set(id, result);
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// Georeference
// ---------------------------------------------------------------------------------------------------------

/**
 * Warning for a georeference the file states but that cannot be interpreted; the file then has no georeference
 * (a file with an unreadable IfcMapConversion does not fall back to IfcSite RefLatitude/RefLongitude, which are often
 * exporter defaults).
 */
function unreadable(fileName: string, what: string, reason: string): TaskWarning {
  return {
    code: "GeoreferenceUnreadable",
    message: `${fileName}: ${what} cannot be used as the georeference: ${reason}; the file has no georeference`,
    target: fileName,
  };
}

/** A map scale (engineering metres to map metres) further than this from 1 is taken as a unit mistake. */
const MAX_MAP_SCALE_DEVIATION = 0.01;

/** EPSG code in a CRS name: `EPSG:25832`, `EPSG::25832`, `EPSG 25832`, `urn:ogc:def:crs:EPSG:9.9:25832`, `…/EPSG/0/25832`. */
export function epsgFromCrsName(name: string | undefined): number | undefined {
  const m = name ? /EPSG[\s:/]*(?:\d+(?:\.\d+)?[:/]+)?(\d{4,6})(?!\d)/i.exec(name) : null;
  return m ? Number.parseInt(m[1], 10) : undefined;
}

/**
 * Decodes an IfcCompoundPlaneAngleMeasure (degrees, minutes, seconds, optional millionths of a second) to decimal
 * degrees. IFC requires all components to carry the same sign (all negative for south / west); files that only negate
 * the degrees are read the same way (the sign of the first non-zero component wins, magnitudes are added).
 * @returns undefined when the list is empty, not numeric or out of range (minutes or seconds ≥ 60, millionths ≥ 10⁶).
 */
export function compoundAngleToDegrees(components: readonly number[]): number | undefined {
  if (components.length === 0 || components.length > 4 || !components.every((c) => Number.isFinite(c)))
    return undefined;
  const [d, m = 0, s = 0, u = 0] = components.map((c) => Math.abs(c));
  if (m >= 60 || s >= 60 || u >= 1e6) return undefined;
  const sign = Math.sign(components.find((c) => c !== 0) ?? 0) || 1;
  return sign * (d + m / 60 + (s + u / 1e6) / 3600);
}

function compoundAngle(v: unknown): number[] | undefined {
  const list = v && typeof v === "object" && !Array.isArray(v) ? (v as { value?: unknown }).value : v;
  if (!Array.isArray(list)) return undefined;
  const out = list.map((c) => num(c));
  return out.every((c): c is number => c !== undefined) ? out : undefined;
}

/** The IfcProject's 3D model context (IfcGeometricRepresentationContext, not a sub-context), if any. */
function modelContextId(api: WebIFC.IfcAPI, modelId: number): number | undefined {
  const projects = api.GetLineIDsWithType(modelId, WebIFC.IFCPROJECT, true);
  if (projects.size() === 0) return undefined;
  const project = api.GetLine(modelId, projects.get(0));
  let fallback: number | undefined;
  for (const c of (project?.RepresentationContexts ?? []) as unknown[]) {
    const id = ref(c);
    if (id === undefined || api.GetLineType(modelId, id) !== WebIFC.IFCGEOMETRICREPRESENTATIONCONTEXT) continue;
    const ctx = api.GetLine(modelId, id);
    if (str(api, ctx?.ContextType)?.toLowerCase() === "model" && num(ctx?.CoordinateSpaceDimension) === 3) return id;
    fallback ??= id;
  }
  return fallback;
}

/** TrueNorth of a context as an angle (radians, counter-clockwise from the engineering y axis to north). */
function trueNorthOf(api: WebIFC.IfcAPI, modelId: number, contextId: number | undefined): number | undefined {
  if (contextId === undefined) return undefined;
  const ctx = api.GetLine(modelId, contextId);
  const dir = readVector(api, modelId, ref(ctx?.TrueNorth), "DirectionRatios");
  if (!dir || Math.hypot(dir[0], dir[1]) < 1e-12) return undefined;
  return Math.atan2(-dir[0], dir[1]);
}

/**
 * IFC4 / IFC4X3 IfcMapConversion (from the model context) to an IfcProjectedCRS named with an EPSG code.
 * Units, per IFC 4.3 (IfcMapConversion): Eastings, Northings and OrthogonalHeight are in the IfcProjectedCRS's
 * MapUnit when it has one, else in the project length unit; Scale multiplies engineering (project unit) lengths into
 * map-unit lengths, so the metre-to-metre scale is `Scale × mapUnit / projectUnit`.
 * @returns the georeference, `null` when the file has no IfcMapConversion, or a warning when it has one that cannot be used.
 */
function readMapConversion(
  api: WebIFC.IfcAPI,
  modelId: number,
  fileName: string,
  projectScale: number,
  warnings: TaskWarning[],
): Georeference | TaskWarning | null {
  let ids: number[];
  try {
    ids = [...api.GetLineIDsWithType(modelId, WebIFC.IFCMAPCONVERSION, true)].sort((a, b) => a - b);
  } catch {
    return null; // schema without IfcMapConversion (IFC2X3)
  }
  if (ids.length === 0) return null;
  const contextId = modelContextId(api, modelId);
  const sourceOf = (id: number) => ref(api.GetLine(modelId, id)?.SourceCRS);
  const conversionId = ids.find((id) => contextId !== undefined && sourceOf(id) === contextId) ?? ids[0];
  const mc = api.GetLine(modelId, conversionId);
  const what = `IfcMapConversion #${conversionId}`;

  const crsId = ref(mc?.TargetCRS);
  if (crsId === undefined) return unreadable(fileName, what, "it has no TargetCRS");
  if (api.GetLineType(modelId, crsId) !== WebIFC.IFCPROJECTEDCRS) {
    return unreadable(
      fileName,
      what,
      `its TargetCRS #${crsId} is a ${ifcClassName(api, api.GetLineType(modelId, crsId))}, not an IfcProjectedCRS`,
    );
  }
  const crs = api.GetLine(modelId, crsId);
  const crsName = str(api, crs?.Name);
  const epsg = epsgFromCrsName(crsName);
  if (epsg === undefined) {
    return unreadable(
      fileName,
      what,
      `its IfcProjectedCRS #${crsId} is named ${JSON.stringify(crsName ?? "")}, which is not an EPSG code (expected e.g. "EPSG:25832")`,
    );
  }

  let mapScale = projectScale;
  const mapUnitId = ref(crs?.MapUnit);
  if (mapUnitId !== undefined) {
    const s = lengthUnitScale(api, modelId, mapUnitId);
    if (s === undefined || !Number.isFinite(s) || s <= 0)
      return unreadable(fileName, what, `the MapUnit #${mapUnitId} of IfcProjectedCRS #${crsId} is not a length unit`);
    mapScale = s;
  }
  const eastings = num(mc?.Eastings);
  const northings = num(mc?.Northings);
  const height = num(mc?.OrthogonalHeight) ?? 0;
  if (eastings === undefined || northings === undefined || ![eastings, northings, height].every(Number.isFinite)) {
    return unreadable(fileName, what, "Eastings, Northings or OrthogonalHeight is missing or not a number");
  }
  const abscissa = num(mc?.XAxisAbscissa) ?? 1;
  const ordinate = num(mc?.XAxisOrdinate) ?? 0;
  if (!Number.isFinite(abscissa) || !Number.isFinite(ordinate) || Math.hypot(abscissa, ordinate) < 1e-12) {
    return unreadable(fileName, what, "XAxisAbscissa and XAxisOrdinate do not give a direction");
  }

  const fileScale = num(mc?.Scale) ?? 1;
  let scale = (fileScale * mapScale) / projectScale;
  if (!Number.isFinite(scale) || Math.abs(scale - 1) > MAX_MAP_SCALE_DEVIATION) {
    warnings.push({
      code: "GeoreferenceScaleIgnored",
      message:
        `${fileName}: ${what} has Scale ${fileScale} with project length unit ${projectScale} m and map unit ${mapScale} m, ` +
        `so 1 engineering metre would be ${+scale.toPrecision(6)} map metres; not a plausible map scale (within ${MAX_MAP_SCALE_DEVIATION * 100}% of 1), 1 is used. ` +
        `The location of the model does not depend on it.`,
      target: fileName,
    });
    scale = 1;
  }
  return {
    kind: "projected",
    epsg,
    ...(crsName !== undefined ? { crsName } : {}),
    eastings: eastings * mapScale,
    northings: northings * mapScale,
    orthogonalHeight: height * mapScale,
    rotation: Math.atan2(ordinate, abscissa),
    scale,
    origin: `${what} → IfcProjectedCRS #${crsId} ${JSON.stringify(crsName)}`,
  };
}

const WGS84_A = 6378137;
const WGS84_E2 = 0.00669437999014;

/**
 * Moves a WGS84 position by a small east/north/up offset (metres) on the local tangent plane (radii of curvature at
 * the start point; for offsets of a few km the horizontal error is millimetres).
 */
function offsetGeographic(
  p: { latitude: number; longitude: number; height: number },
  dE: number,
  dN: number,
  dU: number,
) {
  const phi = (p.latitude * Math.PI) / 180;
  const w = 1 - WGS84_E2 * Math.sin(phi) ** 2;
  const meridional = (WGS84_A * (1 - WGS84_E2)) / Math.pow(w, 1.5);
  const primeVertical = WGS84_A / Math.sqrt(w);
  return {
    latitude: p.latitude + ((dN / (meridional + p.height)) * 180) / Math.PI,
    longitude: p.longitude + ((dE / ((primeVertical + p.height) * Math.cos(phi))) * 180) / Math.PI,
    height: p.height + dU,
  };
}

/**
 * IfcSite RefLatitude / RefLongitude / RefElevation (the first site that has both angles). Per IFC 4.3 they locate
 * the point (0,0,0) of the site's ObjectPlacement; when that is not the engineering origin, the position is moved to
 * the engineering origin. RefElevation is in the project length unit; TrueNorth comes from the model context.
 * @returns the georeference, `null` when no site has a location, or a warning when it cannot be used.
 */
function readSiteLocation(
  api: WebIFC.IfcAPI,
  modelId: number,
  fileName: string,
  projectScale: number,
): Georeference | TaskWarning | null {
  const sites = [...api.GetLineIDsWithType(modelId, WebIFC.IFCSITE, true)].sort((a, b) => a - b);
  for (const siteId of sites) {
    const site = api.GetLine(modelId, siteId);
    const latParts = compoundAngle(site?.RefLatitude);
    const lonParts = compoundAngle(site?.RefLongitude);
    if (!latParts && !lonParts) continue;
    const what = `IfcSite #${siteId} RefLatitude/RefLongitude`;
    if (!latParts || !lonParts)
      return unreadable(fileName, what, `only ${latParts ? "RefLatitude" : "RefLongitude"} is given`);
    const latitude = compoundAngleToDegrees(latParts);
    const longitude = compoundAngleToDegrees(lonParts);
    if (latitude === undefined || Math.abs(latitude) > 90)
      return unreadable(fileName, what, `RefLatitude (${latParts.join(",")}) is not a latitude`);
    if (longitude === undefined || Math.abs(longitude) > 180)
      return unreadable(fileName, what, `RefLongitude (${lonParts.join(",")}) is not a longitude`);
    if (latitude === 0 && longitude === 0)
      return unreadable(fileName, what, "they are 0,0 (a placeholder, not a location)");
    const elevation = (num(site?.RefElevation) ?? 0) * projectScale;
    const trueNorth = trueNorthOf(api, modelId, modelContextId(api, modelId));

    let position = { latitude, longitude, height: Number.isFinite(elevation) ? elevation : 0 };
    const placementId = ref(site?.ObjectPlacement);
    if (placementId !== undefined) {
      const w = worldPlacement(api, modelId, placementId, new Map());
      const [sx, sy, sz] = [w[3] * projectScale, w[7] * projectScale, w[11] * projectScale];
      if (Math.hypot(sx, sy, sz) > 1e-6) {
        // engineering origin relative to the site origin is (-sx, -sy, -sz); engineering x is at -trueNorth from east
        const t = trueNorth ?? 0;
        const dE = -(sx * Math.cos(t) + sy * Math.sin(t));
        const dN = -(-sx * Math.sin(t) + sy * Math.cos(t));
        position = offsetGeographic(position, dE, dN, -sz);
      }
    }
    return {
      kind: "geographic",
      ...position,
      ...(trueNorth !== undefined ? { trueNorth } : {}),
      origin: `IfcSite #${siteId}`,
    };
  }
  return null;
}

/**
 * The file's georeference: an IFC4/IFC4X3 IfcMapConversion to an EPSG-coded IfcProjectedCRS when present, else the
 * IfcSite's latitude/longitude. A georeference that is present but cannot be interpreted gives a
 * `GeoreferenceUnreadable` warning and no georeference. Never throws.
 */
function readGeoreference(
  api: WebIFC.IfcAPI,
  modelId: number,
  fileName: string,
  projectScale: number,
  warnings: TaskWarning[],
): Georeference | undefined {
  let found: Georeference | TaskWarning | null;
  try {
    found =
      readMapConversion(api, modelId, fileName, projectScale, warnings) ??
      readSiteLocation(api, modelId, fileName, projectScale);
  } catch (e) {
    if (e instanceof Error && e.name === "RuntimeError") throw e; // WebAssembly trap: handled by the caller
    found = unreadable(fileName, "the georeference", `reading it failed (${errorText(e)})`);
  }
  if (found === null) return undefined;
  if ("code" in found) {
    warnings.push(found);
    return undefined;
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------

/** Distinct web-ifc messages reported per file; further ones are summed up in one more warning. */
const MAX_DISTINCT_MESSAGES = 50;

interface ProductInfo {
  expressId: number;
  typeCode: number;
}

function readMeshes(
  api: WebIFC.IfcAPI,
  modelId: number,
  types: number[],
  wanted: Set<number>,
): Map<number, SourceMesh[]> {
  const result = new Map<number, SourceMesh[]>();
  if (types.length === 0) return result;
  api.StreamAllMeshesWithTypes(modelId, types, (flat) => {
    if (!wanted.has(flat.expressID)) return;
    const meshes = result.get(flat.expressID) ?? [];
    const placed = flat.geometries;
    for (let g = 0; g < placed.size(); g++) {
      const pg = placed.get(g);
      const geom = api.GetGeometry(modelId, pg.geometryExpressID);
      try {
        const verts = api.GetVertexArray(geom.GetVertexData(), geom.GetVertexDataSize());
        const idx = api.GetIndexArray(geom.GetIndexData(), geom.GetIndexDataSize());
        if (verts.length < 18 || idx.length < 3) continue; // fewer than 3 vertices or no triangle
        const t = pg.flatTransformation; // column-major 4x4, metres, Z up (see Y_UP_TO_Z_UP)
        const count = Math.floor(verts.length / 6); // x y z nx ny nz
        const positions = new Float64Array(count * 3);
        for (let v = 0; v < count; v++) {
          const x = verts[v * 6];
          const y = verts[v * 6 + 1];
          const z = verts[v * 6 + 2];
          positions[v * 3] = micro(t[0] * x + t[4] * y + t[8] * z + t[12]);
          positions[v * 3 + 1] = micro(t[1] * x + t[5] * y + t[9] * z + t[13]);
          positions[v * 3 + 2] = micro(t[2] * x + t[6] * y + t[10] * z + t[14]);
        }
        const triangles = Math.floor(idx.length / 3) * 3;
        const indices = new Uint32Array(triangles);
        let bad = false;
        for (let i = 0; i < triangles; i++) {
          indices[i] = idx[i];
          if (idx[i] >= count) bad = true;
        }
        if (bad) continue;
        const c = pg.color;
        const mesh: SourceMesh = { positions, indices };
        if (c && [c.x, c.y, c.z, c.w].every((n) => typeof n === "number" && Number.isFinite(n))) {
          mesh.color = [micro(c.x), micro(c.y), micro(c.z), micro(c.w)];
        }
        meshes.push(mesh);
      } finally {
        geom.delete();
      }
    }
    if (meshes.length > 0) result.set(flat.expressID, meshes);
  });
  return result;
}

/** Representation types that describe a solid or a surface: a product with one is meant to have a mesh. */
const BODY_REPRESENTATION_TYPES = new Set([
  "SWEPTSOLID",
  "ADVANCEDSWEPTSOLID",
  "BREP",
  "ADVANCEDBREP",
  "CSG",
  "CLIPPING",
  "SOLIDMODEL",
  "SURFACEMODEL",
  "TESSELLATION",
  "SECTIONEDSPINE",
]);

/**
 * Whether a product has a body: a shape representation identified `Body…` or of a solid or surface type (as opposed to
 * only an axis, a footprint or annotation curves, which web-ifc does not mesh and which are no body).
 */
function hasBodyRepresentation(
  api: WebIFC.IfcAPI,
  modelId: number,
  line: Record<string, unknown> | undefined,
): boolean {
  const shapeId = ref(line?.Representation);
  if (shapeId === undefined) return false;
  const shape = api.GetLine(modelId, shapeId);
  for (const r of (shape?.Representations ?? []) as unknown[]) {
    const id = ref(r);
    if (id === undefined) continue;
    const rep = api.GetLine(modelId, id);
    const identifier = str(api, rep?.RepresentationIdentifier)?.toUpperCase() ?? "";
    const type = str(api, rep?.RepresentationType)?.toUpperCase() ?? "";
    if (identifier.startsWith("BODY") || BODY_REPRESENTATION_TYPES.has(type)) return true;
  }
  return false;
}

/**
 * Instances of entity types the file's schema does not define (e.g. an IFC4X3 class in a file that declares IFC4):
 * web-ifc ignores them, so they are found in the STEP scan. A complex instance counts when one of its types is unknown.
 */
function unknownTypes(
  api: WebIFC.IfcAPI,
  modelId: number,
  content: StepContent,
): { className: string; count: number; examples: number[] }[] {
  const known = new Set(api.GetIfcEntityList(modelId));
  const out: { className: string; count: number; examples: number[] }[] = [];
  for (const [key, t] of content.types) {
    const parts = key.split("+");
    if (parts.every((part) => known.has(api.GetTypeCodeFromName(part)))) continue;
    out.push({ className: parts.map((part) => ifcSpelling(api, part)).join("+"), ...t });
  }
  return out.sort((a, b) => a.className.localeCompare(b.className));
}

/** Everything done on the shared IfcAPI for one file; synchronous on purpose (see module comment). */
function parseOpenModel(
  api: WebIFC.IfcAPI,
  modelId: number,
  fileName: string,
  warnings: TaskWarning[],
  content: StepContent,
): ParsedFile {
  const schema = api.GetModelSchema(modelId) ?? "UNKNOWN";
  api.SetGeometryTransformation(modelId, Y_UP_TO_Z_UP);
  const scale = projectLengthScale(api, modelId, warnings);
  const notWritten = new NotWrittenTally();
  const tally = new WarningTally();
  const keep: string[] = [];

  // Items (README "Synchronization"): every IfcProduct instance, and every instance of a type the schema lacks.
  let read = 0;
  for (const u of unknownTypes(api, modelId, content)) {
    read += u.count;
    notWritten.addAll([
      {
        code: "UnsupportedEntityType",
        className: u.className,
        count: u.count,
        examples: u.examples.map((id) => `#${id}`),
      },
    ]);
    warnings.push({
      code: "UnsupportedEntityType",
      message: `${fileName}: ${plural(u.count, `${u.className} entity`, `${u.className} entities`)} (${listed(
        u.examples.map((id) => `#${id}`),
        u.count,
      )}) ${u.count === 1 ? "is" : "are"} of a class the file's schema ${content.schemas.join(", ")} does not define; not read`,
      target: u.className,
      count: u.count,
      examples: u.examples.map((id) => `#${id}`),
    });
  }

  const known = new Set(api.GetIfcEntityList(modelId));
  const reader = new IfcContentReader(api, modelId);
  const spatial = reader.spatialInstances();
  const openings = new Set<number>();
  for (const id of api.GetLineIDsWithType(modelId, WebIFC.IFCFEATUREELEMENTSUBTRACTION, true)) openings.add(id);

  const products: ProductInfo[] = [];
  for (const id of api.GetLineIDsWithType(modelId, WebIFC.IFCPRODUCT, true)) {
    const typeCode = api.GetLineType(modelId, id);
    if (!known.has(typeCode)) continue; // counted with the unknown types
    read++;
    if (openings.has(id)) {
      // Voids are not elements: accounted, not written.
      const line = api.GetLine(modelId, id);
      notWritten.add("OpeningElement", ifcClassName(api, typeCode), str(api, line?.GlobalId) || `#${id}`);
      continue;
    }
    products.push({ expressId: id, typeCode });
  }
  products.sort((a, b) => a.expressId - b.expressId);

  const types = [...new Set(products.map((p) => p.typeCode))];
  const meshesById = readMeshes(api, modelId, types, new Set(products.map((p) => p.expressId)));

  const placementCache = new Map<number, Affine>();
  const seen = new Set<string>();
  const elements: Omit<SourceElement, "checksum">[] = [];
  const expressIdOf = new Map<string, number>();
  for (const p of products) {
    const line = api.GetLine(modelId, p.expressId);
    const className = ifcClassName(api, p.typeCode);
    const globalId = str(api, line?.GlobalId);
    if (!globalId) {
      warnings.push({
        code: "MissingIdentifier",
        message: `${className} #${p.expressId} has no GlobalId and was skipped`,
        target: `#${p.expressId}`,
      });
      notWritten.add("MissingIdentifier", className, `#${p.expressId}`);
      continue;
    }
    if (seen.has(globalId)) {
      warnings.push({
        code: "DuplicateIdentifier",
        message: `${fileName}: GlobalId ${globalId} is used again by ${className} #${p.expressId}; only the first is kept`,
        target: globalId,
      });
      notWritten.add("DuplicateIdentifier", className, `${globalId} #${p.expressId}`);
      continue;
    }
    seen.add(globalId);
    const meshes = meshesById.get(p.expressId) ?? [];
    let origin: Vec3 | undefined;
    if (meshes.length > 0) {
      // not finite when web-ifc gave no finite position: the writer then refuses the element (InvalidElementData)
      origin = lowCorner([], meshes) ?? [Infinity, Infinity, Infinity];
    } else if (hasBodyRepresentation(api, modelId, line)) {
      // A body web-ifc could not mesh: not written, and its element already in the iModel is kept as it was.
      notWritten.add("GeometryNotConverted", className, globalId);
      keep.push(globalId);
      tally.add(
        "GeometryNotConverted",
        className,
        (n, list) =>
          `${fileName}: ${plural(n, `${className} product`, `${className} products`)} (${listed(list, n)}) ${n === 1 ? "has a body" : "have bodies"} web-ifc could not convert into geometry; not written (${n === 1 ? "its element" : "their elements"} already in the iModel, if any, kept as ${n === 1 ? "it was" : "they were"})`,
        { example: globalId },
      );
      continue;
    } else {
      const placementId = ref(line?.ObjectPlacement);
      if (placementId === undefined && spatial.has(p.expressId)) {
        origin = [0, 0, 0]; // a spatial structure element is written for its place in the structure
      } else if (placementId === undefined) {
        // Neither geometry nor placement: nothing to place in the iModel. Its element already there, if any, is kept
        // as it was: a product that lost both is damaged data, not a removal.
        notWritten.add("NoGeometryOrPlacement", className, globalId);
        keep.push(globalId);
        continue;
      } else {
        try {
          const w = worldPlacement(api, modelId, placementId, placementCache);
          origin = [micro(w[3] * scale), micro(w[7] * scale), micro(w[11] * scale)];
        } catch (e) {
          if (!spatial.has(p.expressId)) {
            // A placement that does not resolve (it names instances the file lacks): not written at a made-up
            // origin; its element already in the iModel, if any, is kept as it was.
            notWritten.add("PlacementNotResolved", className, globalId);
            keep.push(globalId);
            warnings.push({
              code: "PlacementProblem",
              message: `${className} ${globalId}: placement not resolved (${errorText(e)}); not written, its element already in the iModel, if any, kept as it was`,
              target: globalId,
            });
            continue;
          }
          warnings.push({
            code: "PlacementProblem",
            message: `${className} ${globalId}: placement not resolved (${errorText(e)}); origin set to 0,0,0`,
            target: globalId,
          });
          origin = [0, 0, 0];
        }
      }
    }

    const name = str(api, line?.Name) || undefined;
    const properties: Record<string, unknown> = { ifcClass: className, globalId };
    const objectType = str(api, line?.ObjectType);
    if (objectType) properties.objectType = objectType;
    const tag = str(api, line?.Tag);
    if (tag) properties.tag = tag;

    const kind = spatial.get(p.expressId);
    if (kind) {
      for (const [attribute, key] of [
        ["LongName", "longName"],
        ["Description", "description"],
      ] as const) {
        const v = str(api, line?.[attribute]);
        if (v) properties[key] = v;
      }
      const elevation = num(line?.Elevation);
      if (elevation !== undefined && p.typeCode === WebIFC.IFCBUILDINGSTOREY)
        properties.elevation = micro(elevation * scale);
    }

    const element: Omit<SourceElement, "checksum"> = { identifier: globalId, className, origin, meshes, properties };
    if (name !== undefined) element.name = name;
    if (kind) element.kind = kind;
    expressIdOf.set(globalId, p.expressId);
    elements.push(element);
  }

  // Content: properties and quantities, container, type and materials of each element (./ifc-content).
  const identifierOf = new Map<number, string>();
  for (const e of elements) identifierOf.set(expressIdOf.get(e.identifier)!, e.identifier);
  const relationships = { read: 0 };
  for (const e of elements) {
    const id = expressIdOf.get(e.identifier)!;
    const c = reader.elementContent(id, spatial);
    reader.countProperties(reader.setIdsOf(id), c.propertyValues.length);
    if (c.propertyValues.length > 0) e.propertyValues = c.propertyValues;
    if (c.container !== undefined) {
      relationships.read++;
      const target = identifierOf.get(c.container);
      if (target !== undefined) e.container = target;
      else
        reader.relationshipNotWritten(
          spatial.has(c.container) ? "TargetNotWritten" : "MissingReference",
          "IfcRelContainedInSpatialStructure",
          `${e.identifier} → #${c.container}`,
        );
    }
    if (c.type !== undefined) {
      relationships.read++;
      const type = reader.typeIdentifier(c.type);
      if (type === undefined)
        reader.relationshipNotWritten("MissingReference", "IfcRelDefinesByType", `${e.identifier} → #${c.type}`);
      else if (e.kind) reader.relationshipNotWritten("TypeOfSpatialElement", "IfcRelDefinesByType", e.identifier);
      else e.type = type;
    }
    if (c.materials.length > 0) {
      relationships.read += c.materials.length;
      e.materials = c.materials;
    }
  }
  relationships.read += reader.materialMisses; // material references that are not materials of the file
  for (const d of reader.allDefinitions()) relationships.read += d.materials?.length ?? 0;
  const definitions = reader.allDefinitions().map((d) => ({ ...d, checksum: definitionChecksum(d) }));
  for (const d of definitions) reader.countProperties([], d.propertyValues?.length ?? 0);
  warnings.push(...tally.toWarnings());
  const georeference = readGeoreference(api, modelId, fileName, scale, warnings);
  const parsed: ParsedFile = {
    schema,
    connectorType: "IFC",
    elements: elements.map((e) => ({ ...e, checksum: elementChecksum(e) })),
    warnings,
    items: {
      read,
      notWritten: notWritten.toList(),
      properties: { read: reader.propertiesRead, notWritten: reader.propertiesNotWritten.toList() },
      relationships: { read: relationships.read, notWritten: reader.relationshipsNotWritten.toList() },
    },
  };
  if (definitions.length > 0) parsed.definitions = definitions;
  if (keep.length > 0) parsed.keep = keep;
  if (georeference) parsed.georeference = georeference;
  return parsed;
}

/** Cheap description of why web-ifc could not open a file. */
function describeOpenFailure(data: Uint8Array, error?: unknown): string {
  const head = Buffer.from(data.subarray(0, 65536)).toString("latin1");
  const parts: string[] = [];
  if (data.byteLength === 0) parts.push("the file is empty");
  else if (!/^\s*ISO-10303-21\s*;/.test(head)) parts.push("no ISO-10303-21 header");
  else if (!/FILE_SCHEMA\s*\(/i.test(head)) parts.push("no FILE_SCHEMA in the header");
  if (error !== undefined) parts.push(`web-ifc: ${errorText(error)}`);
  else parts.push("web-ifc could not open it (unsupported schema or not STEP)");
  return parts.join("; ");
}

/**
 * Parses an IFC file into connector elements.
 *
 * - Elements: every IfcProduct with meshed geometry or an object placement, except spatial-structure
 *   containers (IfcSite, IfcBuilding, IfcBuildingStorey, … — IfcSpace is kept) and voids
 *   (IfcFeatureElementSubtraction: IfcOpeningElement, IfcOpeningStandardCase, IfcVoidingFeature). A product with a body
 *   representation (identifier `Body…`, or a solid or surface representation type) that web-ifc does not mesh is not
 *   placed without its geometry: it is not written and its element already in the iModel is kept (`keep`; warning
 *   `GeometryNotConverted`).
 * - `items` (README "Synchronization"): every IfcProduct instance, and every entity instance of a type the file's
 *   schema does not define (found by the STEP scan; web-ifc ignores them; warning `UnsupportedEntityType` per class
 *   with `count`). Not written, by reason: `UnsupportedEntityType`, `SpatialStructureElement`, `OpeningElement`,
 *   `MissingIdentifier`, `DuplicateIdentifier`, `GeometryNotConverted`, `NoGeometryOrPlacement`; examples are
 *   GlobalIds, or `#<instance>` without one.
 * - `identifier` = GlobalId (first occurrence wins; later ones give a `DuplicateIdentifier` warning),
 *   `className` = IFC class in IFC spelling (`IfcWallStandardCase`), `name` = decoded Name.
 * - Coordinates are metres in the file's engineering system, Z up: mesh positions are the placed
 *   geometries' vertices transformed by their flatTransformation (project length unit applied), rounded to
 *   1e-6 m; `origin` is the low corner of the meshes' range, or for placement-only products the resolved
 *   IfcLocalPlacement chain origin scaled by the project length unit.
 * - `checksum` = {@link elementChecksum}; stable across runs.
 * - web-ifc's own log lines are summed up per web-ifc function as `GeometryProblem` warnings (`count` = all lines of
 *   that function, `examples` = the first few distinct texts; at most 50 distinct lines are told apart, the rest are
 *   counted in one more warning), never printed.
 * - `georeference`: an IFC4/IFC4X3 IfcMapConversion whose TargetCRS is an IfcProjectedCRS named with an EPSG code
 *   (`projected`, eastings/northings/height in metres, rotation = atan2(XAxisOrdinate, XAxisAbscissa)), else the
 *   first IfcSite with RefLatitude/RefLongitude (`geographic`, RefElevation in metres, TrueNorth of the model
 *   context). One that is present but unusable gives a `GeoreferenceUnreadable` warning and no georeference; an
 *   implausible map Scale gives `GeoreferenceScaleIgnored` (scale 1 is used). See {@link readGeoreference}.
 *
 * Reads the file and calls {@link parseIfcBytes} (the service reads each file once itself and calls that directly).
 * @param absolutePath absolute path of the .ifc file
 * @throws SourceFileError `FileNotFound` when the file does not exist, `FileUnreadable` when it cannot be
 *   read, `InvalidFileFormat` when web-ifc cannot open it or fails on it (message names the file), `FileIncomplete`
 *   when it is cut off (see {@link parseIfcBytes}).
 */
export async function parseIfc(absolutePath: string): Promise<ParsedFile> {
  const buf = await readSourceFile(absolutePath);
  return parseIfcBytes(buf, path.basename(absolutePath));
}

/** `[WEB-IFC][error][GetColor()] unexpected style type 481` → group `GetColor()`, text `unexpected style type 481`. */
function webIfcMessageGroup(message: string): { group: string; text: string } {
  const m = /^\[WEB-IFC\]\[([^\]]*)\]\[([^\]]*)\]\s*(.*)$/s.exec(message);
  return m ? { group: m[2] || m[1], text: m[3] || message } : { group: "its log", text: message };
}

/**
 * Parses the bytes of an IFC file into connector elements; see {@link parseIfc} for what is read. The bytes are
 * checked for completeness first (a STEP scan, `step-scan.ts`); web-ifc opens the same bytes.
 * @param fileName the file's name, for messages.
 * @throws SourceFileError `InvalidFileFormat` when the bytes are not a STEP file (they do not start with
 *   `ISO-10303-21;`, or a file ending with `END-ISO-10303-21;` holds text that is no STEP syntax), hold no IfcProject,
 *   or web-ifc cannot open or read them;
 *   `FileIncomplete` ("<file name>: the file is incomplete (<what is missing, where>); ...") when the STEP scan finds
 *   the header, a DATA section, an `ENDSEC;`, an entity's closing `);` or `END-ISO-10303-21;` missing; a file without
 *   its final `END-ISO-10303-21;` is incomplete wherever it was cut (`scanStep`).
 */
export async function parseIfcBytes(bytes: Uint8Array, fileName: string): Promise<ParsedFile> {
  const data = bytes instanceof Buffer ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
  const scan = scanStep(data);
  if (scan.kind === "notStep")
    throw new SourceFileError("InvalidFileFormat", `${fileName}: not a readable IFC file (${scan.problem})`);
  if (scan.kind === "incomplete")
    throw new SourceFileError(
      "FileIncomplete",
      `${fileName}: the file is incomplete (${scan.problem}); it may still be being written. Nothing was written; its data in the iModel is kept`,
    );
  // Every IFC file holds exactly one IfcProject (the root of its data): one without is no model, and reading it as
  // one would take every element of the file as removed.
  if (!scan.content.types.has("IFCPROJECT"))
    throw new SourceFileError(
      "InvalidFileFormat",
      `${fileName}: not a readable IFC file (it has no IfcProject, which every IFC file holds). Nothing was written; its data in the iModel is kept`,
    );
  const api = await getApi();
  const messages = new CapturedMessages(MAX_DISTINCT_MESSAGES);
  const parsed = captureOutput(messages.sink, () => parseWithApi(api, data, fileName, scan.content));
  const tally = new WarningTally();
  messages.summarizeTo(tally, { code: "GeometryProblem", fileName, reader: "web-ifc", groupOf: webIfcMessageGroup });
  parsed.warnings.push(...tally.toWarnings());
  return parsed;
}

/** Opens, reads and closes the model on the shared IfcAPI, synchronously (see the module comment). */
function parseWithApi(api: WebIFC.IfcAPI, data: Uint8Array, fileName: string, content: StepContent): ParsedFile {
  const warnings: TaskWarning[] = [];
  let modelId = -1;
  try {
    let openError: unknown;
    try {
      modelId = api.OpenModel(data);
    } catch (e) {
      openError = e;
      modelId = -1;
    }
    if (modelId < 0) {
      closeLeakedModels(api);
      throw new SourceFileError(
        "InvalidFileFormat",
        `${fileName}: not a readable IFC file (${describeOpenFailure(data, openError)})`,
      );
    }
    highestModelId = Math.max(highestModelId, modelId);
    try {
      return parseOpenModel(api, modelId, fileName, warnings, content);
    } catch (e) {
      if (e instanceof Error && e.name === "RuntimeError") discardApi(); // WebAssembly trap: instance state unknown
      throw new SourceFileError(
        "InvalidFileFormat",
        `${fileName}: web-ifc failed while reading the file (${errorText(e)})`,
      );
    }
  } finally {
    if (modelId >= 0) {
      try {
        api.CloseModel(modelId);
      } catch {
        discardApi();
      }
    }
  }
}
