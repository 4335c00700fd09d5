/**
 * A connection's life cycle on the real stack with real samples: rename, delete (keepData / deleteData), change
 * mapping (add, unmap with keepData / deleteData), cancel, bulk run; every refusal with its code; concurrent requests;
 * a worker killed during a delete job.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { OpenMode } from "@itwin/core-bentley";
import { StandaloneDb } from "@itwin/core-backend";
import { beforeAll, describe, expect, it } from "vitest";
import {
  createConnection,
  createUser,
  httpAs,
  ecsql,
  eventually,
  FIXTURE,
  http,
  killService,
  makeSource,
  restartService,
  SAMPLE,
  tasksOf,
  useTemporalClient,
  waitForRun,
  waitForRunState,
} from "./helpers";

const STRUCTURAL = SAMPLE("ifc2x3_structural_revit_example_rev1.ifc");
const HVAC = SAMPLE("ifc4_hvac_air_terminal_duct.ifc");
const ARCH = SAMPLE("ifc4_architecture_revit_testmodel.ifc");
const UTM = SAMPLE("ifc4x3_georef_mapconversion_utm.ifc");
const XREF = (f: string) => FIXTURE(`dxf-xref/${f}`);

async function newIModel(name: string): Promise<{ id: string; bim: string }> {
  const m = await http("POST", "/imodels", { name });
  expect(m.status).toBe(201);
  return { id: m.body.iModel.id, bim: m.body.iModel.location.path };
}

async function connect(iModelId: string, source: string, files: string[], displayName: string, connectorType = "IFC") {
  const c = await http("POST", "/connections", {
    iModelId,
    displayName,
    source: { type: "local", path: source },
    sourceFiles: files.map((p) => ({ path: p, connectorType })),
  });
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  return c.body.connection;
}

async function sync(connectionId: string) {
  const r = await http("POST", `/connections/${connectionId}/run`);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const { run } = await waitForRun(r.location!);
  return run;
}

const fileId = (connection: any, p: string) => connection.sourceFiles.find((f: any) => f.path === p).id;

/** Everything provenance-bearing in the iModel, by connection (RepositoryLink code `${connectionId}/${fileId}`). */
async function inventory(bim: string) {
  // elements (physical and spatial, Kind "Element") and definitions (types and materials, Kind "Definition")
  const elements = await ecsql(
    bim,
    `SELECT e.ECInstanceId id, e.LastMod lastMod, a.Identifier identifier, l.CodeValue link, a.Kind kind
       FROM bis.Element e
       JOIN BisCore.ExternalSourceAspect a ON a.Element.Id = e.ECInstanceId AND a.Kind IN ('Element', 'Definition')
       JOIN BisCore.RepositoryLink l ON l.ECInstanceId = a.Scope.Id
      ORDER BY e.ECInstanceId`,
  );
  // every element a sync may write, with or without provenance
  let elementCount = (await ecsql(bim, "SELECT COUNT(*) n FROM bis.GeometricElement3d"))[0].n as number;
  for (const cls of ["Generic.PhysicalType", "ImodelSync.Material"]) {
    try {
      elementCount += (await ecsql(bim, `SELECT COUNT(*) n FROM ${cls}`))[0].n as number;
    } catch {
      // an iModel nothing was written to has no ImodelSync schema yet
    }
  }
  const aspects = await ecsql(
    bim,
    "SELECT ECInstanceId id, Kind kind, Identifier identifier FROM BisCore.ExternalSourceAspect ORDER BY ECInstanceId",
  );
  const links = await ecsql(
    bim,
    "SELECT ECInstanceId id, CodeValue code, Url url FROM BisCore.RepositoryLink ORDER BY CodeValue",
  );
  const sources = await ecsql(
    bim,
    "SELECT ECInstanceId id, Repository.Id repository FROM BisCore.ExternalSource ORDER BY ECInstanceId",
  );
  const partitions = await ecsql(
    bim,
    "SELECT p.ECInstanceId id, p.CodeValue code, s.CodeValue subject FROM BisCore.PhysicalPartition p JOIN BisCore.Subject s ON s.ECInstanceId = p.Parent.Id ORDER BY p.ECInstanceId",
  );
  const models = await ecsql(bim, "SELECT ECInstanceId id FROM BisCore.PhysicalModel ORDER BY ECInstanceId");
  const subjects = await ecsql(
    bim,
    "SELECT CodeValue code FROM BisCore.Subject WHERE Parent.Id IS NOT NULL ORDER BY CodeValue",
  );
  return { elements, elementCount, aspects, links, sources, partitions, models, subjects };
}

/** The part of an inventory that belongs to one connection. */
function of(inv: Awaited<ReturnType<typeof inventory>>, connectionId: string) {
  const mine = (code: string) => code.startsWith(`${connectionId}/`);
  const links = inv.links.filter((l) => mine(l.code));
  return {
    elements: inv.elements.filter((e) => mine(e.link)),
    links,
    sources: inv.sources.filter((s) => links.some((l) => l.id === s.repository)),
    partitions: inv.partitions.filter((p) => p.subject === connectionId),
    subjects: inv.subjects.filter((s) => s.code === connectionId),
  };
}

const temporal = useTemporalClient();

