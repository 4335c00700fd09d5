/**
 * Dry runs of destructive requests on the real stack (README "Run control"): `DELETE /connections/{id}` and
 * `DELETE /connections/{id}/sourceFiles/{fileId}` with `mode=deleteData&dryRun=true` answer what would be removed,
 * counted in the iModel, and change nothing; the real request then removes exactly that (counted by ECSQL before and
 * after). The same refusals as the real requests apply.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createUser, ecsql, FIXTURE, http, httpAs, makeSource, SAMPLE, tasksOf, waitForRun } from "./helpers";

const HVAC = SAMPLE("ifc4_hvac_air_terminal_duct.ifc");
const MODEL = FIXTURE("integrity/model_rev1.ifc");
const STRUCTURE = SAMPLE("ifc2x3_structural_revit_example_rev1.ifc"); // carries a georeference (IfcSite)
const XREF = (f: string) => FIXTURE(`dxf-xref/${f}`);

/** What the iModel holds, counted by ECSQL. */
async function counts(bim: string) {
  const one = async (q: string) => Number((await ecsql(bim, q))[0].n);
  return {
    elements: await one("SELECT count(*) n FROM bis.Element"),
    // The files' elements: physical objects and the spatial structure containing them.
    geometric: await one("SELECT count(*) n FROM bis.GeometricElement3d"),
    models: await one("SELECT count(*) n FROM bis.Model"),
    aspects:
      (await one("SELECT count(*) n FROM bis.ElementMultiAspect")) +
      (await one("SELECT count(*) n FROM bis.ElementUniqueAspect")),
    links: await one("SELECT count(*) n FROM BisCore.RepositoryLink"),
    externalSources: await one("SELECT count(*) n FROM BisCore.ExternalSource"),
  };
}
type Counts = Awaited<ReturnType<typeof counts>>;
const minus = (a: Counts, b: Counts) =>
  Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof Counts] - b[k as keyof Counts]])) as Counts;

/** What the preview says the iModel loses, in the shape of {@link counts}. */
const expectedLoss = (p: any): Counts => ({
  elements: p.totals.elements + p.totals.definitions + p.totals.partitions + p.totals.links + p.totals.externalSources,
  geometric: p.files.reduce((n: number, f: any) => n + f.removes.elements, 0),
  models: p.totals.models,
  aspects: p.totals.aspects,
  links: p.totals.links,
  externalSources: p.totals.externalSources,
});

async function connect(iModelId: string, source: string, files: [string, string][], displayName: string) {
  const c = await http("POST", "/connections", {
    iModelId,
    displayName,
    source: { type: "local", path: source },
    sourceFiles: files.map(([p, connectorType]) => ({ path: p, connectorType })),
  });
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  const r = await http("POST", `/connections/${c.body.connection.id}/run`);
  const { run } = await waitForRun(r.location!);
  expect(run.result, JSON.stringify(run)).toBe("Success");
  return c.body.connection;
}

