/**
 * End to end on the real stack: API → Temporal → worker → web-ifc + core-backend → .bim, records in FerretDB.
 */
import * as fs from "node:fs";
import * as WebIFC from "web-ifc";
import { beforeAll, describe, expect, it } from "vitest";
import { Client, Connection } from "@temporalio/client";
import {
  createConnection,
  ecsql,
  FIXTURE,
  http,
  makeSource,
  restartService,
  SAMPLE,
  stack,
  waitForRun,
} from "./helpers";

const STRUCTURAL = "ifc2x3_structural_revit_example_rev1.ifc";

/** Independent count of meshed IfcProducts per IFC class (upper-case names), straight from web-ifc. */
async function meshedProductsByClass(file: string): Promise<Record<string, number>> {
  const api = new WebIFC.IfcAPI();
  await api.Init();
  const id = api.OpenModel(new Uint8Array(fs.readFileSync(file)));
  const counts: Record<string, number> = {};
  api.StreamAllMeshes(id, (mesh) => {
    const cls = api.GetNameFromTypeCode(api.GetLineType(id, mesh.expressID)).toUpperCase();
    counts[cls] = (counts[cls] ?? 0) + 1;
  });
  api.CloseModel(id);
  return counts;
}

describe("first synchronization of IFC files", () => {
  let source: string;
  let iModelId: string;
  let connection: any;
  let run: any;
  let statesSeen: string[];
  let concurrent: { status: number; location: string | null }[];

  beforeAll(async () => {
    source = makeSource("structural", {
      [`models/${STRUCTURAL}`]: SAMPLE(STRUCTURAL),
      "models/broken.ifc": FIXTURE("ifc/ifc4_broken_missing_header.ifc"),
      "hvac.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
    });
    ({ iModelId, connection } = await createConnection(
      source,
      [`models/${STRUCTURAL}`, "models/broken.ifc", "hvac.ifc"],
      "structural",
    ));
    // Two requests at once: exactly one starts a run, the other is sent to it.
    concurrent = await Promise.all([
      http("POST", `/connections/${connection.id}/run`),
      http("POST", `/connections/${connection.id}/run`),
    ]);
    const started = concurrent.find((r) => r.status === 202)!;
    ({ run, statesSeen } = await waitForRun(started.location!));
  });

  it("answers 202 for a new run and 303 to the active run for a second request", async () => {
    expect(concurrent.map((r) => r.status).sort()).toEqual([202, 303]);
    expect(concurrent[0].location).toBe(concurrent[1].location);
    expect(concurrent[0].location).toMatch(new RegExp(`^/connections/${connection.id}/runs/[0-9a-f-]{36}$`));
    // Once the run is over, a new request starts a new run.
    const again = await http("POST", `/connections/${connection.id}/run`);
    expect(again.status).toBe(202);
    expect(again.location).not.toBe(concurrent[0].location);
    await waitForRun(again.location!);
  });

  it("records states with the API's words and a PartialSuccess result", () => {
    expect(run.state).toBe("Completed");
    expect(run.result).toBe("PartialSuccess");
    expect(run.trigger).toBe("manual");
    for (const s of statesSeen)
      expect(["NotStarted", "Queued", "WaitingToExecute", "Executing", "Finalizing", "Completed"]).toContain(s);
    // States are recorded while the run goes: polling saw it executing before it completed.
    expect(statesSeen).toContain("Executing");
    expect(run.workflowId).toBe(`sync/${connection.id}/${run.id}`);
    expect(Date.parse(run.endDateTime)).toBeGreaterThanOrEqual(Date.parse(run.startDateTime));
  });

  it("fails only the broken file's task, with a code and a message naming the file", () => {
    const tasks = run.jobs.flatMap((j: any) => j.tasks);
    expect(run.jobs.map((j: any) => j.connectorType)).toEqual(["IFC"]);
    expect(tasks).toHaveLength(3);
    const broken = tasks.find((t: any) => t.path === "models/broken.ifc");
    expect(broken.result).toBe("Error");
    expect(broken.error.code).toBe("InvalidFileFormat");
    expect(broken.error.message).toContain("broken.ifc");
    for (const t of tasks.filter((t: any) => t !== broken)) {
      expect(t.result).toBe("Success");
      expect(t.state).toBe("Completed");
      expect(t.elements.inserted).toBeGreaterThan(0);
      expect(t.elements).toMatchObject({ updated: 0, deleted: 0, unchanged: 0 });
      expect(t.durationMs).toBeGreaterThanOrEqual(0);
    }
  });

  it("writes one element per meshed IfcProduct of the structural file, per IFC class, each with one ExternalSourceAspect", async () => {
    const expected = await meshedProductsByClass(SAMPLE(STRUCTURAL));
    const bim = (await http("GET", `/imodels/${iModelId}`)).body.iModel.location.path;
    const rows = await ecsql(
      bim,
      `SELECT c.CodeValue cls, COUNT(*) n FROM Generic.PhysicalObject e
         JOIN BisCore.SpatialCategory c ON c.ECInstanceId = e.Category.Id
         JOIN BisCore.PhysicalPartition p ON p.ECInstanceId = e.Model.Id
       WHERE p.CodeValue = :file GROUP BY c.CodeValue`,
      { file: `models/${STRUCTURAL}` },
    );
    const actual = Object.fromEntries(rows.map((r) => [String(r.cls).toUpperCase(), r.n]));
    expect(actual).toEqual(expected);
    expect(actual.IFCBEAM).toBe(44);
    const task = run.jobs[0].tasks.find((t: any) => t.path.endsWith(STRUCTURAL));
    // and the site, the building and the two storeys, as spatial elements
    expect(task.elements.inserted).toBe(Object.values(expected).reduce((a, b) => a + b, 0) + 4);

    const aspects = await ecsql(
      bim,
      `SELECT e.ECInstanceId id, COUNT(a.ECInstanceId) n FROM Generic.PhysicalObject e
         LEFT JOIN BisCore.ExternalSourceAspect a ON a.Element.Id = e.ECInstanceId AND a.Kind = 'Element'
       GROUP BY e.ECInstanceId`,
    );
    expect(aspects.length).toBeGreaterThan(116);
    expect(aspects.filter((r) => r.n !== 1)).toEqual([]);
    const links = await ecsql(bim, "SELECT Url url FROM BisCore.RepositoryLink ORDER BY Url");
    expect(links.map((l) => l.url)).toEqual(["hvac.ifc", `models/${STRUCTURAL}`]);
  });

  it("makes the run findable in Temporal by its search attributes", async () => {
    const connectionTemporal = await Connection.connect({ address: stack().temporalAddress });
    try {
      const client = new Client({ connection: connectionTemporal });
      const ids: string[] = [];
      for await (const wf of client.workflow.list({
        query: `ConnectionId = "${connection.id}" AND IModelId = "${iModelId}"`,
      }))
        ids.push(wf.workflowId);
      expect(ids).toContain(`sync/${connection.id}/${run.id}`);
      const queue = await client.workflow.getHandle(`imodel/${iModelId}`).describe();
      expect(queue.status.name).toBe("RUNNING");
    } finally {
      await connectionTemporal.close();
    }
  });

  it("keeps connection and run records through an API restart", async () => {
    await restartService("api");
    const c = await http("GET", `/connections/${connection.id}`);
    expect(c.status).toBe(200);
    expect(c.body.connection.displayName).toBe("structural");
    const r = await http("GET", `/connections/${connection.id}/runs/${run.id}`);
    expect(r.body.run).toEqual(run);
  });

  it("starts a new run right after a worker restart (never a 303 to a finished run)", async () => {
    await restartService("worker");
    const r = await http("POST", `/connections/${connection.id}/run`);
    expect(r.status).toBe(202);
    const { run: next } = await waitForRun(r.location!);
    expect(next.state).toBe("Completed");
    const h = await http("GET", "/health");
    expect(h.body.checks).toMatchObject({ mongodb: "ok", temporal: "ok", worker: "ok" });
  });

  it("keeps connection and run records readable through the API", async () => {
    const c = await http("GET", `/connections/${connection.id}`);
    expect(c.status).toBe(200);
    expect(c.body.connection._links.lastRun.href).toMatch(`/connections/${connection.id}/runs/`);
    const list = await http("GET", `/connections?iModelId=${iModelId}`);
    expect(list.body.connections.map((x: any) => x.id)).toEqual([connection.id]);
    const runs = await http("GET", `/connections/${connection.id}/runs?$top=1`);
    expect(runs.body.runs).toHaveLength(1);
    expect(runs.body._links.next.href).toContain("$skip=1");
  });
});

describe("writes to one iModel are serialized", () => {
  it("runs two connections of one iModel one after the other", async () => {
    const source = makeSource("serial", {
      "a.ifc": SAMPLE("ifc4_architecture_revit_testmodel.ifc"),
      "b.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
    });
    const { iModelId, connection: a } = await createConnection(source, ["a.ifc"], "architecture");
    const { connection: b } = await createConnection(source, ["b.ifc"], "hvac", iModelId);
    const [ra, rb] = await Promise.all([
      http("POST", `/connections/${a.id}/run`),
      http("POST", `/connections/${b.id}/run`),
    ]);
    expect([ra.status, rb.status]).toEqual([202, 202]);
    const [runA, runB] = await Promise.all([waitForRun(ra.location!), waitForRun(rb.location!)]);
    expect(runA.run.result).toBe("Success");
    expect(runB.run.result).toBe("Success");
    const [first, second] = [runA.run, runB.run].sort(
      (x, y) => Date.parse(x.startDateTime) - Date.parse(y.startDateTime),
    );
    expect(Date.parse(second.startDateTime)).toBeGreaterThanOrEqual(Date.parse(first.endDateTime));
  });
});
