/**
 * IFC connector + iModel writer, on the real sample files and a real StandaloneDb.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as WebIFC from "web-ifc";
import { StandaloneDb } from "@itwin/core-backend";
import { OpenMode } from "@itwin/core-bentley";
import { QueryBinder, QueryRowFormat } from "@itwin/core-common";
import { parseIfc } from "../activities/connectors/ifc";
import { type ParsedFile, type SourceElement, SourceFileError } from "../activities/connectors/types";
import {
  DeletionGuardError,
  ensureIModel,
  startIModelHost,
  type WriteInput,
  writeSourceFile,
} from "../activities/imodel/writer";

const SAMPLES = path.resolve(__dirname, "../samples/ifc");
const FIXTURES = path.resolve(__dirname, "fixtures/ifc");
const REV1 = path.join(SAMPLES, "ifc2x3_structural_revit_example_rev1.ifc");
const REV2 = path.join(FIXTURES, "ifc2x3_structural_revit_example_rev2.ifc");
const HVAC = path.join(SAMPLES, "ifc4_hvac_air_terminal_duct.ifc");
const ARCH = path.join(SAMPLES, "ifc4_architecture_revit_testmodel.ifc");
const GEOREF = path.join(SAMPLES, "ifc4x3_georef_mapconversion_utm.ifc");
const BROKEN = path.join(FIXTURES, "ifc4_broken_missing_header.ifc");

const SLOW = { timeout: 120_000 };

let tmp: string;
let reference: WebIFC.IfcAPI; // an independent web-ifc instance for cross-checks
const parsed = new Map<string, ParsedFile>();

async function parsedOf(file: string): Promise<ParsedFile> {
  let p = parsed.get(file);
  if (!p) {
    p = await parseIfc(file);
    parsed.set(file, p);
  }
  return p;
}

/** The physical elements of a parse (spatial structure elements have a `kind`). */
function physical(p: ParsedFile): SourceElement[] {
  return p.elements.filter((e) => e.kind === undefined || e.kind === "physical");
}

function countByClass(elements: SourceElement[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of elements) counts[e.className] = (counts[e.className] ?? 0) + 1;
  return counts;
}

/** Independent count: web-ifc's default StreamAllMeshes (skips IfcSpace and openings), per class. */
function referenceMeshedCounts(file: string): { counts: Record<string, number>; modelId: number } {
  const modelId = reference.OpenModel(new Uint8Array(fs.readFileSync(file)));
  const counts: Record<string, number> = {};
  reference.StreamAllMeshes(modelId, (mesh) => {
    const name = reference.GetNameFromTypeCode(reference.GetLineType(modelId, mesh.expressID));
    counts[name] = (counts[name] ?? 0) + 1;
  });
  return { counts, modelId };
}

type Row = unknown[];

async function query(db: StandaloneDb, ecsql: string, args: unknown[] = []): Promise<Row[]> {
  const reader = db.createQueryReader(ecsql, args.length ? QueryBinder.from(args) : undefined, {
    rowFormat: QueryRowFormat.UseECSqlPropertyIndexes,
  });
  return (await reader.toArray()) as Row[];
}

