/**
 * Run control on the real stack (README "Run control"): retrying the failed files of a run, a run limited to chosen
 * composite models, a forced run, the dry run of a run, run list filters, and the source files sub-resource.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { createConnection, ecsql, FIXTURE, http, makeSource, SAMPLE, tasksOf, waitForRun } from "./helpers";

const HVAC = SAMPLE("ifc4_hvac_air_terminal_duct.ifc");
const MODEL = FIXTURE("integrity/model_rev1.ifc");
const TRUNCATED = FIXTURE("integrity/model_rev2_truncated.ifc");
const ARCHITECTURE = SAMPLE("ifc4_architecture_revit_testmodel.ifc");
const XREF = (f: string) => FIXTURE(`dxf-xref/${f}`);

/** Asks for a run (body optional) and waits for it; fails unless the answer is 202. */
async function runOnce(connectionId: string, body?: unknown) {
  const r = await http("POST", `/connections/${connectionId}/run`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const { run } = await waitForRun(r.location!);
  return { run, tasks: tasksOf(run), byPath: (p: string) => tasksOf(run).find((t: any) => t.path === p) };
}

/** Element id → LastMod of a file's elements (by provenance). */
async function lastMods(bim: string): Promise<Record<string, string>> {
  const rows = await ecsql(
    bim,
    `SELECT a.Identifier identifier, e.LastMod lastMod FROM BisCore.ExternalSourceAspect a
       JOIN Generic.PhysicalObject e ON e.ECInstanceId = a.Element.Id WHERE a.Kind = 'Element'`,
  );
  return Object.fromEntries(rows.map((r) => [r.identifier, r.lastMod]));
}

describe("retrying the failed files of a run", () => {
  let source: string;
  let connection: any;
  let first: Awaited<ReturnType<typeof runOnce>>;
  /** The answer to a retry asked while the first run was still queued or executing. */
  let whileActive: { status: number; body: any };
  const fileId = (p: string) => connection.sourceFiles.find((f: any) => f.path === p).id;

  beforeAll(async () => {
    // One corrupt file (cut off in the middle) and three good ones.
    source = makeSource("retry", {
      "corrupt.ifc": TRUNCATED,
      "hvac.ifc": HVAC,
      "model.ifc": MODEL,
      "arch.ifc": ARCHITECTURE,
    });
    connection = (await createConnection(source, ["corrupt.ifc", "hvac.ifc", "model.ifc", "arch.ifc"], "retry"))
      .connection;
    const r = await http("POST", `/connections/${connection.id}/run`);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    // Four files, one of them the architecture model: the run is still queued or executing when this arrives.
    whileActive = await http("POST", `/connections/${connection.id}/runs/${r.body.run.id}/retry`);
    const { run } = await waitForRun(r.location!);
    first = { run, tasks: tasksOf(run), byPath: (p: string) => tasksOf(run).find((t: any) => t.path === p) };
  });

  it("refuses a run still queued or executing (409 RunStillActive) and a body it does not know (400)", async () => {
    expect([whileActive.status, whileActive.body.error.code]).toEqual([409, "RunStillActive"]);
    const bad = await http("POST", `/connections/${connection.id}/runs/${first.run.id}/retry`, {
      confirmDeletions: "yes",
    });
    expect([bad.status, bad.body.error.code]).toEqual([400, "InvalidRequest"]);
    const unknown = await http("POST", `/connections/${connection.id}/runs/${first.run.id}/retry`, { force: true });
    expect([unknown.status, unknown.body.error.code]).toEqual([400, "InvalidRequest"]);
  });

  it("retries only the file that failed once it is fixed, and links the retry to its parent", async () => {
    expect(first.run.result).toBe("PartialSuccess");
    expect(first.byPath("corrupt.ifc").error.code).toBe("FileIncomplete");
    expect(first.tasks.filter((t: any) => t.result === "Success")).toHaveLength(3);
    expect(first.run._links.retry).toEqual({
      href: `/connections/${connection.id}/runs/${first.run.id}/retry`,
      method: "POST",
    });

    fs.copyFileSync(MODEL, path.join(source, "corrupt.ifc")); // fixed
    const r = await http("POST", `/connections/${connection.id}/runs/${first.run.id}/retry`);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.run).toMatchObject({
      trigger: "retry",
      retryOf: first.run.id,
      sourceFileIds: [fileId("corrupt.ifc")],
    });
    const { run } = await waitForRun(r.location!);
    expect(run.result).toBe("Success");
    expect(run._links.retryOf).toEqual({ href: `/connections/${connection.id}/runs/${first.run.id}` });
    // Only that file: no task (not even a Skipped one) for the three good files. Its 6 elements: the wall, slab and
    // column, and the site, building and storey that contain them (README "What an iModel contains").
    expect(tasksOf(run).map((t: any) => [t.path, t.result, t.elements.inserted])).toEqual([
      ["corrupt.ifc", "Success", 6],
    ]);
    expect(run.requestedBy).toBe("admin");

    // The retry completed every file: nothing left to retry, in either run's retry.
    const again = await http("POST", `/connections/${connection.id}/runs/${run.id}/retry`);
    expect([again.status, again.body.error.code]).toEqual([409, "NoFailedTasks"]);
    const next = await runOnce(connection.id);
    expect(next.tasks.every((t: any) => t.result === "Skipped")).toBe(true);
  });

  it("refuses unknown runs (404) and runs of another connection, and a delete job (409 RunNotRetryable)", async () => {
    expect((await http("POST", `/connections/${connection.id}/runs/nope/retry`)).body.error.code).toBe("RunNotFound");
    const other = await createConnection(
      makeSource("retry-other", { "m.ifc": MODEL, "m2.ifc": HVAC }),
      ["m.ifc", "m2.ifc"],
      "retry other",
    );
    const r = await http("POST", `/connections/${other.connection.id}/runs/${first.run.id}/retry`);
    expect([r.status, r.body.error.code]).toEqual([404, "RunNotFound"]);
    // A delete job: unmap a file with its data, then ask to retry the job.
    await runOnce(other.connection.id);
    const m2 = other.connection.sourceFiles.find((f: any) => f.path === "m2.ifc").id;
    const unmap = await http("DELETE", `/connections/${other.connection.id}/sourceFiles/${m2}?mode=deleteData`);
    expect(unmap.status).toBe(202);
    await waitForRun(unmap.location!);
    const job = await http("POST", `${unmap.location}/retry`);
    expect([job.status, job.body.error.code]).toEqual([409, "RunNotRetryable"]);
  });
});