describe("rename", () => {
  it("changes the display name only, also while a run is executing; refuses bad input", async () => {
    const source = makeSource("rename", { "s.ifc": STRUCTURAL, "h.ifc": HVAC });
    const { connection } = await createConnection(source, ["s.ifc", "h.ifc"], "before");
    const r = await http("POST", `/connections/${connection.id}/run`);
    const renamed = await http("PATCH", `/connections/${connection.id}`, { displayName: "  after  " });
    expect(renamed.status).toBe(200);
    expect(renamed.body.connection).toMatchObject({
      id: connection.id,
      displayName: "after",
      sourceFiles: connection.sourceFiles.map((f: any) => expect.objectContaining({ id: f.id, path: f.path })),
    });
    const { run } = await waitForRun(r.location!);
    expect(run.result).toBe("Success");
    expect((await http("GET", `/connections/${connection.id}`)).body.connection.displayName).toBe("after");

    for (const [body, code] of [
      [{ displayName: "" }, "InvalidRequest"],
      [{ displayName: "x", source: { type: "local", path: "/" } }, "InvalidRequest"],
      [{}, "InvalidRequest"],
    ] as const) {
      const bad = await http("PATCH", `/connections/${connection.id}`, body);
      expect(bad.status, JSON.stringify(bad.body)).toBe(400);
      expect(bad.body.error.code).toBe(code);
    }
    const unknown = await http("PATCH", "/connections/no-such-connection", { displayName: "x" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("ConnectionNotFound");
  });
});

describe("delete with keepData", () => {
  it("stops future syncs at once (schedule gone, runs refused), keeps the data, frees the files for other connections", async () => {
    const source = makeSource("keep", { "s.ifc": STRUCTURAL });
    const iModel = await newIModel("keep");
    const c = await connect(iModel.id, source, ["s.ifc"], "structural");
    expect((await sync(c.id)).result).toBe("Success");
    const put = await http("PUT", `/connections/${c.id}/schedule`, {
      type: "daily",
      time: "03:00",
      timeZone: "Europe/Berlin",
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const before = await inventory(iModel.bim);

    for (const q of ["", "?mode=", "?mode=keep", "?mode=keepData&mode=deleteData"]) {
      const bad = await http("DELETE", `/connections/${c.id}${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.body.error.code).toBe("InvalidRequest");
    }
    expect((await http("DELETE", "/connections/no-such-connection?mode=keepData")).status).toBe(404);

    const del = await http("DELETE", `/connections/${c.id}?mode=keepData`);
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    expect(del.body.connection).toMatchObject({ status: "Deleted", deletion: { mode: "keepData" } });
    await expect(temporal().schedule.getHandle(`schedule/${c.id}`).describe()).rejects.toThrow(/not found/i);

    const run = await http("POST", `/connections/${c.id}/run`);
    expect(run.status).toBe(409);
    expect(run.body.error.code).toBe("ConnectionDeleted");
    const again = await http("DELETE", `/connections/${c.id}?mode=deleteData`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("ConnectionDeleted");
    for (const [method, url, body] of [
      ["PATCH", `/connections/${c.id}`, { displayName: "x" }],
      ["POST", `/connections/${c.id}/sourceFiles`, { sourceFiles: [{ path: "s.ifc", connectorType: "IFC" }] }],
      ["DELETE", `/connections/${c.id}/sourceFiles/${c.sourceFiles[0].id}?mode=keepData`, undefined],
    ] as const) {
      const r = await http(method, url, body);
      expect(r.status, `${method} ${url}`).toBe(409);
      expect(r.body.error.code).toBe("ConnectionDeleted");
    }
    expect(await inventory(iModel.bim)).toEqual(before);
    const list = await http("GET", `/connections?iModelId=${iModel.id}`);
    expect(list.body.connections).toEqual([]);
    const deleted = await http("GET", `/connections?iModelId=${iModel.id}&status=Deleted`);
    expect(deleted.body.connections.map((x: any) => [x.id, x.status])).toEqual([[c.id, "Deleted"]]);
    const badStatus = await http("GET", `/connections?iModelId=${iModel.id}&status=Gone`);
    expect(badStatus.status).toBe(400);

    // The file of a deleted connection can be mapped by another connection.
    const other = await connect(iModel.id, source, ["s.ifc"], "structural again");
    expect(other.sourceFiles).toHaveLength(1);
  });
});

describe("delete with deleteData", () => {
  let iModel: { id: string; bim: string };
  let a: any;
  let b: any;
  let source: string;
  let before: Awaited<ReturnType<typeof inventory>>;
  let job: any;

  beforeAll(async () => {
    source = makeSource("deldata", { "s.ifc": STRUCTURAL, "h.ifc": HVAC, "a.ifc": ARCH });
    iModel = await newIModel("delete data");
    a = await connect(iModel.id, source, ["s.ifc", "h.ifc"], "structural + hvac");
    b = await connect(iModel.id, source, ["a.ifc"], "architecture");
    // b first: its file's georeference defines the iModel's GCS (a's could too), so a may be deleted.
    expect((await sync(b.id)).result).toBe("Success");
    expect((await sync(a.id)).result).toBe("Success");
    before = await inventory(iModel.bim);
    const del = await http("DELETE", `/connections/${a.id}?mode=deleteData`);
    expect(del.status, JSON.stringify(del.body)).toBe(202);
    expect(del.body.connection.status).toBe("Deleting");
    expect(del.location).toMatch(`/connections/${a.id}/runs/`);
    job = (await waitForRun(del.location!)).run;
  });

  it("runs a delete job, visible as a run with trigger delete, one task per file", () => {
    expect(job).toMatchObject({ trigger: "delete", kind: "delete", state: "Completed", result: "Success" });
    expect(job.workflowId).toBe(`delete/${a.id}/${job.id}`);
    const tasks = tasksOf(job);
    expect(tasks.map((t: any) => t.path).sort()).toEqual(["h.ifc", "s.ifc"]);
    const mine = of(before, a.id);
    for (const t of tasks) {
      const link = mine.links.find((l) => l.url === t.path)!;
      expect(t.elements.deleted).toBe(mine.elements.filter((e) => e.link === link.code && e.kind === "Element").length);
    }
    expect(tasks.find((t: any) => t.path === "s.ifc").elements.deleted).toBe(120);
  });

  it("leaves no element, aspect, model, ExternalSource, RepositoryLink or Subject of the removed files", async () => {
    const after = await inventory(iModel.bim);
    const gone = of(after, a.id);
    expect(gone).toEqual({ elements: [], links: [], sources: [], partitions: [], subjects: [] });
    expect(of(before, a.id).elements.length).toBeGreaterThan(116);
    // Aspects: only those of the other connection's link, models and elements are left.
    const aIdentifiers = new Set([
      ...of(before, a.id).elements.map((e) => e.identifier),
      ...a.sourceFiles.map((f: any) => f.id),
    ]);
    expect(after.aspects.filter((x) => aIdentifiers.has(x.identifier))).toEqual([]);
    expect(after.models.length).toBe(before.models.length - 2);
    expect(after.elementCount).toBe(of(before, b.id).elements.length);
  });

  it("touches no element of the other connection: same ids, same LastMod, same counts", async () => {
    const after = await inventory(iModel.bim);
    expect(of(after, b.id)).toEqual(of(before, b.id));
    expect(after.aspects).toEqual(before.aspects.filter((x) => after.aspects.some((y) => y.id === x.id)));
    expect(after.aspects.length).toBe(
      before.aspects.length -
        (of(before, a.id).elements.length + 2 /* links */ + 2 /* models */ + 2) /* definition models */,
    );
  });

  it("marks the connection Deleted; its files can be mapped and synchronized by another connection", async () => {
    const c = (await http("GET", `/connections/${a.id}`)).body.connection;
    expect(c).toMatchObject({ status: "Deleted", deletion: { mode: "deleteData", runId: job.id } });
    expect(c.deletion.completedDateTime).toBeDefined();
    const again = await connect(iModel.id, source, ["s.ifc"], "structural again");
    const run = await sync(again.id);
    expect(run.result).toBe("Success");
    expect(tasksOf(run)[0].elements.inserted).toBe(120);
  });
});

describe("the connection defining the geographic coordinate system", () => {
  it("cannot be deleted while the iModel has other connections; can once it is the last; deleteData clears the GCS", async () => {
    const source = makeSource("gcsdel", { "utm.ifc": UTM, "h.ifc": HVAC, "a.ifc": ARCH });
    const iModel = await newIModel("gcs delete");
    const site = await connect(iModel.id, source, ["utm.ifc", "h.ifc"], "site");
    const arch = await connect(iModel.id, source, ["a.ifc"], "architecture");
    expect((await sync(site.id)).result).toBe("Success");
    expect((await sync(arch.id)).result).toBe("Success");
    expect((await http("GET", `/connections/${site.id}`)).body.connection.definesGcs).toBe(true);

    for (const mode of ["keepData", "deleteData"]) {
      const r = await http("DELETE", `/connections/${site.id}?mode=${mode}`);
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe("GcsDefiningConnection");
      expect(r.body.error.message).toMatch(/geographic coordinate system/);
    }
    // The file that defined the GCS cannot be unmapped once synchronized; another file of the connection can.
    const unmapGcs = await http(
      "DELETE",
      `/connections/${site.id}/sourceFiles/${fileId(site, "utm.ifc")}?mode=keepData`,
    );
    expect(unmapGcs.status).toBe(409);
    expect(unmapGcs.body.error.code).toBe("GcsDefiningFile");
    const unmapOther = await http(
      "DELETE",
      `/connections/${site.id}/sourceFiles/${fileId(site, "h.ifc")}?mode=keepData`,
    );
    expect(unmapOther.status, JSON.stringify(unmapOther.body)).toBe(200);

    expect((await http("DELETE", `/connections/${arch.id}?mode=deleteData`)).status).toBe(202);
    await eventually(
      "architecture deleted",
      async () => (await http("GET", `/connections/${arch.id}`)).body.connection.status === "Deleted",
    );
    const del = await http("DELETE", `/connections/${site.id}?mode=deleteData`);
    expect(del.status, JSON.stringify(del.body)).toBe(202);
    expect((await waitForRun(del.location!)).run.result).toBe("Success");
    const im = (await http("GET", `/imodels/${iModel.id}`)).body.iModel;
    expect(im.gcsDefinedBy).toBeUndefined();
    const inv = await inventory(iModel.bim);
    expect(inv.elementCount).toBe(0);
    expect(inv.links).toEqual([]);
    const db = StandaloneDb.openFile(iModel.bim, OpenMode.Readonly);
    try {
      expect(db.isGeoLocated).toBe(false);
    } finally {
      db.close();
    }
  });
});

describe("change mapping", () => {
  it("unmaps a composite model with its reference files; shared references and lone references follow the rules", async () => {
    const source = makeSource("unmap-xref", {
      "plans/host.dxf": XREF("xref_host_attached_r2000.dxf"),
      "plans/host_copy.dxf": XREF("xref_host_attached_r2000.dxf"),
      "plans/xref_target_grid_r2000.dxf": XREF("xref_target_grid_r2000.dxf"),
      "plans/overlay.dxf": XREF("xref_host_overlay_r2018.dxf"),
    });
    const iModel = await newIModel("unmap xref");
    const c = await connect(
      iModel.id,
      source,
      ["plans/host.dxf", "plans/host_copy.dxf", "plans/overlay.dxf"],
      "plans",
      "DXF",
    );
    expect((await sync(c.id)).result).toBe("Success");
    const mapped = (await http("GET", `/connections/${c.id}`)).body.connection;
    const ref = mapped.sourceFiles.find((f: any) => f.path === "plans/host.dxf").references[0];
    expect(ref).toMatchObject({ path: "plans/xref_target_grid_r2000.dxf", resolved: true });

    // A reference file cannot be unmapped on its own.
    const lone = await http("DELETE", `/connections/${c.id}/sourceFiles/${ref.id}?mode=deleteData`);
    expect(lone.status).toBe(409);
    expect(lone.body.error.code).toBe("ReferenceFileNotUnmappable");
    expect(lone.body.error.message).toMatch(/composite model/);
    const unknown = await http("DELETE", `/connections/${c.id}/sourceFiles/no-such-file?mode=deleteData`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("SourceFileNotMapped");
    const badMode = await http("DELETE", `/connections/${c.id}/sourceFiles/${fileId(c, "plans/host.dxf")}?mode=all`);
    expect(badMode.status).toBe(400);

    const before = await inventory(iModel.bim);
    // host.dxf goes; its reference stays because host_copy.dxf names it too.
    const u1 = await http("DELETE", `/connections/${c.id}/sourceFiles/${fileId(c, "plans/host.dxf")}?mode=deleteData`);
    expect(u1.status, JSON.stringify(u1.body)).toBe(202);
    expect(u1.body.unmappedSourceFileIds).toEqual([fileId(c, "plans/host.dxf")]);
    const j1 = (await waitForRun(u1.location!)).run;
    expect(j1).toMatchObject({ trigger: "mapping-change", kind: "delete", result: "Success" });
    let inv = await inventory(iModel.bim);
    expect(inv.links.map((l) => l.url)).toEqual(
      before.links.filter((l) => l.url !== "plans/host.dxf").map((l) => l.url),
    );
    const hostLink = before.links.find((l) => l.url === "plans/host.dxf")!;
    expect(inv.elements).toEqual(before.elements.filter((e) => e.link !== hostLink.code));

    // host_copy.dxf goes with the reference it alone names now.
    const u2 = await http(
      "DELETE",
      `/connections/${c.id}/sourceFiles/${fileId(c, "plans/host_copy.dxf")}?mode=deleteData`,
    );
    expect(u2.status).toBe(202);
    expect([...u2.body.unmappedSourceFileIds].sort()).toEqual([fileId(c, "plans/host_copy.dxf"), ref.id].sort());
    expect((await waitForRun(u2.location!)).run.result).toBe("Success");
    inv = await inventory(iModel.bim);
    expect(inv.links.map((l) => l.url)).toEqual(["plans/overlay.dxf"]);
    expect(inv.elements).toEqual(
      before.elements.filter((e) => e.link === before.links.find((l) => l.url === "plans/overlay.dxf")!.code),
    );

    // The last composite model cannot be unmapped: delete the connection instead.
    const last = await http(
      "DELETE",
      `/connections/${c.id}/sourceFiles/${fileId(c, "plans/overlay.dxf")}?mode=keepData`,
    );
    expect(last.status).toBe(409);
    expect(last.body.error.code).toBe("LastCompositeModel");
    expect(last.body.error.message).toMatch(/delet/);

    // The next run synchronizes only what is still mapped.
    const next = await sync(c.id);
    expect(tasksOf(next).map((t: any) => [t.path, t.result])).toEqual([["plans/overlay.dxf", "Skipped"]]);
  });

  it("unmaps with keepData (data kept, no more syncs) and maps it again by the same id; adds composite models under the rules", async () => {
    const source = makeSource("unmap-keep", { "s.ifc": STRUCTURAL, "h.ifc": HVAC, "a.ifc": ARCH });
    const iModel = await newIModel("unmap keep");
    const c = await connect(iModel.id, source, ["s.ifc", "h.ifc"], "two files");
    const other = await connect(iModel.id, source, ["a.ifc"], "architecture");
    expect((await sync(c.id)).result).toBe("Success");
    const before = await inventory(iModel.bim);
    const hvacId = fileId(c, "h.ifc");

    const u = await http("DELETE", `/connections/${c.id}/sourceFiles/${hvacId}?mode=keepData`);
    expect(u.status, JSON.stringify(u.body)).toBe(200);
    expect(u.body.connection.sourceFiles.map((f: any) => f.path)).toEqual(["s.ifc"]);
    expect(await inventory(iModel.bim)).toEqual(before);
    fs.appendFileSync(path.join(source, "h.ifc"), "\n"); // changed, but no longer mapped: not synchronized
    const r1 = await sync(c.id);
    expect(tasksOf(r1).map((t: any) => [t.path, t.result])).toEqual([["s.ifc", "Skipped"]]);

    // Adding: refused for a file another connection maps, one this connection maps, one listed twice, bad bodies.
    for (const [body, status, code] of [
      [{ sourceFiles: [{ path: "a.ifc", connectorType: "IFC" }] }, 409, "SourceFileAlreadyMapped"],
      [{ sourceFiles: [{ path: "s.ifc", connectorType: "IFC" }] }, 409, "SourceFileAlreadyMapped"],
      [
        {
          sourceFiles: [
            { path: "h.ifc", connectorType: "IFC" },
            { path: "./h.ifc", connectorType: "IFC" },
          ],
        },
        400,
        "DuplicateSourceFile",
      ],
      [{ sourceFiles: [{ path: "missing.ifc", connectorType: "IFC" }] }, 400, "SourceFileNotFound"],
      [{ sourceFiles: [{ path: "../x.ifc", connectorType: "IFC" }] }, 400, "InvalidSourceFilePath"],
      [{ sourceFiles: [] }, 400, "InvalidRequest"],
      [{ sourceFiles: [{ path: "h.ifc", connectorType: "DWG" }] }, 400, "InvalidRequest"],
    ] as const) {
      const r = await http("POST", `/connections/${c.id}/sourceFiles`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.body.error.code).toBe(code);
    }
    expect(
      (await http("POST", "/connections/nope/sourceFiles", { sourceFiles: [{ path: "h.ifc", connectorType: "IFC" }] }))
        .status,
    ).toBe(404);
    expect(other.sourceFiles).toHaveLength(1);

    // Mapped again: the same id, so its data is updated in place rather than duplicated.
    const add = await http("POST", `/connections/${c.id}/sourceFiles`, {
      sourceFiles: [{ path: "h.ifc", connectorType: "IFC" }],
    });
    expect(add.status, JSON.stringify(add.body)).toBe(200);
    expect(fileId(add.body.connection, "h.ifc")).toBe(hvacId);
    const r2 = await sync(c.id);
    const hvacTask = tasksOf(r2).find((t: any) => t.path === "h.ifc");
    expect(hvacTask.result).toBe("Success");
    expect(hvacTask.elements.inserted).toBe(0);
    const after = await inventory(iModel.bim);
    expect(after.links).toEqual(before.links);
    expect(after.elements.map((e) => e.id)).toEqual(before.elements.map((e) => e.id));
  });

  it("refuses to pass 250 composite models in an iModel", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 251; i++) files[`f${String(i).padStart(3, "0")}.dxf`] = XREF("xref_target_grid_r2000.dxf");
    const source = makeSource("limit", files);
    const iModel = await newIModel("limit");
    const names = Object.keys(files);
    const c = await connect(iModel.id, source, names.slice(0, 250), "250 files", "DXF");
    const add = await http("POST", `/connections/${c.id}/sourceFiles`, {
      sourceFiles: [{ path: names[250], connectorType: "DXF" }],
    });
    expect(add.status).toBe(409);
    expect(add.body.error.code).toBe("MaxCompositeModelsPerIModelReached");
  });
});

describe("cancel", () => {
  let source: string;
  const names = Array.from({ length: 6 }, (_, i) => `s${i}.ifc`);

  beforeAll(() => {
    source = makeSource("cancel", Object.fromEntries(names.map((n) => [n, STRUCTURAL])));
  });

  it("ends an executing run Cancelled after the file being written; the iModel holds whole files; the next run picks up", async () => {
    const iModel = await newIModel("cancel");
    const c = await connect(iModel.id, source, names, "six files");
    const r = await http("POST", `/connections/${c.id}/run`);
    expect(r.status).toBe(202);
    await waitForRunState(r.location!, (run) => tasksOf(run).some((t: any) => t.state === "Completed"));
    const runId = r.location!.split("/").pop();
    const cancel = await http("POST", `/connections/${c.id}/runs/${runId}/cancel`);
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(202);
    expect(cancel.location).toBe(r.location);
    const { run } = await waitForRun(r.location!);
    expect(run.result).toBe("Cancelled");
    expect(run.reason).toMatchObject({ code: "CancelledByUser" });
    const tasks = tasksOf(run);
    const done = tasks.filter((t: any) => t.result === "Success");
    const cancelled = tasks.filter((t: any) => t.result === "Cancelled");
    expect(done.length).toBeGreaterThan(0);
    expect(cancelled.length).toBeGreaterThan(0);
    expect(done.length + cancelled.length).toBe(names.length);
    // Whole files only: each synchronized file has all of its 120 elements and 42 types and materials, the others none.
    const inv = await inventory(iModel.bim);
    expect(inv.links.map((l) => l.url).sort()).toEqual(done.map((t: any) => t.path).sort());
    for (const link of inv.links) expect(inv.elements.filter((e) => e.link === link.code)).toHaveLength(120 + 42);

    const again = await http("POST", `/connections/${c.id}/runs/${runId}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("RunAlreadyCompleted");
    const next = await sync(c.id);
    expect(next.result).toBe("Success");
    const results = Object.fromEntries(tasksOf(next).map((t: any) => [t.path, t.result]));
    for (const t of done) expect(results[t.path]).toBe("Skipped");
    for (const t of cancelled) expect(results[t.path]).toBe("Success");
    expect((await inventory(iModel.bim)).elementCount).toBe((120 + 42) * names.length);
  });

  it("cancels a queued run at once; refuses unknown runs and delete jobs", async () => {
    const iModel = await newIModel("cancel queued");
    const busy = await connect(iModel.id, source, names, "busy");
    const small = makeSource("cancel-q", { "h.ifc": HVAC });
    const waiting = await connect(iModel.id, small, ["h.ifc"], "waiting");
    const r1 = await http("POST", `/connections/${busy.id}/run`);
    const r2 = await http("POST", `/connections/${waiting.id}/run`);
    expect([r1.status, r2.status]).toEqual([202, 202]);
    const queuedId = r2.location!.split("/").pop();
    const cancel = await http("POST", `/connections/${waiting.id}/runs/${queuedId}/cancel`);
    expect(cancel.status).toBe(202);
    const { run: queued } = await waitForRun(r2.location!, 20_000);
    expect(queued.result).toBe("Cancelled");
    expect(queued.startDateTime).toBeUndefined();
    const { run: first } = await waitForRun(r1.location!);
    expect(first.result).toBe("Success");
    expect(Date.parse(queued.endDateTime)).toBeLessThan(Date.parse(first.endDateTime));

    const unknown = await http("POST", `/connections/${waiting.id}/runs/no-such-run/cancel`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("RunNotFound");
    const del = await http("DELETE", `/connections/${waiting.id}?mode=deleteData`);
    expect(del.status).toBe(202);
    const delId = del.location!.split("/").pop();
    const refuse = await http("POST", `/connections/${waiting.id}/runs/${delId}/cancel`);
    expect(refuse.status).toBe(409);
    expect(refuse.body.error.code).toBe("RunNotCancellable");
    expect((await waitForRun(del.location!)).run.result).toBe("Success");
  });

  it("a delete during a sync cancels the sync cleanly first, then removes everything", async () => {
    const iModel = await newIModel("delete during sync");
    const c = await connect(iModel.id, source, names, "deleted while syncing");
    const r = await http("POST", `/connections/${c.id}/run`);
    await waitForRunState(r.location!, (run) => tasksOf(run).some((t: any) => t.state === "Completed"));
    const del = await http("DELETE", `/connections/${c.id}?mode=deleteData`);
    expect(del.status).toBe(202);
    const { run: syncRun } = await waitForRun(r.location!);
    expect(syncRun.result).toBe("Cancelled");
    expect(syncRun.reason.code).toBe("ConnectionDeleted");
    const { run: job } = await waitForRun(del.location!);
    expect(job.result).toBe("Success");
    expect(Date.parse(job.startDateTime)).toBeGreaterThanOrEqual(Date.parse(syncRun.endDateTime) - 1000);
    const inv = await inventory(iModel.bim);
    expect(inv.elementCount).toBe(0);
    expect(inv.links).toEqual([]);
    expect(inv.subjects).toEqual([]);
  });
});

describe("synchronize several connections at once", () => {
  it("starts a run per selected connection, serialized; validates the selection first", async () => {
    const source = makeSource("bulk", { "s.ifc": STRUCTURAL, "h.ifc": HVAC, "a.ifc": ARCH });
    const iModel = await newIModel("bulk");
    const c1 = await connect(iModel.id, source, ["s.ifc"], "one");
    const c2 = await connect(iModel.id, source, ["h.ifc"], "two");
    const c3 = await connect(iModel.id, source, ["a.ifc"], "three");
    const elsewhere = await createConnection(makeSource("bulk-other", { "h.ifc": HVAC }), ["h.ifc"], "elsewhere");

    for (const [body, status, code] of [
      [{ connectionIds: [c1.id, "no-such-connection"] }, 404, "ConnectionNotFound"],
      [{ connectionIds: [c1.id, elsewhere.connection.id] }, 400, "InvalidRequest"],
      [{ connectionIds: [] }, 400, "InvalidRequest"],
      [{ connectionIds: "all" }, 400, "InvalidRequest"],
      [{ everything: true }, 400, "InvalidRequest"],
    ] as const) {
      const r = await http("POST", `/imodels/${iModel.id}/run`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.body.error.code).toBe(code);
    }
    const missing = await http("POST", `/imodels/${iModel.id}/run`, { connectionIds: [c1.id, "no-such-connection"] });
    expect(missing.body.error.details).toEqual([
      expect.objectContaining({ code: "ConnectionNotFound", target: "connectionIds.1" }),
    ]);
    expect((await http("GET", `/connections/${c1.id}/runs`)).body.runs).toEqual([]);
    expect((await http("POST", "/imodels/no-such-imodel/run", {})).status).toBe(404);

    const some = await http("POST", `/imodels/${iModel.id}/run`, { connectionIds: [c1.id, c2.id, c1.id] });
    expect(some.status, JSON.stringify(some.body)).toBe(202);
    expect(some.body.runs.map((r: any) => [r.connectionId, r.created])).toEqual([
      [c1.id, true],
      [c2.id, true],
    ]);
    // Asked again while they are active: the active runs, nothing new.
    const again = await http("POST", `/imodels/${iModel.id}/run`, { connectionIds: [c1.id] });
    expect(again.body.runs[0]).toMatchObject({ runId: some.body.runs[0].runId, created: false });
    const runs = await Promise.all(some.body.runs.map((r: any) => waitForRun(r._links.run.href).then((x) => x.run)));
    expect(runs.map((r: any) => r.result)).toEqual(["Success", "Success"]);
    const [first, second] = [...runs].sort(
      (x: any, y: any) => Date.parse(x.startDateTime) - Date.parse(y.startDateTime),
    );
    expect(Date.parse(second.startDateTime)).toBeGreaterThanOrEqual(Date.parse(first.endDateTime));

    const all = await http("POST", `/imodels/${iModel.id}/run`);
    expect(all.status).toBe(202);
    expect(all.body.runs.map((r: any) => r.connectionId)).toEqual([c1.id, c2.id, c3.id]);
    await Promise.all(all.body.runs.map((r: any) => waitForRun(r._links.run.href)));
    expect((await http("DELETE", `/connections/${c3.id}?mode=keepData`)).status).toBe(200);
    const deleted = await http("POST", `/imodels/${iModel.id}/run`, { connectionIds: [c3.id] });
    expect(deleted.status).toBe(409);
    expect(deleted.body.error.code).toBe("ConnectionDeleted");
  });
});

describe("concurrent requests end in a consistent state", () => {
  it("two deletes at once: one delete job, the connection Deleted, no data left", async () => {
    const source = makeSource("twodel", { "s.ifc": STRUCTURAL, "h.ifc": HVAC });
    const iModel = await newIModel("two deletes");
    const c = await connect(iModel.id, source, ["s.ifc", "h.ifc"], "twice deleted");
    expect((await sync(c.id)).result).toBe("Success");
    const answers = await Promise.all([
      http("DELETE", `/connections/${c.id}?mode=deleteData`),
      http("DELETE", `/connections/${c.id}?mode=deleteData`),
    ]);
    for (const a of answers) expect([202, 409], JSON.stringify(a.body)).toContain(a.status);
    const locations = [...new Set(answers.filter((a) => a.status === 202).map((a) => a.location))];
    expect(locations).toHaveLength(1);
    expect((await waitForRun(locations[0]!)).run.result).toBe("Success");
    const jobs = (await http("GET", `/connections/${c.id}/runs`)).body.runs.filter((r: any) => r.kind === "delete");
    expect(jobs).toHaveLength(1);
    expect((await http("GET", `/connections/${c.id}`)).body.connection.status).toBe("Deleted");
    expect((await inventory(iModel.bim)).elementCount).toBe(0);
  });

  it("keepData and deleteData at once: exactly one wins, and the iModel matches it", async () => {
    const source = makeSource("mixdel", { "h.ifc": HVAC });
    const iModel = await newIModel("mixed deletes");
    const c = await connect(iModel.id, source, ["h.ifc"], "mixed");
    expect((await sync(c.id)).result).toBe("Success");
    const [keep, drop] = await Promise.all([
      http("DELETE", `/connections/${c.id}?mode=keepData`),
      http("DELETE", `/connections/${c.id}?mode=deleteData`),
    ]);
    const winners = [keep, drop].filter((r) => r.status < 300);
    expect(winners).toHaveLength(1);
    const loser = [keep, drop].find((r) => r.status >= 300)!;
    expect(loser.status).toBe(409);
    expect(loser.body.error.code).toBe("ConnectionDeleted");
    if (drop.status === 202) await waitForRun(drop.location!);
    const final = (await http("GET", `/connections/${c.id}`)).body.connection;
    expect(final.status).toBe("Deleted");
    const left = (await inventory(iModel.bim)).elementCount;
    if (final.deletion.mode === "keepData") expect(left).toBeGreaterThan(0);
    else expect(left).toBe(0);
  });

  it("delete during unmap: both apply, in some order; no data of the connection is left", async () => {
    const source = makeSource("delunmap", { "s.ifc": STRUCTURAL, "h.ifc": HVAC, "a.ifc": ARCH });
    const iModel = await newIModel("delete during unmap");
    const c = await connect(iModel.id, source, ["s.ifc", "h.ifc", "a.ifc"], "three");
    expect((await sync(c.id)).result).toBe("Success");
    const [unmap, del] = await Promise.all([
      http("DELETE", `/connections/${c.id}/sourceFiles/${fileId(c, "h.ifc")}?mode=deleteData`),
      http("DELETE", `/connections/${c.id}?mode=deleteData`),
    ]);
    expect(del.status, JSON.stringify(del.body)).toBe(202);
    expect([202, 409]).toContain(unmap.status);
    if (unmap.status === 202) await waitForRun(unmap.location!);
    else expect(unmap.body.error.code).toBe("ConnectionDeleted");
    expect((await waitForRun(del.location!)).run.result).toBe("Success");
    expect((await http("GET", `/connections/${c.id}`)).body.connection.status).toBe("Deleted");
    const inv = await inventory(iModel.bim);
    expect(inv.elementCount).toBe(0);
    expect(inv.links).toEqual([]);
    expect(inv.subjects).toEqual([]);
  });
});

describe("a worker killed during a delete job", () => {
  it("finishes the job after the restart and removes everything it should", { timeout: 400_000 }, async () => {
    const names = Array.from({ length: 16 }, (_, i) => `s${String(i).padStart(2, "0")}.ifc`);
    const source = makeSource("kill", Object.fromEntries(names.map((n) => [n, STRUCTURAL])));
    const iModel = await newIModel("kill during delete");
    const c = await connect(iModel.id, source, names, "sixteen files");
    const keep = await connect(iModel.id, makeSource("kill-keep", { "a.ifc": ARCH }), ["a.ifc"], "kept");
    // The kept connection first: its georeferenced file defines the iModel's GCS.
    expect((await sync(keep.id)).result).toBe("Success");
    expect((await sync(c.id)).result).toBe("Success");
    const before = await inventory(iModel.bim);
    expect(of(before, c.id).elements.filter((e) => e.kind === "Element")).toHaveLength(120 * names.length);

    const del = await http("DELETE", `/connections/${c.id}?mode=deleteData`);
    expect(del.status).toBe(202);
    const seen = await waitForRunState(
      del.location!,
      (run) => tasksOf(run).some((t: any) => t.state === "Completed"),
      60_000,
      20,
    );
    killService("worker");
    const doneAtKill = tasksOf(seen).filter((t: any) => t.state === "Completed").length;
    expect(doneAtKill).toBeLessThan(names.length);
    await restartService("worker");
    const { run } = await waitForRun(del.location!, 240_000);
    expect(run.result).toBe("Success");
    expect(tasksOf(run).map((t: any) => t.result)).toEqual(names.map(() => "Success"));
    // Each file's count, also for a file removed just before the kill but not yet recorded (the removal records its
    // counts in the iModel; test/crash-recovery.test.ts kills the worker exactly there).
    expect(tasksOf(run).map((t: any) => t.elements.deleted)).toEqual(names.map(() => 120));
    const after = await inventory(iModel.bim);
    expect(of(after, c.id)).toEqual({ elements: [], links: [], sources: [], partitions: [], subjects: [] });
    expect(of(after, keep.id)).toEqual(of(before, keep.id));
    expect((await http("GET", `/connections/${c.id}`)).body.connection.status).toBe("Deleted");
  });
});

describe("no lost or undone change when requests race (one writer per connection record)", () => {
  it("a delete racing renames, a schedule change and a run request stays deleted and never synchronizes again", async () => {
    for (let round = 0; round < 3; round++) {
      const source = makeSource(`race-${round}`, { "h.ifc": HVAC });
      const iModel = await newIModel(`race ${round}`);
      const c = await connect(iModel.id, source, ["h.ifc"], "raced");
      const mode = round === 1 ? "deleteData" : "keepData";
      const answers = await Promise.all([
        http("PATCH", `/connections/${c.id}`, { displayName: "r1" }),
        http("PUT", `/connections/${c.id}/schedule`, { type: "every4Hours" }),
        http("DELETE", `/connections/${c.id}?mode=${mode}`),
        http("PATCH", `/connections/${c.id}`, { displayName: "r2" }),
        http("POST", `/connections/${c.id}/run`),
        http("PATCH", `/connections/${c.id}`, { displayName: "r3" }),
      ]);
      const del = answers[2];
      expect(del.status, JSON.stringify(del.body)).toBe(mode === "keepData" ? 200 : 202);
      for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBeLessThan(500);
      if (del.status === 202) await waitForRun(del.location!);
      const run = answers[4];
      if (run.status === 202 || run.status === 303) await waitForRun(run.location!);
      const final = (await http("GET", `/connections/${c.id}`)).body.connection;
      expect(final.status, `round ${round}`).toBe("Deleted");
      expect(final.deletion.mode).toBe(mode);
      expect(final.schedule.type).toBe("manual");
      await expect(temporal().schedule.getHandle(`schedule/${c.id}`).describe()).rejects.toThrow(/not found/i);
      const again = await http("POST", `/connections/${c.id}/run`);
      expect(again.status).toBe(409);
      const runs = (await http("GET", `/connections/${c.id}/runs`)).body.runs;
      for (const r of runs.filter((x: any) => x.kind === "sync")) expect(["Cancelled", "Success"]).toContain(r.result);
    }
  });

  it("renames racing unmaps and adds: every answered change is in the record", async () => {
    const source = makeSource("race-map", { "s.ifc": STRUCTURAL, "h.ifc": HVAC, "a.ifc": ARCH });
    const iModel = await newIModel("race mapping");
    const c = await connect(iModel.id, source, ["s.ifc", "h.ifc"], "mapping race");
    const answers = await Promise.all([
      http("PATCH", `/connections/${c.id}`, { displayName: "n1" }),
      http("DELETE", `/connections/${c.id}/sourceFiles/${fileId(c, "h.ifc")}?mode=keepData`),
      http("PATCH", `/connections/${c.id}`, { displayName: "n2" }),
      http("POST", `/connections/${c.id}/sourceFiles`, { sourceFiles: [{ path: "a.ifc", connectorType: "IFC" }] }),
      http("PATCH", `/connections/${c.id}`, { displayName: "n3" }),
    ]);
    for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(200);
    const final = (await http("GET", `/connections/${c.id}`)).body.connection;
    expect(final.sourceFiles.map((f: any) => f.path).sort()).toEqual(["a.ifc", "s.ifc"]);
    expect(["n1", "n2", "n3"]).toContain(final.displayName);
  });
});

describe("only the owner or an administrator changes a connection", () => {
  it("refuses rename, mapping changes and delete to another member with NotConnectionOwner; they may still run it", async () => {
    const source = makeSource("owner-only", { "s.ifc": STRUCTURAL, "h.ifc": HVAC });
    const { connection: c, iModelId } = await createConnection(source, ["s.ifc", "h.ifc"], "admin's");
    const { user, apiKey } = await createUser("Ada Other");
    // Outside the iModel's team the connection does not exist; a member may read and run it, but not change it.
    expect((await httpAs(apiKey, "PATCH", `/connections/${c.id}`, { displayName: "mine now" })).status).toBe(404);
    const added = await http("POST", `/imodels/${iModelId}/members`, { userId: user.id });
    expect(added.status).toBe(201);
    for (const [method, url, body] of [
      ["PATCH", `/connections/${c.id}`, { displayName: "mine now" }],
      ["DELETE", `/connections/${c.id}?mode=deleteData`, undefined],
      ["POST", `/connections/${c.id}/sourceFiles`, { sourceFiles: [{ path: "h.ifc", connectorType: "IFC" }] }],
      ["DELETE", `/connections/${c.id}/sourceFiles/${fileId(c, "h.ifc")}?mode=keepData`, undefined],
    ] as const) {
      const r = await httpAs(apiKey, method, url, body);
      expect(r.status, `${method} ${url}`).toBe(403);
      expect(r.body.error.code).toBe("NotConnectionOwner");
    }
    const run = await httpAs(apiKey, "POST", `/connections/${c.id}/run`);
    expect(run.status).toBe(202);
    await waitForRun(run.location!);
    expect((await http("GET", `/connections/${c.id}`)).body.connection).toMatchObject({
      displayName: "admin's",
      status: "Active",
    });
  });
});

describe("files that belong to another connection", () => {
  it("a reference file of one connection cannot be another's composite model, nor be synchronized twice", async () => {
    const source = makeSource("xref-owner", {
      "host.dxf": XREF("xref_host_attached_r2000.dxf"),
      "xref_target_grid_r2000.dxf": XREF("xref_target_grid_r2000.dxf"),
      "other_host.dxf": XREF("xref_host_attached_r2000.dxf"),
    });
    const iModel = await newIModel("reference owners");
    const hosts = await connect(iModel.id, source, ["host.dxf"], "host", "DXF");
    expect((await sync(hosts.id)).result).toBe("Success");
    const other = await connect(iModel.id, source, ["other_host.dxf"], "other", "DXF");
    const add = await http("POST", `/connections/${other.id}/sourceFiles`, {
      sourceFiles: [{ path: "xref_target_grid_r2000.dxf", connectorType: "DXF" }],
    });
    expect(add.status).toBe(409);
    expect(add.body.error).toMatchObject({ code: "SourceFileAlreadyMapped" });
    expect(add.body.error.message).toMatch(/reference file/);
    // The other connection's composite names the same XREF: it is not synchronized a second time.
    const run = await sync(other.id);
    expect(run.result).toBe("Success");
    const tasks = tasksOf(run);
    expect(tasks.map((t: any) => t.path)).toEqual(["other_host.dxf"]);
    expect(tasks[0].warnings.map((w: any) => w.code)).toContain("ReferenceMappedByAnotherConnection");
    const links = await ecsql(iModel.bim, "SELECT Url url FROM BisCore.RepositoryLink ORDER BY Url");
    expect(links.map((l) => l.url)).toEqual(["host.dxf", "other_host.dxf", "xref_target_grid_r2000.dxf"]);
  });
});

describe("a file unmapped during a run", () => {
  it("is not written by that run (keepData: no more syncs of it, at once)", async () => {
    const names = Array.from({ length: 6 }, (_, i) => `s${i}.ifc`);
    const source = makeSource("unmap-during", Object.fromEntries(names.map((n) => [n, STRUCTURAL])));
    const iModel = await newIModel("unmap during run");
    const c = await connect(iModel.id, source, names, "unmapped while running");
    const r = await http("POST", `/connections/${c.id}/run`);
    const last = names[names.length - 1];
    // Planned (one task per file), the last file not yet started.
    const planned = await waitForRunState(r.location!, (run) => tasksOf(run).length === names.length, 60_000, 20);
    expect(tasksOf(planned).find((t: any) => t.path === last).state).toBe("NotStarted");
    const u = await http("DELETE", `/connections/${c.id}/sourceFiles/${fileId(c, last)}?mode=keepData`);
    expect(u.status, JSON.stringify(u.body)).toBe(200);
    const { run } = await waitForRun(r.location!);
    const task = tasksOf(run).find((t: any) => t.path === last);
    expect(task.result).toBe("Skipped");
    expect(task.reason.code).toBe("SourceFileUnmapped");
    const links = await ecsql(iModel.bim, "SELECT Url url FROM BisCore.RepositoryLink");
    expect(links.map((l) => l.url)).not.toContain(last);
  });
});

describe("Temporal down during a delete or an unmap", () => {
  it(
    "keepData answers 200 and the active run stops by itself; an unmap with deleteData answers 503 and the same request queues the job later",
    { timeout: 600_000 },
    async () => {
      const names = Array.from({ length: 12 }, (_, i) => `s${String(i).padStart(2, "0")}.ifc`);
      const source = makeSource("temporal-down", {
        ...Object.fromEntries(names.map((n) => [n, STRUCTURAL])),
        "h.ifc": HVAC,
        "a.ifc": ARCH,
      });
      const iModel = await newIModel("temporal down");
      const running = await connect(iModel.id, source, names, "running");
      const unmapping = await connect(iModel.id, source, ["h.ifc", "a.ifc"], "unmapping");
      expect((await sync(unmapping.id)).result).toBe("Success");
      const r = await http("POST", `/connections/${running.id}/run`);
      await waitForRunState(r.location!, (run) => tasksOf(run).some((t: any) => t.state === "Completed"));
      killService("temporal");
      try {
        const del = await http("DELETE", `/connections/${running.id}?mode=keepData`);
        expect(del.status, JSON.stringify(del.body)).toBe(200);
        expect(del.body.warnings.map((w: any) => w.code)).toEqual(["RunNotCancelledYet"]);
        const unmap = await http(
          "DELETE",
          `/connections/${unmapping.id}/sourceFiles/${fileId(unmapping, "h.ifc")}?mode=deleteData`,
        );
        expect(unmap.status).toBe(503);
        expect(unmap.body.error.code).toBe("DependencyUnavailable");
      } finally {
        await restartService("temporal");
      }
      const { run } = await waitForRun(r.location!, 300_000);
      expect(run.result).toBe("Cancelled");
      expect(tasksOf(run).filter((t: any) => t.result === "Success").length).toBeLessThan(names.length);
      // The unmap was recorded; the same request now queues its delete job.
      const again = await eventually(
        "the unmap's delete job",
        async () => {
          const a = await http(
            "DELETE",
            `/connections/${unmapping.id}/sourceFiles/${fileId(unmapping, "h.ifc")}?mode=deleteData`,
          );
          return a.status === 202 ? a : undefined;
        },
        120_000,
        2000,
      );
      expect((await waitForRun(again.location!)).run.result).toBe("Success");
      const links = await ecsql(iModel.bim, "SELECT Url url FROM BisCore.RepositoryLink");
      expect(links.map((l) => l.url)).not.toContain("h.ifc");
      expect(links.map((l) => l.url)).toContain("a.ifc");
      const gone = await http(
        "DELETE",
        `/connections/${unmapping.id}/sourceFiles/${fileId(unmapping, "h.ifc")}?mode=deleteData`,
      );
      expect(gone.status).toBe(404);
    },
  );
});