describe("dry runs of deletes with data", () => {
  let iModelId: string;
  let bim: string;
  let a: any; // hvac.ifc + model.ifc
  let geo: any; // the structure, which defines the iModel's GCS
  let plans: any; // a DXF host with its reference file
  const fileId = (c: any, p: string) => c.sourceFiles.find((f: any) => f.path === p).id;

  beforeAll(async () => {
    const m = await http("POST", "/imodels", { name: "dry runs" });
    iModelId = m.body.iModel.id;
    bim = m.body.iModel.location.path;
    const source = makeSource("dry-run", {
      "hvac.ifc": HVAC,
      "model.ifc": MODEL,
      "structure.ifc": STRUCTURE,
      "plans/host.dxf": XREF("xref_host_attached_r2000.dxf"),
      "plans/xref_target_grid_r2000.dxf": XREF("xref_target_grid_r2000.dxf"),
    });
    geo = await connect(iModelId, source, [["structure.ifc", "IFC"]], "geo");
    a = await connect(
      iModelId,
      source,
      [
        ["hvac.ifc", "IFC"],
        ["model.ifc", "IFC"],
      ],
      "a",
    );
    plans = await connect(iModelId, source, [["plans/host.dxf", "DXF"]], "plans");
  });

  it("unmap: counts what would go, changes nothing; the real unmap then removes exactly that", async () => {
    const before = await counts(bim);
    const url = `/connections/${a.id}/sourceFiles/${fileId(a, "model.ifc")}?mode=deleteData`;
    const dry = await http("DELETE", `${url}&dryRun=true`);
    expect(dry.status, JSON.stringify(dry.body)).toBe(200);
    const p = dry.body.preview;
    expect(p).toMatchObject({ connectionId: a.id, mode: "deleteData", scope: "sourceFile", removesData: true });
    expect(p.files).toEqual([
      {
        sourceFileId: fileId(a, "model.ifc"),
        path: "model.ifc",
        role: "CompositeModel",
        hasData: true,
        // The wall, slab and column and their site, building and storey; an ExternalSourceAspect each, and those of
        // the model and of the file.
        removes: { elements: 6, definitions: 0, models: 1, partitions: 1, aspects: 8, links: 1, externalSources: 1 },
      },
    ]);
    expect(p.subject).toBeUndefined();
    // Nothing changed: the iModel, the mapping, the runs.
    expect(await counts(bim)).toEqual(before);
    expect((await http("GET", `/connections/${a.id}`)).body.connection.sourceFiles).toHaveLength(2);
    const runs = (await http("GET", `/connections/${a.id}/runs`)).body.runs.length;

    const real = await http("DELETE", url);
    expect(real.status).toBe(202);
    const { run } = await waitForRun(real.location!);
    expect(tasksOf(run)[0].elements.deleted).toBe(p.files[0].removes.elements);
    expect(minus(before, await counts(bim))).toEqual(expectedLoss(p));
    expect((await http("GET", `/connections/${a.id}/runs`)).body.runs.length).toBe(runs + 1);
  });

  it("delete: counts every file of the connection and its Subject; the real delete removes exactly that", async () => {
    const before = await counts(bim);
    const dry = await http("DELETE", `/connections/${a.id}?mode=deleteData&dryRun=true`);
    expect(dry.status, JSON.stringify(dry.body)).toBe(200);
    const p = dry.body.preview;
    expect(p).toMatchObject({ scope: "connection", removesData: true, clearsGeoreference: false });
    expect(p.files.map((f: any) => [f.path, f.hasData])).toEqual([["hvac.ifc", true]]);
    expect(p.subject).toEqual({ exists: true, elements: 1, models: 0, aspects: 0 });
    expect(await counts(bim)).toEqual(before);
    expect((await http("GET", `/connections/${a.id}`)).body.connection.status).toBe("Active");

    const real = await http("DELETE", `/connections/${a.id}?mode=deleteData`);
    expect(real.status).toBe(202);
    const { run } = await waitForRun(real.location!);
    expect(run.result).toBe("Success");
    expect(tasksOf(run)[0].elements.deleted).toBe(p.files[0].removes.elements);
    expect(minus(before, await counts(bim))).toEqual(expectedLoss(p));
  });

  it("keepData: nothing would be removed from the iModel, and nothing is asked of the worker", async () => {
    const dry = await http("DELETE", `/connections/${plans.id}?mode=keepData&dryRun=true`);
    expect(dry.status).toBe(200);
    expect(dry.body.preview).toMatchObject({ mode: "keepData", removesData: false, clearsGeoreference: false });
    expect(dry.body.preview.totals).toEqual({
      elements: 0,
      definitions: 0,
      models: 0,
      partitions: 0,
      aspects: 0,
      links: 0,
      externalSources: 0,
    });
    expect(dry.body.preview.files.map((f: any) => [f.path, f.hasData])).toEqual([
      ["plans/host.dxf", null],
      ["plans/xref_target_grid_r2000.dxf", null],
    ]);
    expect((await http("GET", `/connections/${plans.id}`)).body.connection.status).toBe("Active");
  });

  it("refuses what the real request refuses: GCS, reference alone, last composite, non-owner, bad dryRun", async () => {
    const gcs = await http("DELETE", `/connections/${geo.id}?mode=deleteData&dryRun=true`);
    expect([gcs.status, gcs.body.error.code]).toEqual([409, "GcsDefiningConnection"]);
    const refId = (await http("GET", `/connections/${plans.id}/sourceFiles`)).body.sourceFiles[1].id;
    const ref = await http("DELETE", `/connections/${plans.id}/sourceFiles/${refId}?mode=deleteData&dryRun=true`);
    expect([ref.status, ref.body.error.code]).toEqual([409, "ReferenceFileNotUnmappable"]);
    const last = await http(
      "DELETE",
      `/connections/${plans.id}/sourceFiles/${fileId(plans, "plans/host.dxf")}?mode=deleteData&dryRun=true`,
    );
    expect([last.status, last.body.error.code]).toEqual([409, "LastCompositeModel"]);
    const member = await createUser("Dry Run Member");
    await http("POST", `/imodels/${iModelId}/members`, { userId: member.user.id });
    const other = await httpAs(member.apiKey, "DELETE", `/connections/${plans.id}?mode=deleteData&dryRun=true`);
    expect([other.status, other.body.error.code]).toEqual([403, "NotConnectionOwner"]);
    const bad = await http("DELETE", `/connections/${plans.id}?mode=deleteData&dryRun=yes`);
    expect([bad.status, bad.body.error.code]).toEqual([400, "InvalidRequest"]);
  });

  it("the GCS-defining connection alone: its delete would clear the iModel's georeference", async () => {
    expect((await http("DELETE", `/connections/${plans.id}?mode=keepData`)).status).toBe(200);
    const dry = await http("DELETE", `/connections/${geo.id}?mode=deleteData&dryRun=true`);
    expect(dry.status, JSON.stringify(dry.body)).toBe(200);
    expect(dry.body.preview.clearsGeoreference).toBe(true);
    expect(dry.body.preview.files[0].removes.elements).toBe(120);
  });
});
