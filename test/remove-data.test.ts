/**
 * Removing a connection's data from an iModel (activities/imodel/remove.ts), on real sample files and real StandaloneDbs:
 * exactly the removed file's elements, aspects, model, partition, ExternalSource and RepositoryLink go; everything else
 * (other files, other connections, shared categories) keeps its ids and LastMod.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { IModelDb, IModelHost, StandaloneDb } from "@itwin/core-backend";
import { OpenMode } from "@itwin/core-bentley";
import { IModel, QueryBinder, QueryRowFormat } from "@itwin/core-common";
import { parseIfc } from "../activities/connectors/ifc";
import { type ParsedFile } from "../activities/connectors/types";
import {
  ConnectionFilesRemainError,
  listSourceFilesInIModel,
  removeConnectionSubject,
  removeSourceFileData,
} from "../activities/imodel/remove";
import { startIModelHost, type WriteInput, writeSourceFile } from "../activities/imodel/writer";

const SAMPLES = path.resolve(__dirname, "../samples/ifc");
const STRUCTURAL = path.join(SAMPLES, "ifc2x3_structural_revit_example_rev1.ifc");
const HVAC = path.join(SAMPLES, "ifc4_hvac_air_terminal_duct.ifc");
const ARCH = path.join(SAMPLES, "ifc4_architecture_revit_testmodel.ifc");
const GEOREF = path.join(SAMPLES, "ifc4x3_georef_mapconversion_utm.ifc");

const SLOW = { timeout: 180_000 };
const A = "conn-a";
const B = "conn-b";
const C = "conn-c";
const STRUCTURAL_PATH = "models/structural.ifc";
const HVAC_PATH = "models/hvac.ifc";
const ARCH_PATH = "arch/architecture.ifc";

const REPOSITORY_MODEL = new Set([IModel.repositoryModelId]);
/** Definition models and partitions every iModel has (the dictionary model and the like), before any file's. */
const IMODEL_DEFINITION_MODELS = 2;
const IMODEL_DEFINITION_PARTITIONS = 1;

let tmp: string;
let bimPath: string;
const written = new Map<string, number>(); // sourceFileId -> elements inserted

type Row = unknown[];

async function query(db: StandaloneDb, ecsql: string, args: unknown[] = []): Promise<Row[]> {
  const reader = db.createQueryReader(ecsql, args.length ? QueryBinder.from(args) : undefined, {
    rowFormat: QueryRowFormat.UseECSqlPropertyIndexes,
  });
  return (await reader.toArray()) as Row[];
}

