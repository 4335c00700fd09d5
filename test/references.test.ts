/**
 * Composite models with reference files (DXF XREFs) and the geographic coordinate system, on the real stack.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { OpenMode } from "@itwin/core-bentley";
import { StandaloneDb } from "@itwin/core-backend";
import { beforeAll, describe, expect, it } from "vitest";
import { ecsql, FIXTURE, http, makeSource, SAMPLE, waitForRun } from "./helpers";

const XREF = (f: string) => FIXTURE(`dxf-xref/${f}`);

async function newIModel(name: string): Promise<{ id: string; bim: string }> {
  const m = await http("POST", "/imodels", { name });
  expect(m.status).toBe(201);
  return { id: m.body.iModel.id, bim: m.body.iModel.location.path };
}

async function connect(iModelId: string, source: string, files: [string, string][], displayName: string) {
  const c = await http("POST", "/connections", {
    iModelId,
    displayName,
    source: { type: "local", path: source },
    sourceFiles: files.map(([p, connectorType]) => ({ path: p, connectorType })),
  });
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  return c.body.connection;
}

async function run(connectionId: string) {
  const r = await http("POST", `/connections/${connectionId}/run`);
  expect(r.status).toBe(202);
  const { run } = await waitForRun(r.location!);
  const tasks = run.jobs.flatMap((j: any) => j.tasks);
  return { run, tasks, byPath: (p: string) => tasks.find((t: any) => t.path === p) };
}

describe("composite models with reference files", () => {
  let source: string;
  let iModel: { id: string; bim: string };
  let connection: any;
  let first: Awaited<ReturnType<typeof run>>;

  beforeAll(async () => {
    source = makeSource("xref", {
      "plans/xref_host_attached_r2000.dxf": XREF("xref_host_attached_r2000.dxf"),
      // A second composite naming the same XREF: the reference is synchronized once.
      "plans/xref_host_attached_copy.dxf": XREF("xref_host_attached_r2000.dxf"),
      "plans/xref_target_grid_r2000.dxf": XREF("xref_target_grid_r2000.dxf"),
      "plans/xref_host_overlay_r2018.dxf": XREF("xref_host_overlay_r2018.dxf"),
    });
    iModel = await newIModel("xref");
    connection = await connect(
      iModel.id,
      source,
      [
        ["plans/xref_host_attached_r2000.dxf", "DXF"],
        ["plans/xref_host_attached_copy.dxf", "DXF"],
        ["plans/xref_host_overlay_r2018.dxf", "DXF"],
      ],
      "plans",
    );
    first = await run(connection.id);
  });

  it("synchronizes the composites, then their shared reference once, in two phases", () => {
    expect(first.run.result).toBe("Success");
    const job = first.run.jobs.find((j: any) => j.connectorType === "DXF");
    expect(job.phases.map((p: any) => [p.phase, p.result])).toEqual([
      ["MasterFile", "Success"],
      ["ReferenceFile", "Success"],
    ]);
    const refTasks = first.tasks.filter((t: any) => t.phase === "ReferenceFile");
    expect(refTasks).toHaveLength(1);
    expect(refTasks[0].path).toBe("plans/xref_target_grid_r2000.dxf");
    expect(refTasks[0].role).toBe("ReferenceFile");
    expect(refTasks[0].elements.inserted).toBeGreaterThan(0);
    const hosts = connection.sourceFiles.filter((f: any) => f.path.includes("attached")).map((f: any) => f.id);
    expect([...refTasks[0].referencedBy].sort()).toEqual([...hosts].sort());
    // MasterFile tasks come first.
    const phases = first.tasks.map((t: any) => t.phase);
    expect(phases).toEqual(["MasterFile", "MasterFile", "MasterFile", "ReferenceFile"]);
  });

  it("reports unresolved references as warnings on the composite's task, not as failures", () => {
    const overlay = first.byPath("plans/xref_host_overlay_r2018.dxf");
    expect(overlay.result).toBe("Success");
    const unresolved = overlay.warnings.filter(
      (w: any) => w.code === "UnresolvedReference" || w.code === "UnsupportedReferenceFormat",
    );
    expect(unresolved.map((w: any) => w.target).sort()).toEqual(
      ["..\\xrefs\\site_plan.dwg", "missing_structure.dwg"].sort(),
    );
  });

  it("lists the references under their composite in the connection", async () => {
    const c = (await http("GET", `/connections/${connection.id}`)).body.connection;
    const attached = c.sourceFiles.find((f: any) => f.path === "plans/xref_host_attached_r2000.dxf");
    expect(attached.references).toEqual([
      expect.objectContaining({
        path: "plans/xref_target_grid_r2000.dxf",
        resolved: true,
        attachment: "Attach",
        role: "ReferenceFile",
      }),
    ]);
    const overlay = c.sourceFiles.find((f: any) => f.path === "plans/xref_host_overlay_r2018.dxf");
    expect(overlay.references.map((r: any) => [r.referencedAs, r.resolved])).toEqual(
      expect.arrayContaining([
        ["..\\xrefs\\site_plan.dwg", false],
        ["missing_structure.dwg", false],
      ]),
    );
    expect(overlay.references.find((r: any) => r.referencedAs.includes("site_plan")).attachment).toBe("Overlay");
  });

  it("writes the reference file's data in its own model with its own RepositoryLink", async () => {
    const rows = await ecsql(
      iModel.bim,
      `SELECT p.CodeValue file, COUNT(e.ECInstanceId) n FROM BisCore.PhysicalPartition p
         JOIN BisCore.GeometricElement3d e ON e.Model.Id = p.ECInstanceId GROUP BY p.CodeValue`,
    );
    const counts = Object.fromEntries(rows.map((r) => [r.file, r.n]));
    expect(counts["plans/xref_target_grid_r2000.dxf"]).toBe(
      first.byPath("plans/xref_target_grid_r2000.dxf").elements.inserted,
    );
    const links = await ecsql(iModel.bim, "SELECT Url url FROM BisCore.RepositoryLink ORDER BY Url");
    expect(links.map((l) => l.url)).toEqual([
      "plans/xref_host_attached_copy.dxf",
      "plans/xref_host_attached_r2000.dxf",
      "plans/xref_host_overlay_r2018.dxf",
      "plans/xref_target_grid_r2000.dxf",
    ]);
  });

  it("re-synchronizes only a changed reference file; unchanged composites are Skipped", async () => {
    const target = path.join(source, "plans/xref_target_grid_r2000.dxf");
    // Append a comment (DXF group code 999) at the start: new content, same drawing.
    fs.writeFileSync(target, `999\nrevised\n${fs.readFileSync(target, "utf8")}`);
    const second = await run(connection.id);
    expect(second.run.result).toBe("Success");
    expect(second.tasks.filter((t: any) => t.phase === "MasterFile").map((t: any) => t.result)).toEqual([
      "Skipped",
      "Skipped",
      "Skipped",
    ]);
    const ref = second.byPath("plans/xref_target_grid_r2000.dxf");
    expect(ref.result).toBe("Success");
    expect(ref.elements.inserted + ref.elements.updated + ref.elements.deleted).toBe(0);
    const third = await run(connection.id);
    expect(third.tasks.map((t: any) => t.result)).toEqual(["Skipped", "Skipped", "Skipped", "Skipped"]);
  });
});

describe("geographic coordinate system of an iModel", () => {
  it("is set by the first georeferenced file; its connection is marked; later files keep it or get a conflict warning", async () => {
    const source = makeSource("gcs", {
      "utm.ifc": SAMPLE("ifc4x3_georef_mapconversion_utm.ifc"),
      "arch.ifc": SAMPLE("ifc4_architecture_revit_testmodel.ifc"),
    });
    const iModel = await newIModel("gcs");
    const a = await connect(iModel.id, source, [["utm.ifc", "IFC"]], "site");
    const b = await connect(iModel.id, source, [["arch.ifc", "IFC"]], "architecture");
    const ra = await run(a.id);
    expect(ra.run.result).toBe("Success");
    expect((await http("GET", `/connections/${a.id}`)).body.connection.definesGcs).toBe(true);
    const im = (await http("GET", `/imodels/${iModel.id}`)).body.iModel;
    expect(im.gcsDefinedBy).toMatchObject({
      connectionId: a.id,
      path: "utm.ifc",
      crs: { epsg: 25832, name: "ETRS89 / UTM zone 32N" },
    });
    const readEcef = () => {
      const db = StandaloneDb.openFile(iModel.bim, OpenMode.Readonly);
      try {
        return db.ecefLocation?.toJSON();
      } finally {
        db.close();
      }
    };
    await ecsql(iModel.bim, "SELECT 1 FROM BisCore.Element LIMIT 1"); // starts the host in this process
    const ecef = readEcef();
    expect(ecef).toBeDefined();

    const rb = await run(b.id);
    expect(rb.run.result).toBe("Success");
    const task = rb.tasks[0];
    expect(task.warnings.map((w: any) => w.code)).toContain("GeoreferenceConflict");
    expect((await http("GET", `/connections/${b.id}`)).body.connection.definesGcs).toBe(false);
    expect(readEcef()).toEqual(ecef);
  });

  it("a Swiss-grid file (EPSG:2056, drawn in grid coordinates) defines it like a UTM file, and the GCS-defining connection rules hold", async () => {
    const source = makeSource("gcs-lv95", {
      "lv95.ifc": FIXTURE("georef/ifc4_grid_coordinates_lv95.ifc"),
      "h.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
      "arch.ifc": SAMPLE("ifc4_architecture_revit_testmodel.ifc"),
    });
    const iModel = await newIModel("gcs lv95");
    const swiss = await connect(
      iModel.id,
      source,
      [
        ["lv95.ifc", "IFC"],
        ["h.ifc", "IFC"],
      ],
      "swiss site",
    );
    const arch = await connect(iModel.id, source, [["arch.ifc", "IFC"]], "architecture");
    const rs = await run(swiss.id);
    expect(rs.run.result).toBe("Success");
    expect(rs.byPath("lv95.ifc").warnings).toEqual([]);
    const shown = (await http("GET", `/connections/${swiss.id}`)).body.connection;
    expect(shown.definesGcs).toBe(true);
    expect((await http("GET", `/imodels/${iModel.id}`)).body.iModel.gcsDefinedBy).toMatchObject({
      connectionId: swiss.id,
      path: "lv95.ifc",
      crs: { epsg: 2056, name: "CH1903+ / LV95" },
    });
    // Another file placed elsewhere (IfcSite in another country) keeps the location, with a conflict warning.
    const ra = await run(arch.id);
    expect(ra.tasks[0].warnings.map((w: any) => w.code)).toContain("GeoreferenceConflict");
    // The connection defining the GCS cannot be deleted while another exists; its file cannot be unmapped.
    const del = await http("DELETE", `/connections/${swiss.id}?mode=keepData`);
    expect(del.status).toBe(409);
    expect(del.body.error.code).toBe("GcsDefiningConnection");
    const fileId = (p: string) => shown.sourceFiles.find((f: any) => f.path === p).id;
    const unmap = await http("DELETE", `/connections/${swiss.id}/sourceFiles/${fileId("lv95.ifc")}?mode=keepData`);
    expect(unmap.status).toBe(409);
    expect(unmap.body.error.code).toBe("GcsDefiningFile");
    const unmapOther = await http("DELETE", `/connections/${swiss.id}/sourceFiles/${fileId("h.ifc")}?mode=keepData`);
    expect(unmapOther.status, JSON.stringify(unmapOther.body)).toBe(200);
  });
});