describe("a run limited to chosen composite models, a forced run, and the dry run", () => {
  let source: string;
  let connection: any;
  let bim: string;
  const fileId = (p: string) => connection.sourceFiles.find((f: any) => f.path === p).id;

  beforeAll(async () => {
    source = makeSource("choose", { "a.ifc": MODEL, "b.ifc": HVAC });
    const created = await createConnection(source, ["a.ifc", "b.ifc"], "choose");
    connection = created.connection;
    bim = (await http("GET", `/imodels/${created.iModelId}`)).body.iModel.location.path;
  });

  it("synchronizes only the composite models named", async () => {
    const { run, tasks } = await runOnce(connection.id, { sourceFileIds: [fileId("b.ifc")] });
    expect(run.sourceFileIds).toEqual([fileId("b.ifc")]);
    expect(tasks.map((t: any) => [t.path, t.result])).toEqual([["b.ifc", "Success"]]);
    // The next plain run synchronizes a.ifc (never synchronized) and skips b.ifc (unchanged).
    const plain = await runOnce(connection.id);
    expect(plain.tasks.map((t: any) => [t.path, t.result])).toEqual([
      ["a.ifc", "Success"],
      ["b.ifc", "Skipped"],
    ]);
  });

  it("refuses ids the connection does not map (404, a detail each) and bad bodies (400); nothing starts", async () => {
    const before = (await http("GET", `/connections/${connection.id}/runs`)).body.runs.length;
    const unknown = await http("POST", `/connections/${connection.id}/run`, {
      sourceFileIds: [fileId("a.ifc"), "nope"],
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("SourceFileNotMapped");
    expect(unknown.body.error.details).toEqual([
      { code: "SourceFileNotMapped", message: expect.stringContaining("nope"), target: "sourceFileIds.1" },
    ]);
    for (const body of [
      { sourceFileIds: [] },
      { sourceFileIds: "a" },
      { force: "yes" },
      { dryRun: 1 },
      { sourceFileIds: [""] },
    ]) {
      const r = await http("POST", `/connections/${connection.id}/run`, body);
      expect([r.status, r.body.error.code], JSON.stringify(body)).toEqual([400, "InvalidRequest"]);
    }
    expect((await http("GET", `/connections/${connection.id}/runs`)).body.runs.length).toBe(before);
  });

  it("forced: parses an unchanged file again, reports every element unchanged and writes nothing", async () => {
    const before = await lastMods(bim);
    const { run, byPath } = await runOnce(connection.id, { force: true, sourceFileIds: [fileId("a.ifc")] });
    expect(run.force).toBe(true);
    expect(byPath("a.ifc").result).toBe("Success");
    // 3 products and the site, building and storey containing them.
    expect(byPath("a.ifc").elements).toEqual({ inserted: 0, updated: 0, deleted: 0, unchanged: 6 });
    expect(byPath("a.ifc").items.written).toEqual({ inserted: 0, updated: 0, unchanged: 6 });
    expect(await lastMods(bim)).toEqual(before); // every element keeps its LastMod
    const changes = await http("GET", `/connections/${connection.id}/runs/${run.id}/changes`);
    expect(changes.body).toEqual({ changes: [], counts: { inserted: 0, updated: 0, deleted: 0 }, _links: {} });
    // Without force the same file is Skipped as unchanged.
    const plain = await runOnce(connection.id, { sourceFileIds: [fileId("a.ifc")] });
    expect(plain.byPath("a.ifc").reason.code).toBe("FileUnchanged");
  });

  it("dry run: says which files changed by hash and estimates the duration; starts nothing", async () => {
    fs.copyFileSync(FIXTURE("integrity/ifc4_with_ifc4x3_classes.ifc"), path.join(source, "b.ifc"));
    const runsBefore = (await http("GET", `/connections/${connection.id}/runs`)).body.runs.length;
    const r = await http("POST", `/connections/${connection.id}/run`, { dryRun: true });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const p = r.body.preview;
    expect(p.files.map((f: any) => [f.path, f.changed, f.synchronize])).toEqual([
      ["a.ifc", false, false],
      ["b.ifc", true, true],
    ]);
    expect(p.files[0].reason.code).toBe("FileUnchanged");
    expect(p.files[1].size).toBe(fs.statSync(path.join(source, "b.ifc")).size);
    expect(p.counts).toEqual({ files: 2, changed: 1, unchanged: 1, toSynchronize: 1, unreadable: 0 });
    // Estimated from the past runs: b.ifc's own newest written task, plus the runs' overhead.
    expect(p.estimate.filesWithHistory).toBe(1);
    expect(p.estimate.durationMs).toBeGreaterThanOrEqual(p.estimate.overheadMs);
    expect(p.estimate.method).toMatch(/newest task/);
    // Forced: every file would be synchronized, changed or not.
    const forced = await http("POST", `/connections/${connection.id}/run`, { dryRun: true, force: true });
    expect(forced.body.preview.files.map((f: any) => [f.changed, f.synchronize])).toEqual([
      [false, true],
      [true, true],
    ]);
    // A missing file: its task would fail.
    fs.renameSync(path.join(source, "a.ifc"), path.join(source, "a.moved"));
    const missing = await http("POST", `/connections/${connection.id}/run`, { dryRun: true });
    expect(missing.body.preview.files[0]).toMatchObject({
      changed: true,
      synchronize: true,
      problem: { code: "FileNotFound" },
    });
    fs.renameSync(path.join(source, "a.moved"), path.join(source, "a.ifc"));
    expect((await http("GET", `/connections/${connection.id}/runs`)).body.runs.length).toBe(runsBefore);
  });
});

describe("run lists with filters", () => {
  it("filters by result, trigger and queued time (ISO 8601 UTC), pages with the filters kept", async () => {
    const source = makeSource("filters", { "bad.ifc": TRUNCATED, "good.ifc": MODEL });
    const { connection } = await createConnection(source, ["bad.ifc", "good.ifc"], "filters");
    const t0 = new Date().toISOString();
    const first = await runOnce(connection.id);
    const bad = connection.sourceFiles.find((f: any) => f.path === "bad.ifc").id;
    const second = await runOnce(connection.id, { sourceFileIds: [bad] });
    fs.copyFileSync(MODEL, path.join(source, "bad.ifc"));
    const retry = await http("POST", `/connections/${connection.id}/runs/${second.run.id}/retry`);
    const { run: retried } = await waitForRun(retry.location!);
    const base = `/connections/${connection.id}/runs`;
    const ids = async (q: string) => {
      const r = await http("GET", `${base}${q}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.runs.map((x: any) => x.id);
    };
    expect(first.run.result).toBe("PartialSuccess");
    expect(second.run.result).toBe("Error"); // bad.ifc alone, failed again
    expect(await ids("?result=PartialSuccess")).toEqual([first.run.id]);
    expect(await ids("?trigger=retry")).toEqual([retried.id]);
    expect(await ids("?trigger=manual&result=Error")).toEqual([second.run.id]);
    expect(await ids(`?from=${t0}`)).toEqual([retried.id, second.run.id, first.run.id]);
    expect(await ids(`?from=${second.run.queuedDateTime}&to=${retried.queuedDateTime}`)).toEqual([second.run.id]);
    expect(await ids(`?to=${t0}`)).toEqual([]);
    const page = await http("GET", `${base}?trigger=manual&$top=1`);
    expect(page.body._links.next.href).toBe(`${base}?trigger=manual&$top=1&$skip=1`);
    for (const q of [
      "?result=Fine",
      "?trigger=cron",
      "?from=2024-05-01",
      "?from=2024-05-01T00:00:00%2B02:00",
      `?from=${t0}&to=${t0}`,
    ]) {
      const r = await http("GET", `${base}${q}`);
      expect([r.status, r.body.error.code], q).toEqual([400, "InvalidRequest"]);
    }
  });
});

describe("source files as a sub-resource", () => {
  it("lists composite models and their reference files with role, references, last synchronization and task", async () => {
    const source = makeSource("files", {
      "plans/host.dxf": XREF("xref_host_attached_r2000.dxf"),
      "plans/xref_target_grid_r2000.dxf": XREF("xref_target_grid_r2000.dxf"),
      "plans/bad.ifc": TRUNCATED,
    });
    const m = await http("POST", "/imodels", { name: "files" });
    const c = await http("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: "files",
      source: { type: "local", path: source },
      sourceFiles: [
        { path: "plans/host.dxf", connectorType: "DXF" },
        { path: "plans/bad.ifc", connectorType: "IFC" },
      ],
    });
    const connection = c.body.connection;
    const { run } = await runOnce(connection.id);
    const list = await http("GET", `/connections/${connection.id}/sourceFiles`);
    expect(list.status).toBe(200);
    const files = list.body.sourceFiles;
    expect(files.map((f: any) => [f.path, f.role])).toEqual([
      ["plans/host.dxf", "CompositeModel"],
      ["plans/bad.ifc", "CompositeModel"],
      ["plans/xref_target_grid_r2000.dxf", "ReferenceFile"],
    ]);
    const [host, bad, ref] = files;
    expect(host.references.map((r: any) => [r.path, r.role, r.resolved])).toEqual([
      ["plans/xref_target_grid_r2000.dxf", "ReferenceFile", true],
    ]);
    expect(host.lastSynchronized).toEqual({
      contentHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      dateTime: expect.any(String),
      runId: run.id,
    });
    expect(host.lastTask).toMatchObject({
      runId: run.id,
      result: "Success",
      elements: { inserted: expect.any(Number) },
    });
    expect(bad.lastSynchronized).toBeNull();
    expect(bad.lastTask).toMatchObject({ result: "Error", error: { code: "FileIncomplete" } });
    expect(ref.referencedBy).toEqual([host.id]);
    expect(ref.lastTask.result).toBe("Success");

    const one = await http("GET", `/connections/${connection.id}/sourceFiles/${ref.id}`);
    expect(one.body.sourceFile).toEqual(ref);
    const page = await http("GET", `/connections/${connection.id}/sourceFiles?$top=2`);
    expect(page.body.sourceFiles.map((f: any) => f.id)).toEqual([host.id, bad.id]);
    expect(page.body._links.next.href).toBe(`/connections/${connection.id}/sourceFiles?$top=2&$skip=2`);
    const unknown = await http("GET", `/connections/${connection.id}/sourceFiles/nope`);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, "SourceFileNotMapped"]);
    // The newest task after another run: host.dxf Skipped as unchanged.
    const again = await runOnce(connection.id);
    const later = await http("GET", `/connections/${connection.id}/sourceFiles/${host.id}`);
    expect(later.body.sourceFile.lastTask).toMatchObject({
      runId: again.run.id,
      result: "Skipped",
      reason: { code: "FileUnchanged" },
    });
    expect(later.body.sourceFile.lastSynchronized.runId).toBe(run.id);

    // A reference file cannot be chosen for a run on its own.
    const r = await http("POST", `/connections/${connection.id}/run`, { sourceFileIds: [ref.id] });
    expect([r.status, r.body.error.details[0].code]).toEqual([400, "NotACompositeModel"]);
  });
});