async function withDb<T>(file: string, fn: (db: StandaloneDb) => Promise<T>): Promise<T> {
  const db = StandaloneDb.openFile(file, OpenMode.Readonly);
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

/** Every element, aspect and model of the iModel (id -> the row as JSON) and the stored iModel properties. */
interface Snapshot {
  elements: Map<string, string>;
  aspects: Map<string, string>;
  models: Map<string, string>;
  props: string;
  /** Property values (ImodelSync.PropertyValue aspects) and link-table relationships, row for row. */
  propertyValues: Map<string, string>;
  relationships: Map<string, string>;
}

async function snapshot(file: string): Promise<Snapshot> {
  return withDb(file, async (db) => {
    const byId = (rows: Row[]) => new Map(rows.map((r) => [r[0] as string, JSON.stringify(r)]));
    return {
      elements: byId(
        await query(
          db,
          "SELECT ECInstanceId, ECClassId, LastMod, CodeValue, UserLabel, Model.Id, Parent.Id, JsonProperties FROM bis.Element ORDER BY ECInstanceId",
        ),
      ),
      aspects: byId(
        await query(
          db,
          "SELECT ECInstanceId, Element.Id, Scope.Id, Source.Id, Kind, Identifier, Checksum, Version FROM BisCore.ExternalSourceAspect ORDER BY ECInstanceId",
        ),
      ),
      models: byId(
        await query(
          db,
          "SELECT ECInstanceId, ECClassId, ModeledElement.Id, ParentModel.Id, LastMod, IsPrivate FROM bis.Model ORDER BY ECInstanceId",
        ),
      ),
      propertyValues: byId(
        await query(
          db,
          "SELECT ECInstanceId, Element.Id, SetName, Name, ItemIndex, TextValue, NumberValue FROM ImodelSync.PropertyValue ORDER BY ECInstanceId",
        ),
      ),
      relationships: byId(
        await query(
          db,
          "SELECT ECInstanceId, ECClassId, SourceECInstanceId, TargetECInstanceId FROM bis.ElementRefersToElements ORDER BY ECInstanceId",
        ),
      ),
      props: JSON.stringify(
        ["Units", "Extents", "DgnGCS"].map((name) => [
          name,
          db.queryFilePropertyString({ namespace: "dgn_Db", name }) ?? null,
        ]),
      ),
    };
  });
}

function without(m: Map<string, string>, ids: Set<string>): Map<string, string> {
  return new Map([...m].filter(([id]) => !ids.has(id)));
}

const COUNTED = [
  "Generic.PhysicalObject",
  "ImodelSync.SpatialStructureElement",
  "Generic.PhysicalType",
  "ImodelSync.Material",
  "ImodelSync.PropertyValue",
  "bis.ElementRefersToElements",
  "BisCore.DefinitionModel",
  "BisCore.DefinitionPartition",
  "BisCore.ExternalSourceAspect",
  "BisCore.RepositoryLink",
  "BisCore.ExternalSource",
  "BisCore.PhysicalModel",
  "BisCore.PhysicalPartition",
  "BisCore.Subject",
  "BisCore.SpatialCategory",
  "BisCore.SubCategory",
];

async function counts(file: string): Promise<Record<string, number>> {
  return withDb(file, async (db) => {
    const out: Record<string, number> = {};
    for (const cls of COUNTED) out[cls] = (await query(db, `SELECT COUNT(*) FROM ${cls}`))[0][0] as number;
    return out;
  });
}

/** The ids a file of a connection owns, found independently of remove.ts, by the writer's layout. */
interface FileIds {
  link: string;
  source: string;
  /** The file's physical partition and its definition partition (types and materials). */
  partitions: string[];
  /** Elements (physical and spatial) and definitions (types and materials), by their provenance. */
  elements: string[];
  definitions: string[];
  aspects: string[];
  propertyValues: string[];
  relationships: string[];
}

async function fileIds(file: string, connectionId: string, sourceFileId: string): Promise<FileIds> {
  return withDb(file, async (db) => {
    const [[link]] = (await query(db, "SELECT ECInstanceId FROM BisCore.RepositoryLink WHERE CodeValue=?", [
      `${connectionId}/${sourceFileId}`,
    ])) as string[][];
    const [[source]] = (await query(db, "SELECT ECInstanceId FROM BisCore.ExternalSource WHERE Repository.Id=?", [
      link,
    ])) as string[][];
    const partitions = (
      (await query(db, "SELECT Element.Id FROM BisCore.ExternalSourceAspect WHERE Scope.Id=? AND Kind='Model'", [
        link,
      ])) as string[][]
    ).map((r) => r[0]);
    const byKind = async (kind: string) =>
      (
        (await query(db, "SELECT Element.Id FROM BisCore.ExternalSourceAspect WHERE Scope.Id=? AND Kind=?", [
          link,
          kind,
        ])) as string[][]
      ).map((r) => r[0]);
    const elements = await byKind("Element");
    const definitions = await byKind("Definition");
    const owners = new Set([link, ...partitions, ...elements, ...definitions]);
    const aspects = (
      (await query(db, "SELECT ECInstanceId, Element.Id FROM BisCore.ExternalSourceAspect")) as string[][]
    )
      .filter((r) => owners.has(r[1]))
      .map((r) => r[0]);
    const propertyValues = (
      (await query(db, "SELECT ECInstanceId, Element.Id FROM ImodelSync.PropertyValue")) as string[][]
    )
      .filter((r) => owners.has(r[1]))
      .map((r) => r[0]);
    const relationships = (
      (await query(
        db,
        "SELECT ECInstanceId, SourceECInstanceId, TargetECInstanceId FROM bis.ElementRefersToElements",
      )) as string[][]
    )
      .filter((r) => owners.has(r[1]) || owners.has(r[2]))
      .map((r) => r[0]);
    return { link, source, partitions, elements, definitions, aspects, propertyValues, relationships };
  });
}

/** Element ids and LastMod of a file's elements, by identifier. */
async function elementStates(file: string, connectionId: string, sourceFileId: string): Promise<Map<string, string>> {
  return withDb(file, async (db) => {
    const rows = await query(
      db,
      `SELECT a.Identifier, e.ECInstanceId, e.LastMod FROM bis.GeometricElement3d e
         JOIN BisCore.ExternalSourceAspect a ON a.Element.Id=e.ECInstanceId AND a.Kind='Element'
         JOIN BisCore.RepositoryLink l ON l.ECInstanceId=a.Scope.Id
        WHERE l.CodeValue=?`,
      [`${connectionId}/${sourceFileId}`],
    );
    return new Map(
      rows.map(([identifier, id, lastMod]) => [identifier as string, `${id as string}@${lastMod as string}`]),
    );
  });
}

function writeInput(
  file: string,
  connectionId: string,
  sourceFileId: string,
  sourceFilePath: string,
  parsed: ParsedFile,
): WriteInput {
  return {
    bimPath: file,
    connectionId,
    connectionName: `Connection ${connectionId}`,
    sourceFileId,
    sourceFilePath,
    contentHash: `hash-${sourceFileId}`,
    runId: `run-write-${sourceFileId}`,
    parsed,
  };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-remove-"));
  bimPath = path.join(tmp, "imodels", "shared.bim");
  await startIModelHost(path.join(tmp, "itwin-cache"), { profileName: `remove-${process.pid}-${Date.now()}` });
}, 120_000);