async function withReadonly<T>(bimPath: string, fn: (db: StandaloneDb) => Promise<T>): Promise<T> {
  const db = StandaloneDb.openFile(bimPath, OpenMode.Readonly);
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

interface ElementState {
  elementId: string;
  lastMod: string;
  checksum: string;
  category: string;
}

/** identifier -> element id, LastMod, aspect checksum, category name. */
async function elementStates(db: StandaloneDb): Promise<Map<string, ElementState>> {
  const rows = await query(
    db,
    `SELECT a.Identifier, e.ECInstanceId, e.LastMod, a.Checksum, c.CodeValue
       FROM bis.GeometricElement3d e
       JOIN BisCore.ExternalSourceAspect a ON a.Element.Id = e.ECInstanceId AND a.Kind = 'Element'
       JOIN BisCore.SpatialCategory c ON c.ECInstanceId = e.Category.Id`,
  );
  const m = new Map<string, ElementState>();
  for (const [identifier, elementId, lastMod, checksum, category] of rows as string[][]) {
    m.set(identifier, { elementId, lastMod, checksum, category });
  }
  return m;
}

/** Everything that a write could change, as one comparable string. */
async function dbFingerprint(db: StandaloneDb): Promise<string> {
  const parts = [
    await query(
      db,
      "SELECT ECInstanceId, ECClassId, LastMod, CodeValue, UserLabel, JsonProperties FROM bis.Element ORDER BY ECInstanceId",
    ),
    await query(
      db,
      "SELECT ECInstanceId, Element.Id, Identifier, Checksum, Version, Kind FROM BisCore.ExternalSourceAspect ORDER BY ECInstanceId",
    ),
    await query(db, "SELECT ECInstanceId, Origin, BBoxLow, BBoxHigh FROM bis.GeometricElement3d ORDER BY ECInstanceId"),
  ];
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

function meshRange(e: SourceElement): { low: number[]; high: number[] } {
  const low = [Infinity, Infinity, Infinity];
  const high = [-Infinity, -Infinity, -Infinity];
  for (const m of e.meshes) {
    for (let i = 0; i < m.positions.length; i += 3) {
      for (let k = 0; k < 3; k++) {
        low[k] = Math.min(low[k], m.positions[i + k]);
        high[k] = Math.max(high[k], m.positions[i + k]);
      }
    }
  }
  return { low, high };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-cw-"));
  reference = new WebIFC.IfcAPI();
  reference.SetWasmPath(path.dirname(require.resolve("web-ifc")) + path.sep, true);
  await reference.Init(undefined, true);
  reference.SetLogLevel(WebIFC.LogLevel.LOG_LEVEL_OFF);
  await startIModelHost(path.join(tmp, "itwin-cache"));
}, 120_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("parseIfc", () => {
  it("structural rev1: 116 physical and 4 spatial elements, counts match web-ifc's own mesh stream", SLOW, async () => {
    const p = await parsedOf(REV1);
    expect(p.schema).toBe("IFC2X3");
    expect(p.elements).toHaveLength(120);
    expect(countByClass(p.elements.filter((e) => e.kind !== undefined))).toEqual({
      IfcSite: 1,
      IfcBuilding: 1,
      IfcBuildingStorey: 2,
    });
    const counts = countByClass(physical(p));
    expect(counts).toEqual({
      IfcBeam: 44,
      IfcColumn: 42,
      IfcWallStandardCase: 17,
      IfcSlab: 9,
      IfcBuildingElementProxy: 4,
    });
    const ref = referenceMeshedCounts(REV1);
    reference.CloseModel(ref.modelId);
    expect(counts).toEqual(ref.counts);
    expect(new Set(p.elements.map((e) => e.identifier)).size).toBe(120);
    expect(p.warnings).toEqual([]);
    for (const e of physical(p)) {
      expect(e.identifier).toMatch(/^[0-9A-Za-z_$]{22}$/);
      expect(e.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(e.meshes.length).toBeGreaterThan(0);
      expect(e.properties).toMatchObject({ ifcClass: e.className, globalId: e.identifier });
      expect(e.properties).not.toHaveProperty("expressId");
      // origin is the low corner of the meshes' range
      expect(meshRange(e).low).toEqual(e.origin);
      for (const m of e.meshes) {
        expect(m.indices).toBeInstanceOf(Uint32Array);
        expect(m.positions).toBeInstanceOf(Float64Array);
        expect(m.indices.length % 3).toBe(0);
        expect(Math.max(...m.indices)).toBeLessThan(m.positions.length / 3);
        expect(m.color).toHaveLength(4);
      }
    }
    const triangles = p.elements.reduce((n, e) => n + e.meshes.reduce((k, m) => k + m.indices.length / 3, 0), 0);
    expect(triangles).toBe(15046);
  });

  it(
    "coordinates are metres, Z up: web-ifc's own Y-up mesh ranges map to ours by (x, y, z) -> (x, -z, y)",
    SLOW,
    async () => {
      const p = await parsedOf(REV1); // file unit: millimetre
      const modelId = reference.OpenModel(new Uint8Array(fs.readFileSync(REV1)));
      const yUp = new Map<number, { low: number[]; high: number[] }>();
      try {
        reference.StreamAllMeshes(modelId, (mesh) => {
          const low = [Infinity, Infinity, Infinity];
          const high = [-Infinity, -Infinity, -Infinity];
          for (let g = 0; g < mesh.geometries.size(); g++) {
            const pg = mesh.geometries.get(g);
            const geom = reference.GetGeometry(modelId, pg.geometryExpressID);
            const v = reference.GetVertexArray(geom.GetVertexData(), geom.GetVertexDataSize());
            const t = pg.flatTransformation;
            for (let i = 0; i < v.length; i += 6) {
              const w = [0, 1, 2].map((k) => t[k] * v[i] + t[4 + k] * v[i + 1] + t[8 + k] * v[i + 2] + t[12 + k]);
              for (let k = 0; k < 3; k++) {
                low[k] = Math.min(low[k], w[k]);
                high[k] = Math.max(high[k], w[k]);
              }
            }
            geom.delete();
          }
          yUp.set(mesh.expressID, { low, high });
        });
        expect(yUp.size).toBe(116);
        for (const e of physical(p)) {
          const r = yUp.get(reference.GetExpressIdFromGuid(modelId, e.identifier) as number)!;
          const ours = meshRange(e);
          const expected = { low: [r.low[0], -r.high[2], r.low[1]], high: [r.high[0], -r.low[2], r.high[1]] };
          for (let k = 0; k < 3; k++) {
            expect(ours.low[k]).toBeCloseTo(expected.low[k], 5);
            expect(ours.high[k]).toBeCloseTo(expected.high[k], 5);
          }
        }
        // metres, not millimetres: the tallest column is a storey high, the model a few tens of metres wide
        const columnHeights = physical(p)
          .filter((e) => e.className === "IfcColumn")
          .map(meshRange)
          .map((r) => r.high[2] - r.low[2]);
        expect(Math.max(...columnHeights)).toBeGreaterThan(3);
        expect(Math.max(...columnHeights)).toBeLessThan(6);
        const all = physical(p).map(meshRange);
        const width = Math.max(...all.map((r) => r.high[0])) - Math.min(...all.map((r) => r.low[0]));
        expect(width).toBeGreaterThan(10);
        expect(width).toBeLessThan(200);
      } finally {
        reference.CloseModel(modelId);
      }
    },
  );

  it("checksums are deterministic across runs and processes", SLOW, async () => {
    const a = await parsedOf(REV1);
    const b = await parseIfc(REV1);
    const digest = (p: ParsedFile) =>
      createHash("sha256")
        .update(p.elements.map((e) => `${e.identifier}=${e.checksum}`).join("\n"))
        .digest("hex");
    expect(digest(b)).toBe(digest(a));

    const script = path.join(tmp, "checksum-child.ts");
    fs.writeFileSync(
      script,
      `import { createHash } from "node:crypto";
       import { parseIfc } from ${JSON.stringify(path.resolve(__dirname, "../activities/connectors/ifc"))};
       parseIfc(${JSON.stringify(REV1)}).then((p) => {
         process.stdout.write(createHash("sha256").update(p.elements.map((e) => e.identifier + "=" + e.checksum).join("\\n")).digest("hex"));
       });`,
    );
    const tsxCli = path.join(path.dirname(require.resolve("tsx/package.json")), "dist", "cli.mjs");
    const child = spawnSync(process.execPath, [tsxCli, script], { encoding: "utf8", timeout: 60_000 });
    expect(child.stderr).toBe("");
    expect(child.stdout).toBe(digest(a));
  });

  it("structural rev2: 43 beams and 1 IfcSpace carrying the changed beam's GlobalId", SLOW, async () => {
    const p1 = await parsedOf(REV1);
    const p2 = await parsedOf(REV2);
    expect(p2.elements).toHaveLength(120);
    const counts = countByClass(physical(p2));
    expect(counts.IfcBeam).toBe(43);
    expect(countByClass(p2.elements).IfcSpace).toBe(1);
    const ref = referenceMeshedCounts(REV2); // StreamAllMeshes skips IfcSpace
    const spaceIds = reference.GetLineIDsWithType(ref.modelId, WebIFC.IFCSPACE, true);
    const spaceGuid = reference.GetLine(ref.modelId, spaceIds.get(0)).GlobalId.value as string;
    reference.CloseModel(ref.modelId);
    expect(spaceIds.size()).toBe(1);
    expect({ ...counts, IfcSpace: undefined }).toEqual({ ...ref.counts, IfcSpace: undefined });

    const space = p2.elements.find((e) => e.className === "IfcSpace")!;
    expect(space.identifier).toBe(spaceGuid);
    expect(space.meshes.length).toBeGreaterThan(0);
    const before = p1.elements.find((e) => e.identifier === space.identifier)!;
    expect(before.className).toBe("IfcBeam");
    expect(before.checksum).not.toBe(space.checksum);
    // every other element is byte-for-byte the same
    const byId = new Map(p1.elements.map((e) => [e.identifier, e.checksum]));
    const changed = p2.elements.filter((e) => byId.get(e.identifier) !== e.checksum);
    expect(changed.map((e) => e.identifier)).toEqual([space.identifier]);
  });

  it(
    "hvac: its 4 ports are placement-only elements; web-ifc problems come back as warnings, not output",
    SLOW,
    async () => {
      const spies = (["log", "info", "warn", "error", "debug", "trace"] as const).map((m) => vi.spyOn(console, m));
      const stderr = vi.spyOn(process.stderr, "write");
      const stdout = vi.spyOn(process.stdout, "write");
      let p: ParsedFile;
      try {
        p = await parseIfc(HVAC);
      } finally {
        for (const s of spies) {
          expect(s).not.toHaveBeenCalled();
          s.mockRestore();
        }
        expect(stderr).not.toHaveBeenCalled();
        expect(stdout).not.toHaveBeenCalled();
        stderr.mockRestore();
        stdout.mockRestore();
      }
      expect(p.schema).toBe("IFC4");
      expect(countByClass(p.elements)).toEqual({
        IfcDistributionPort: 4,
        IfcAirTerminal: 1,
        IfcDuctSegment: 1,
        IfcBuilding: 1,
      });
      const ports = p.elements.filter((e) => e.className === "IfcDistributionPort");
      expect(ports.every((e) => e.meshes.length === 0)).toBe(true);

      // independent check of the placement origins: web-ifc's world matrix (inches) x 0.0254
      const modelId = reference.OpenModel(new Uint8Array(fs.readFileSync(HVAC)));
      try {
        const portIds = [...reference.GetLineIDsWithType(modelId, WebIFC.IFCDISTRIBUTIONPORT, true)];
        expect(portIds).toHaveLength(4);
        for (const id of portIds) {
          const line = reference.GetLine(modelId, id);
          const port = ports.find((e) => e.identifier === line.GlobalId.value)!;
          expect(port).toBeDefined();
          const m = reference.GetWorldTransformMatrix(modelId, line.ObjectPlacement.value);
          for (let k = 0; k < 3; k++) expect(port.origin[k]).toBeCloseTo(m[12 + k] * 0.0254, 6);
        }
      } finally {
        reference.CloseModel(modelId);
      }

      const problems = p.warnings.filter((w) => w.code === "GeometryProblem");
      expect(problems.length).toBeGreaterThan(0);
      expect(problems.some((w) => w.message.includes("GetColor()"))).toBe(true);
      expect(new Set(problems.map((w) => w.message)).size).toBe(problems.length); // deduplicated
      // one summary per web-ifc function: the count of its messages and a few examples
      expect(problems.map((w) => /from (\S+)/.exec(w.message)?.[1]).sort()).toEqual(["GetColor()", "GetRefArgument()"]);
      const refArgument = problems.find((w) => w.message.includes("GetRefArgument()"))!;
      expect(refArgument).toMatchObject({ count: 2, examples: ["unexpected token type, expected REF 275"] });
      expect(refArgument.message).toContain("web-ifc reported 2 messages from GetRefArgument()");
    },
  );

  it(
    "decodes IFC string escapes, writes the spatial structure as spatial elements, excludes openings",
    SLOW,
    async () => {
      const p = await parsedOf(ARCH);
      const classes = countByClass(p.elements);
      expect(classes.IfcSpace).toBe(2);
      for (const c of ["IfcOpeningElement", "IfcProject"]) expect(classes[c]).toBeUndefined();
      expect(
        Object.fromEntries(p.elements.filter((e) => e.kind !== undefined).map((e) => [e.className, e.kind])),
      ).toEqual({ IfcSite: "Site", IfcBuilding: "Facility", IfcBuildingStorey: "FacilityPart", IfcSpace: "Space" });
      expect(p.elements.some((e) => e.name?.includes("固定"))).toBe(true); // \X2\56FA5B9A\X0\
      expect(p.elements.every((e) => !e.name || !/\\X2\\|\\X0\\/.test(e.name))).toBe(true);
      const g = await parseIfc(GEOREF);
      expect(g.schema).toBe("IFC4X3_ADD2");
      expect(physical(g).map((e) => e.className)).toEqual(["IfcBuildingElementProxy"]);
    },
  );

  it("a header-less file is InvalidFileFormat naming the file, and the next file parses fine", SLOW, async () => {
    const err = await parseIfc(BROKEN).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SourceFileError);
    expect((err as SourceFileError).code).toBe("InvalidFileFormat");
    expect((err as SourceFileError).message).toContain("ifc4_broken_missing_header.ifc");
    expect((err as SourceFileError).message).toContain("not a readable IFC file");

    const junk = path.join(tmp, "junk.ifc");
    fs.writeFileSync(junk, "hello, I am not STEP");
    await expect(parseIfc(junk)).rejects.toMatchObject({ code: "InvalidFileFormat" });
    const empty = path.join(tmp, "empty.ifc");
    fs.writeFileSync(empty, "");
    await expect(parseIfc(empty)).rejects.toMatchObject({ code: "InvalidFileFormat" });

    const after = await parseIfc(HVAC);
    expect(after.elements).toHaveLength(7);
    const again = await parseIfc(REV1);
    expect(again.elements).toHaveLength(120);
  });

  it("a missing file is FileNotFound", async () => {
    await expect(parseIfc(path.join(tmp, "nope.ifc"))).rejects.toMatchObject({
      name: "SourceFileError",
      code: "FileNotFound",
    });
  });
});

describe("writeSourceFile", () => {
  let bimPath: string;
  let base: Omit<WriteInput, "contentHash" | "runId" | "parsed">;
  let rev1Ids: Map<string, ElementState>;

  beforeAll(() => {
    bimPath = path.join(tmp, "imodels", "nested", "structural.bim");
    base = {
      bimPath,
      connectionId: "conn-1",
      connectionName: "Structural",
      sourceFileId: "file-1",
      sourceFilePath: "structural/ifc2x3_structural_revit_example.ifc",
    };
  });

  it("writes rev1 into a new iModel with provenance per element", SLOW, async () => {
    const p1 = await parsedOf(REV1);
    ensureIModel(bimPath, "Structural test");
    expect(fs.existsSync(bimPath)).toBe(true);
    const r = await writeSourceFile({ ...base, contentHash: "hash-rev1", runId: "run-1", parsed: p1 });
    expect(r).toMatchObject({ inserted: 120, updated: 0, deleted: 0, unchanged: 0, replayed: false, warnings: [] });

    await withReadonly(bimPath, async (db) => {
      expect(await query(db, "SELECT COUNT(*) FROM Generic.PhysicalObject")).toEqual([[116]]);
      const perCategory = Object.fromEntries(
        (await query(
          db,
          "SELECT c.CodeValue, COUNT(*) FROM Generic.PhysicalObject e JOIN BisCore.SpatialCategory c ON c.ECInstanceId = e.Category.Id GROUP BY c.CodeValue",
        )) as [string, number][],
      );
      expect(perCategory).toEqual({
        IfcBeam: 44,
        IfcColumn: 42,
        IfcWallStandardCase: 17,
        IfcSlab: 9,
        IfcBuildingElementProxy: 4,
      });

      // exactly one ExternalSourceAspect per element, identifier = a GlobalId, scoped to the RepositoryLink
      const aspects = (await query(
        db,
        `SELECT e.ECInstanceId, COUNT(a.ECInstanceId), MIN(a.Identifier), MIN(a.Scope.Id), MIN(a.Kind)
           FROM Generic.PhysicalObject e LEFT JOIN BisCore.ExternalSourceAspect a ON a.Element.Id = e.ECInstanceId
          GROUP BY e.ECInstanceId`,
      )) as [string, number, string, string, string][];
      expect(aspects).toHaveLength(116);
      expect(
        aspects.every(([, n, , scope, kind]) => n === 1 && scope === r.repositoryLinkId && kind === "Element"),
      ).toBe(true);
      expect(new Set(aspects.map((a) => a[2]))).toEqual(new Set(physical(p1).map((e) => e.identifier)));

      const links = await query(
        db,
        "SELECT ECInstanceId, CodeValue, Url, UserLabel, JsonProperties FROM BisCore.RepositoryLink",
      );
      expect(links).toHaveLength(1);
      expect(links[0].slice(0, 4)).toEqual([
        r.repositoryLinkId,
        "conn-1/file-1",
        base.sourceFilePath,
        "ifc2x3_structural_revit_example.ifc",
      ]);
      expect(JSON.parse(links[0][4] as string).imodelSync.lastWrite).toMatchObject({
        runId: "run-1",
        contentHash: "hash-rev1",
      });
      expect(
        await query(db, "SELECT Identifier, Version, Checksum FROM BisCore.ExternalSourceAspect WHERE Element.Id=?", [
          r.repositoryLinkId,
        ]),
      ).toEqual([["file-1", "hash-rev1", "hash-rev1"]]);
      expect(
        await query(db, "SELECT COUNT(*) FROM BisCore.ExternalSource WHERE Repository.Id=?", [r.repositoryLinkId]),
      ).toEqual([[1]]);
      expect(await query(db, "SELECT s.CodeValue, s.UserLabel FROM BisCore.Subject s WHERE s.Parent.Id=0x1")).toEqual([
        ["conn-1", "Structural"],
      ]);
      expect(
        await query(db, "SELECT CodeValue FROM BisCore.PhysicalPartition WHERE ECInstanceId=?", [r.modelId]),
      ).toEqual([[base.sourceFilePath]]);
      expect(await query(db, "SELECT COUNT(*) FROM Generic.PhysicalObject WHERE Model.Id=?", [r.modelId])).toEqual([
        [116],
      ]);

      // placement: origin = element origin, bbox = mesh range in local coordinates (non-null for meshed elements)
      const placements = (await query(
        db,
        `SELECT a.Identifier, e.Origin, e.BBoxLow, e.BBoxHigh, e.UserLabel FROM Generic.PhysicalObject e
           JOIN BisCore.ExternalSourceAspect a ON a.Element.Id = e.ECInstanceId`,
      )) as [string, XYZ, XYZ, XYZ, string][];
      const byId = new Map(p1.elements.map((e) => [e.identifier, e]));
      for (const [identifier, origin, low, high, label] of placements) {
        const e = byId.get(identifier)!;
        expect(label).toBe(e.name);
        expect([origin.X, origin.Y, origin.Z]).toEqual(e.origin);
        const range = meshRange(e);
        expect(high.X - low.X).toBeGreaterThan(0);
        expect(high.Z - low.Z).toBeGreaterThan(0);
        for (const [k, axis] of (["X", "Y", "Z"] as const).entries()) {
          expect(low[axis] + origin[axis]).toBeCloseTo(range.low[k], 6);
          expect(high[axis] + origin[axis]).toBeCloseTo(range.high[k], 6);
        }
      }
      // viewers hide what is outside the project extents
      const ext = db.projectExtents;
      const all = physical(p1).map(meshRange);
      expect(ext.low.x).toBeLessThanOrEqual(Math.min(...all.map((r) => r.low[0])) + 1e-6);
      expect(ext.high.y).toBeGreaterThanOrEqual(Math.max(...all.map((r) => r.high[1])) - 1e-6);
      rev1Ids = await elementStates(db);
    });
  });

  it(
    "writes rev2 over it: the beam that became a space is replaced (another BIS class), 119 untouched",
    SLOW,
    async () => {
      const p2 = await parsedOf(REV2);
      await new Promise((r) => setTimeout(r, 20)); // LastMod has millisecond resolution
      const r = await writeSourceFile({ ...base, contentHash: "hash-rev2", runId: "run-2", parsed: p2 });
      expect(r).toMatchObject({ inserted: 0, updated: 1, deleted: 0, unchanged: 119, replayed: false });

      const space = p2.elements.find((e) => e.className === "IfcSpace")!;
      await withReadonly(bimPath, async (db) => {
        const perCategory = Object.fromEntries(
          (await query(
            db,
            "SELECT c.CodeValue, COUNT(*) FROM Generic.PhysicalObject e JOIN BisCore.SpatialCategory c ON c.ECInstanceId = e.Category.Id GROUP BY c.CodeValue",
          )) as [string, number][],
        );
        expect(perCategory.IfcBeam).toBe(43);
        expect(perCategory.IfcSpace).toBeUndefined(); // a spatial element now, not a physical object
        const now = await elementStates(db);
        expect(now.size).toBe(120);
        expect(
          await query(
            db,
            "SELECT COUNT(*) FROM ImodelSync.Space s JOIN BisCore.ExternalSourceAspect a ON a.Element.Id=s.ECInstanceId WHERE a.Identifier=?",
            [space.identifier],
          ),
        ).toEqual([[1]]);
        for (const [identifier, before] of rev1Ids) {
          const after = now.get(identifier)!;
          if (identifier === space.identifier) {
            expect(after.elementId).not.toBe(before.elementId); // a class cannot change in place
            expect(after.lastMod).not.toBe(before.lastMod);
            expect(after.category).toBe("IfcSpace");
            expect(after.checksum).toBe(space.checksum);
          } else {
            expect(after.elementId).toBe(before.elementId);
            expect(after.lastMod).toBe(before.lastMod);
            expect(after.checksum).toBe(before.checksum);
          }
        }
        expect(
          await query(db, "SELECT Version FROM BisCore.ExternalSourceAspect WHERE Element.Id=?", [r.repositoryLinkId]),
        ).toEqual([["hash-rev2"]]);
      });
    },
  );

  it("a retry with the same runId and contentHash is replayed without writing", SLOW, async () => {
    const before = await withReadonly(bimPath, dbFingerprint);
    const r = await writeSourceFile({
      ...base,
      contentHash: "hash-rev2",
      runId: "run-2",
      parsed: await parsedOf(REV2),
    });
    expect(r).toMatchObject({ inserted: 0, updated: 1, deleted: 0, unchanged: 119, replayed: true });
    expect(await withReadonly(bimPath, dbFingerprint)).toBe(before);
    // same runId, other content: a real write (nothing changed, so all unchanged)
    const r2 = await writeSourceFile({
      ...base,
      contentHash: "hash-rev2b",
      runId: "run-2",
      parsed: await parsedOf(REV2),
    });
    expect(r2).toMatchObject({ inserted: 0, updated: 0, deleted: 0, unchanged: 120, replayed: false });
  });

  it("a write that fails midway leaves the iModel exactly as it was", SLOW, async () => {
    const p2 = await parsedOf(REV2);
    const before = await withReadonly(bimPath, dbFingerprint);
    const good = p2.elements[0];
    const elements: SourceElement[] = [
      ...p2.elements.slice(0, 50).map((e) => ({ ...e, checksum: "f".repeat(64) })), // 50 updates
      { ...good, identifier: "new-element-1", className: "IfcTestOnlyClass", checksum: "a".repeat(64) }, // insert + new category
      ...p2.elements.slice(50, 100), // unchanged
      // a fault in the middle of the writes: serialising this element's properties throws
      {
        ...good,
        identifier: "broken-element",
        checksum: "b".repeat(64),
        properties: {
          get size(): number {
            throw new Error("fault injected while writing");
          },
        },
      },
    ];
    await expect(
      writeSourceFile({ ...base, contentHash: "hash-broken", runId: "run-3", parsed: { ...p2, elements } }),
    ).rejects.toThrow(/fault injected while writing/);
    expect(await withReadonly(bimPath, dbFingerprint)).toBe(before);
    await withReadonly(bimPath, async (db) => {
      expect(
        await query(db, "SELECT COUNT(*) FROM BisCore.SpatialCategory WHERE CodeValue='IfcTestOnlyClass'"),
      ).toEqual([[0]]);
    });

    // the iModel is still writable: going back to rev1 turns the space back into a beam
    const r = await writeSourceFile({
      ...base,
      contentHash: "hash-rev1",
      runId: "run-4",
      parsed: await parsedOf(REV1),
    });
    expect(r).toMatchObject({ inserted: 0, updated: 1, deleted: 0, unchanged: 119, replayed: false });
  });

  it("element data it cannot store is not written, accounted, and its element kept as it was", SLOW, async () => {
    const p1 = await parsedOf(REV1);
    const before = await withReadonly(bimPath, elementStates);
    const [bad, worse] = physical(p1);
    const rest = p1.elements.filter((e) => e !== bad && e !== worse);
    const elements: SourceElement[] = [
      { ...bad, checksum: "c".repeat(64), origin: [Number.NaN, 0, 0] }, // changed, and cannot be stored
      { ...worse, checksum: "d".repeat(64), meshes: [{ ...worse.meshes[0], indices: new Uint32Array([0, 1, 1e6]) }] },
      ...rest,
      {
        ...bad,
        identifier: "new-but-broken",
        checksum: "e".repeat(64),
        curves: [{ kind: "linestring", points: new Float64Array([1, 2]) }],
      },
    ];
    const r = await writeSourceFile({
      ...base,
      contentHash: "hash-invalid",
      runId: "run-invalid",
      parsed: { ...p1, elements, items: { read: elements.length, notWritten: [] } },
    });
    expect(r).toMatchObject({ inserted: 0, updated: 0, deleted: 0, unchanged: 118 });
    expect(r.items.read).toBe(121);
    expect(r.items.written).toEqual({ inserted: 0, updated: 0, unchanged: 118 });
    // their property values and relationships are not written either, and say so
    const notWrittenValues = [bad, worse, bad].reduce((n, e) => n + (e.propertyValues?.length ?? 0), 0);
    expect(r.items.properties?.notWritten.find((g) => g.code === "ElementNotWritten")?.count ?? 0).toBe(
      notWrittenValues,
    );
    const invalid = r.items.notWritten.filter((g) => g.code === "InvalidElementData");
    expect(invalid.reduce((n, g) => n + g.count, 0)).toBe(3);
    expect(invalid.flatMap((g) => g.examples).sort()).toEqual(
      [bad.identifier, worse.identifier, "new-but-broken"].sort(),
    );
    expect(r.warnings.filter((w) => w.code === "InvalidElementData").length).toBeGreaterThan(0);
    const after = await withReadonly(bimPath, elementStates);
    expect(after.get(bad.identifier)).toEqual(before.get(bad.identifier)); // kept as it was
    expect(after.get(worse.identifier)).toEqual(before.get(worse.identifier));
    expect(after.has("new-but-broken")).toBe(false);
  });

  it("the deletion guard holds a write that would delete too many elements; nothing is written", SLOW, async () => {
    const p1 = await parsedOf(REV1);
    const before = await withReadonly(bimPath, dbFingerprint);
    const few = [...physical(p1).slice(0, 40), ...p1.elements.filter((e) => e.kind !== undefined)]; // 76 of 120 would go
    const parsed = { ...p1, elements: few, items: { read: few.length, notWritten: [] } };
    const guard = { enabled: true, fraction: 0.5, minElements: 10 };
    const held = await writeSourceFile({
      ...base,
      contentHash: "hash-few",
      runId: "run-guard",
      parsed,
      deletionGuard: guard,
    }).catch((e: unknown) => e);
    expect(held).toBeInstanceOf(DeletionGuardError);
    expect(held).toMatchObject({ existing: 120, deleted: 76 });
    expect((held as Error).message).toMatch(
      /76 of the 120 elements .*63\.3 %.*more than 50 % of its elements and at least 10/,
    );
    // the RepositoryLink's new version was written before the guard held: the transaction was abandoned
    expect(await withReadonly(bimPath, dbFingerprint)).toBe(before);
    // a guard that needs more deletions lets it through
    const r = await writeSourceFile({
      ...base,
      contentHash: "hash-few",
      runId: "run-guard-2",
      parsed,
      deletionGuard: { ...guard, minElements: 100 },
    });
    expect(r).toMatchObject({ deleted: 76, unchanged: 44 });
    // back to the whole file for the tests below
    const back = await writeSourceFile({ ...base, contentHash: "hash-rev1", runId: "run-guard-3", parsed: p1 });
    expect(back).toMatchObject({ inserted: 76, unchanged: 44 });
  });

  it("deletes elements whose identifiers are gone, with their aspects", SLOW, async () => {
    const p1 = await parsedOf(REV1);
    const kept = p1.elements.filter((e) => e.className !== "IfcSlab");
    const r = await writeSourceFile({
      ...base,
      contentHash: "hash-noslab",
      runId: "run-5",
      parsed: { ...p1, elements: kept },
    });
    expect(r).toMatchObject({ inserted: 0, updated: 0, deleted: 9, unchanged: 111 });
    await withReadonly(bimPath, async (db) => {
      expect(await query(db, "SELECT COUNT(*) FROM Generic.PhysicalObject")).toEqual([[107]]);
      expect(await query(db, "SELECT COUNT(*) FROM BisCore.ExternalSourceAspect WHERE Kind='Element'")).toEqual([
        [111],
      ]);
    });
  });

  it("a moved source file keeps its RepositoryLink and model; the connection rename is applied", SLOW, async () => {
    const p1 = await parsedOf(REV1);
    const kept = p1.elements.filter((e) => e.className !== "IfcSlab");
    const before = await writeSourceFile({
      ...base,
      contentHash: "hash-noslab",
      runId: "run-6",
      parsed: { ...p1, elements: kept },
    });
    const moved = await writeSourceFile({
      ...base,
      connectionName: "Structural (renamed)",
      sourceFilePath: "archive/structural.ifc",
      contentHash: "hash-noslab",
      runId: "run-7",
      parsed: { ...p1, elements: kept },
    });
    expect(moved).toMatchObject({
      inserted: 0,
      updated: 0,
      deleted: 0,
      unchanged: 111,
      modelId: before.modelId,
      repositoryLinkId: before.repositoryLinkId,
    });
    await withReadonly(bimPath, async (db) => {
      expect(await query(db, "SELECT CodeValue FROM BisCore.PhysicalPartition")).toEqual([["archive/structural.ifc"]]);
      expect(await query(db, "SELECT Url, UserLabel FROM BisCore.RepositoryLink")).toEqual([
        ["archive/structural.ifc", "structural.ifc"],
      ]);
      expect(await query(db, "SELECT UserLabel FROM BisCore.Subject WHERE CodeValue='conn-1'")).toEqual([
        ["Structural (renamed)"],
      ]);
    });
  });

  it("serialises concurrent writers of one iModel and keeps files apart", SLOW, async () => {
    const other = path.join(tmp, "imodels", "two-files.bim");
    const [a, b] = await Promise.all([
      writeSourceFile({ ...base, bimPath: other, contentHash: "h-a", runId: "run-a", parsed: await parsedOf(REV1) }),
      writeSourceFile({
        ...base,
        bimPath: other,
        sourceFileId: "file-2",
        sourceFilePath: "mech/hvac.ifc",
        contentHash: "h-b",
        runId: "run-b",
        parsed: await parseIfc(HVAC),
      }),
    ]);
    expect(a.inserted).toBe(120);
    expect(b.inserted).toBe(7);
    expect(a.repositoryLinkId).not.toBe(b.repositoryLinkId);
    expect(a.modelId).not.toBe(b.modelId);
    await withReadonly(other, async (db) => {
      expect(await query(db, "SELECT COUNT(*) FROM BisCore.RepositoryLink")).toEqual([[2]]);
      expect(await query(db, "SELECT COUNT(*) FROM Generic.PhysicalObject")).toEqual([[122]]);
      // placement-only elements have a null (zero) bbox, at their origin
      const port = (await parsedOf(HVAC)).elements.find((e) => e.meshes.length === 0)!;
      const rows = (await query(
        db,
        "SELECT e.Origin, e.BBoxLow, e.BBoxHigh FROM Generic.PhysicalObject e JOIN BisCore.ExternalSourceAspect a ON a.Element.Id = e.ECInstanceId WHERE a.Identifier=?",
        [port.identifier],
      )) as [XYZ, XYZ, XYZ][];
      expect([rows[0][0].X, rows[0][0].Y, rows[0][0].Z]).toEqual(port.origin);
    });
  });
});

interface XYZ {
  X: number;
  Y: number;
  Z: number;
}