afterAll(async () => {
  vi.restoreAllMocks();
  if (IModelHost.isValid) await IModelHost.shutdown();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("removing a connection's data", () => {
  let initial: Snapshot;
  let bInitial: Map<string, string>;
  let structuralInitial: Map<string, string>;
  let categoriesInitial: number;
  let countsInitial: Record<string, number>;
  let hvacIds: FileIds;

  it("writes connection A (structural + hvac) and connection B (architecture) into one iModel", SLOW, async () => {
    for (const [connectionId, sourceFileId, sourcePath, file] of [
      [A, "structural", STRUCTURAL_PATH, STRUCTURAL],
      [A, "hvac", HVAC_PATH, HVAC],
      [B, "arch", ARCH_PATH, ARCH],
    ] as const) {
      const r = await writeSourceFile(
        writeInput(bimPath, connectionId, sourceFileId, sourcePath, await parseIfc(file)),
      );
      expect(r.inserted).toBeGreaterThan(0);
      written.set(sourceFileId, r.inserted);
    }
    initial = await snapshot(bimPath);
    bInitial = await elementStates(bimPath, B, "arch");
    structuralInitial = await elementStates(bimPath, A, "structural");
    expect(bInitial.size).toBe(written.get("arch"));
    expect(structuralInitial.size).toBe(written.get("structural"));
    const c = await counts(bimPath);
    countsInitial = c;
    categoriesInitial = c["BisCore.SpatialCategory"];
    const total = written.get("structural")! + written.get("hvac")! + written.get("arch")!;
    const files = [
      await fileIds(bimPath, A, "structural"),
      await fileIds(bimPath, A, "hvac"),
      await fileIds(bimPath, B, "arch"),
    ];
    const definitions = files.reduce((n, f) => n + f.definitions.length, 0);
    expect(definitions).toBe(42 + 2 + 10); // types and materials of the three files
    expect(c).toMatchObject({
      "Generic.PhysicalObject": 116 + 6 + 21,
      "ImodelSync.SpatialStructureElement": 4 + 1 + 6,
      "Generic.PhysicalType": definitions - (3 + 1 + 6),
      "ImodelSync.Material": 3 + 1 + 6,
      // per element and definition its provenance; per file: Kind Model (physical and definition) + DocumentWithBeGuid
      "BisCore.ExternalSourceAspect": total + definitions + 3 * 3,
      "ImodelSync.PropertyValue": files.reduce((n, f) => n + f.propertyValues.length, 0),
      "bis.ElementRefersToElements": files.reduce((n, f) => n + f.relationships.length, 0),
      "BisCore.RepositoryLink": 3,
      "BisCore.ExternalSource": 3,
      "BisCore.PhysicalModel": 3,
      "BisCore.PhysicalPartition": 3,
      "BisCore.DefinitionModel": IMODEL_DEFINITION_MODELS + 3,
      "BisCore.DefinitionPartition": IMODEL_DEFINITION_PARTITIONS + 3,
      "BisCore.Subject": 3,
    });
    expect(total).toBe(120 + 7 + 27);
    expect(c["ImodelSync.PropertyValue"]).toBeGreaterThan(1500);
    expect(await listSourceFilesInIModel(bimPath, A)).toEqual([
      { sourceFileId: "hvac", path: HVAC_PATH },
      { sourceFileId: "structural", path: STRUCTURAL_PATH },
    ]);
    expect(await listSourceFilesInIModel(bimPath, B)).toEqual([{ sourceFileId: "arch", path: ARCH_PATH }]);
    expect(await listSourceFilesInIModel(bimPath, "conn")).toEqual([]); // a prefix of A and B's ids is not a connection
  });

  it(
    "removeSourceFileData(A, hvac) removes exactly hvac's elements, aspects, model, partition, ExternalSource and link",
    SLOW,
    async () => {
      const hvac = await fileIds(bimPath, A, "hvac");
      hvacIds = hvac;
      expect(hvac.elements).toHaveLength(written.get("hvac")!);
      const before = await counts(bimPath);

      const r = await removeSourceFileData({ bimPath, connectionId: A, sourceFileId: "hvac", runId: "run-del-1" });
      // elements and definitions (2) of its models; a physical and a definition model
      expect(r).toEqual({
        found: true,
        path: HVAC_PATH,
        elementsDeleted: written.get("hvac"),
        modelsDeleted: 2,
        definitionsDeleted: hvac.definitions.length,
      });
      expect(hvac.definitions).toHaveLength(2);
      expect(hvac.propertyValues.length).toBeGreaterThan(0);
      expect(hvac.relationships.length).toBeGreaterThan(0);

      const after = await counts(bimPath);
      expect(after).toEqual({
        ...before,
        "Generic.PhysicalObject": before["Generic.PhysicalObject"] - 6,
        "ImodelSync.SpatialStructureElement": before["ImodelSync.SpatialStructureElement"] - 1,
        "Generic.PhysicalType": before["Generic.PhysicalType"] - 1,
        "ImodelSync.Material": before["ImodelSync.Material"] - 1,
        "ImodelSync.PropertyValue": before["ImodelSync.PropertyValue"] - hvac.propertyValues.length,
        "bis.ElementRefersToElements": before["bis.ElementRefersToElements"] - hvac.relationships.length,
        "BisCore.ExternalSourceAspect": before["BisCore.ExternalSourceAspect"] - hvac.aspects.length,
        "BisCore.RepositoryLink": 2,
        "BisCore.ExternalSource": 2,
        "BisCore.PhysicalModel": 2,
        "BisCore.PhysicalPartition": 2,
        "BisCore.DefinitionModel": IMODEL_DEFINITION_MODELS + 2,
        "BisCore.DefinitionPartition": IMODEL_DEFINITION_PARTITIONS + 2,
      });
      expect(hvac.aspects).toHaveLength(written.get("hvac")! + 2 + 3); // elements, definitions, 2 models, the link
      // Everything else is unchanged, row for row (ids, LastMod, codes, properties); categories are all still there.
      const removedElements = new Set([
        hvac.link,
        hvac.source,
        ...hvac.partitions,
        ...hvac.elements,
        ...hvac.definitions,
      ]);
      const now = await snapshot(bimPath);
      expect(now.elements).toEqual(without(initial.elements, removedElements));
      expect(now.aspects).toEqual(without(initial.aspects, new Set(hvac.aspects)));
      expect(now.propertyValues).toEqual(without(initial.propertyValues, new Set(hvac.propertyValues)));
      expect(now.relationships).toEqual(without(initial.relationships, new Set(hvac.relationships)));
      // The repository model's LastMod follows the deletion of the link in it (set by core-backend); the row stays.
      expect(without(now.models, REPOSITORY_MODEL)).toEqual(
        without(initial.models, new Set([...hvac.partitions, ...REPOSITORY_MODEL])),
      );
      expect(now.models.has(IModel.repositoryModelId)).toBe(true);
      expect(after["BisCore.SpatialCategory"]).toBe(categoriesInitial);
      expect(await elementStates(bimPath, B, "arch")).toEqual(bInitial);
      expect(await elementStates(bimPath, A, "structural")).toEqual(structuralInitial);
      expect(await listSourceFilesInIModel(bimPath, A)).toEqual([
        { sourceFileId: "structural", path: STRUCTURAL_PATH },
      ]);
    },
  );

  it("removing it again returns found:false and changes nothing", SLOW, async () => {
    const before = await snapshot(bimPath);
    const r = await removeSourceFileData({ bimPath, connectionId: A, sourceFileId: "hvac", runId: "run-del-2" });
    expect(r).toEqual({ found: false, elementsDeleted: 0, modelsDeleted: 0 });
    expect(await snapshot(bimPath)).toEqual(before);
    // a file that was never synchronized, and a file of A asked for under B
    expect(
      await removeSourceFileData({ bimPath, connectionId: A, sourceFileId: "never", runId: "run-del-3" }),
    ).toMatchObject({ found: false });
    expect(
      await removeSourceFileData({ bimPath, connectionId: B, sourceFileId: "structural", runId: "run-del-4" }),
    ).toMatchObject({ found: false });
    expect(await snapshot(bimPath)).toEqual(before);
  });

  it("removeConnectionSubject refuses while a file of the connection still has data, naming it", SLOW, async () => {
    const before = await snapshot(bimPath);
    const err = await removeConnectionSubject({ bimPath, connectionId: A, clearGeoreference: true }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectionFilesRemainError);
    expect((err as Error).message).toContain(STRUCTURAL_PATH);
    expect((err as ConnectionFilesRemainError).files).toEqual([{ sourceFileId: "structural", path: STRUCTURAL_PATH }]);
    expect(await snapshot(bimPath)).toEqual(before);
  });

  it("a removal that fails midway leaves the iModel as it was", SLOW, async () => {
    const before = await snapshot(bimPath);
    // Fails after the file's elements were deleted in the open transaction, when its model is about to go.
    const spy = vi.spyOn(IModelDb.Models.prototype, "deleteModel").mockImplementationOnce(() => {
      throw new Error("injected failure");
    });
    try {
      await expect(
        removeSourceFileData({ bimPath, connectionId: A, sourceFileId: "structural", runId: "run-del-5" }),
      ).rejects.toThrow("injected failure");
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
    expect(await snapshot(bimPath)).toEqual(before);
    expect(await elementStates(bimPath, A, "structural")).toEqual(structuralInitial);
  });

  it(
    "after structural, removeConnectionSubject(A) leaves only B's data, the root Subject and the shared categories",
    SLOW,
    async () => {
      const a1 = await fileIds(bimPath, A, "structural");
      const r = await removeSourceFileData({
        bimPath,
        connectionId: A,
        sourceFileId: "structural",
        runId: "run-del-6",
      });
      expect(r).toEqual({
        found: true,
        path: STRUCTURAL_PATH,
        elementsDeleted: written.get("structural"),
        modelsDeleted: 2,
        definitionsDeleted: a1.definitions.length,
      });
      expect(await listSourceFilesInIModel(bimPath, A)).toEqual([]);

      const subjectA = await withDb(
        bimPath,
        async (db) =>
          (await query(db, "SELECT ECInstanceId FROM BisCore.Subject WHERE CodeValue=?", [A]))[0][0] as string,
      );
      expect(await removeConnectionSubject({ bimPath, connectionId: A })).toEqual({ found: true });

      const b = await fileIds(bimPath, B, "arch");
      expect(await counts(bimPath)).toEqual({
        ...countsInitial,
        "Generic.PhysicalObject": 21,
        "ImodelSync.SpatialStructureElement": 6,
        "Generic.PhysicalType": 4,
        "ImodelSync.Material": 6,
        "ImodelSync.PropertyValue": b.propertyValues.length,
        "bis.ElementRefersToElements": b.relationships.length,
        "BisCore.ExternalSourceAspect": written.get("arch")! + 10 + 3,
        "BisCore.RepositoryLink": 1,
        "BisCore.ExternalSource": 1,
        "BisCore.PhysicalModel": 1,
        "BisCore.PhysicalPartition": 1,
        "BisCore.DefinitionModel": IMODEL_DEFINITION_MODELS + 1,
        "BisCore.DefinitionPartition": IMODEL_DEFINITION_PARTITIONS + 1,
        "BisCore.Subject": 2, // root + B
      });
      // What went is exactly A (its Subject, and both files' links, sources, partitions and elements); every other row
      // (B's, the root Subject, the shared categories and their sub-categories, ...) is unchanged.
      const goneElements = new Set([
        subjectA,
        ...[hvacIds, a1].flatMap((f) => [f.link, f.source, ...f.partitions, ...f.elements, ...f.definitions]),
      ]);
      const now = await snapshot(bimPath);
      expect(now.elements).toEqual(without(initial.elements, goneElements));
      expect(now.aspects).toEqual(without(initial.aspects, new Set([...hvacIds.aspects, ...a1.aspects])));
      expect(now.propertyValues).toEqual(
        without(initial.propertyValues, new Set([...hvacIds.propertyValues, ...a1.propertyValues])),
      );
      expect(now.relationships).toEqual(
        without(initial.relationships, new Set([...hvacIds.relationships, ...a1.relationships])),
      );
      expect(without(now.models, REPOSITORY_MODEL)).toEqual(
        without(initial.models, new Set([...hvacIds.partitions, ...a1.partitions, ...REPOSITORY_MODEL])),
      );
      expect(await elementStates(bimPath, B, "arch")).toEqual(bInitial);
      await withDb(bimPath, async (db) => {
        expect(await query(db, "SELECT CodeValue FROM BisCore.Subject ORDER BY ECInstanceId")).toEqual([
          ["shared"],
          [B],
        ]); // root Subject: the iModel's name
        // nothing dangles: every aspect's scope/source and every ExternalSource's repository exists
        expect(
          await query(
            db,
            "SELECT COUNT(*) FROM BisCore.ExternalSourceAspect a WHERE a.Scope.Id NOT IN (SELECT ECInstanceId FROM bis.Element)",
          ),
        ).toEqual([[0]]);
        expect(
          await query(
            db,
            "SELECT COUNT(*) FROM BisCore.ExternalSourceAspect a WHERE a.Source.Id IS NOT NULL AND a.Source.Id NOT IN (SELECT ECInstanceId FROM bis.Element)",
          ),
        ).toEqual([[0]]);
        expect(
          await query(
            db,
            "SELECT COUNT(*) FROM BisCore.ExternalSource s WHERE s.Repository.Id NOT IN (SELECT ECInstanceId FROM bis.Element)",
          ),
        ).toEqual([[0]]);
      });

      // idempotent
      const settled = await snapshot(bimPath);
      expect(await removeConnectionSubject({ bimPath, connectionId: A })).toEqual({ found: false });
      expect(await snapshot(bimPath)).toEqual(settled);
    },
  );

  it("a missing .bim file: nothing listed, nothing found, and no file created", async () => {
    const missing = path.join(tmp, "imodels", "missing.bim");
    expect(await listSourceFilesInIModel(missing, A)).toEqual([]);
    expect(await removeSourceFileData({ bimPath: missing, connectionId: A, sourceFileId: "x", runId: "r" })).toEqual({
      found: false,
      elementsDeleted: 0,
      modelsDeleted: 0,
    });
    expect(await removeConnectionSubject({ bimPath: missing, connectionId: A, clearGeoreference: true })).toEqual({
      found: false,
    });
    expect(fs.existsSync(missing)).toBe(false);
  });
});

describe("clearGeoreference", () => {
  let geoBim: string;

  const geolocation = (file: string) =>
    withDb(file, async (db) => ({
      isGeoLocated: db.isGeoLocated,
      ecef: db.ecefLocation?.toJSON(),
      units: JSON.parse(db.queryFilePropertyString({ namespace: "dgn_Db", name: "Units" }) ?? "{}") as Record<
        string,
        unknown
      >,
      subjects: (await query(db, "SELECT CodeValue FROM BisCore.Subject ORDER BY ECInstanceId")).map((r) => r[0]),
    }));

  it(
    "removing the georeferenced connection with clearGeoreference leaves an iModel that is no longer geolocated",
    SLOW,
    async () => {
      geoBim = path.join(tmp, "imodels", "geo.bim");
      const r = await writeSourceFile(writeInput(geoBim, C, "utm", "geo/utm.ifc", await parseIfc(GEOREF)));
      expect(r.georeference).toBe("set");
      const geo = await geolocation(geoBim);
      expect(geo.isGeoLocated).toBe(true);
      expect(geo.units.ecefLocation).toBeDefined();

      expect(
        await removeSourceFileData({ bimPath: geoBim, connectionId: C, sourceFileId: "utm", runId: "run-geo-1" }),
      ).toMatchObject({ found: true, path: "geo/utm.ifc", modelsDeleted: 1 });
      expect((await geolocation(geoBim)).isGeoLocated).toBe(true); // removing a file keeps the location

      // A failure at the very end (commit) keeps the Subject and the location.
      const before = await snapshot(geoBim);
      const spy = vi.spyOn(IModelDb.prototype, "saveChanges").mockImplementationOnce(() => {
        throw new Error("injected commit failure");
      });
      try {
        await expect(
          removeConnectionSubject({ bimPath: geoBim, connectionId: C, clearGeoreference: true }),
        ).rejects.toThrow("injected commit failure");
        // the commit threw; the later call is IModelDb.close() saving whatever is pending (nothing, after abandonChanges)
        expect(spy.mock.results[0].type).toBe("throw");
      } finally {
        spy.mockRestore();
      }
      expect(await snapshot(geoBim)).toEqual(before);
      expect(await geolocation(geoBim)).toMatchObject({ isGeoLocated: true, subjects: ["geo", C] });

      expect(await removeConnectionSubject({ bimPath: geoBim, connectionId: C, clearGeoreference: true })).toEqual({
        found: true,
      });
      const after = await geolocation(geoBim);
      expect(after).toMatchObject({ isGeoLocated: false, ecef: undefined, subjects: ["geo"] });
      expect(after.units).not.toHaveProperty("ecefLocation");
      expect(after.units).toMatchObject({ globalOrigin: geo.units.globalOrigin });
      await withDb(geoBim, async (db) => {
        expect(db.geographicCoordinateSystem).toBeUndefined();
        expect(await query(db, "SELECT COUNT(*) FROM Generic.PhysicalObject")).toEqual([[0]]);
        expect(await query(db, "SELECT COUNT(*) FROM BisCore.RepositoryLink")).toEqual([[0]]);
      });

      // idempotent, and it stays not geolocated
      const settled = await snapshot(geoBim);
      expect(await removeConnectionSubject({ bimPath: geoBim, connectionId: C, clearGeoreference: true })).toEqual({
        found: false,
      });
      expect(await snapshot(geoBim)).toEqual(settled);
      expect((await geolocation(geoBim)).isGeoLocated).toBe(false);
    },
  );
});
