/**
 * The tasks of a run are read by their `_id`s (lib/run-tasks.ts; docs/architecture.md "Queries FerretDB serves by _id"):
 * the run record lists them, including a reference file found during the run; a run recorded without that list is
 * read by `runId`; a Completed task is never written again.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRunRecordActivities } from "../activities/run-records";
import { openStore, type Store } from "../lib/db";
import { createLogger } from "../lib/logger";
import { completedTaskCache, readRunTasks } from "../lib/run-tasks";
import { FIXTURE, http, makeSource, stack, tasksOf, waitForRun } from "./helpers";

const XREF = (f: string) => FIXTURE(`dxf-xref/${f}`);

let store: Store;
beforeAll(async () => {
  store = await openStore(stack().mongoUri);
});
afterAll(async () => {
  await store?.close();
});

describe("tasks of a run, read by _id", () => {
  let runLocation: string;
  let runId: string;

  beforeAll(async () => {
    const source = makeSource("run-tasks", {
      "host.dxf": XREF("xref_host_attached_r2000.dxf"),
      "xref_target_grid_r2000.dxf": XREF("xref_target_grid_r2000.dxf"),
      "other.dxf": XREF("xref_target_grid_r2000.dxf"),
    });
    const m = await http("POST", "/imodels", { name: "run-tasks" });
    expect(m.status).toBe(201);
    const c = await http("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: "run-tasks",
      source: { type: "local", path: source },
      sourceFiles: [
        { path: "host.dxf", connectorType: "DXF" },
        { path: "other.dxf", connectorType: "DXF" },
      ],
    });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    // The first run finds the host's reference while it runs: its task is not in the run's plan.
    const r = await http("POST", `/connections/${c.body.connection.id}/run`);
    expect(r.status).toBe(202);
    runLocation = r.location!;
    const { run } = await waitForRun(runLocation);
    expect(run.result).toBe("Success");
    runId = run.id;
  });

  it("the run record lists every task record of the run, the reference found during the run too", async () => {
    const scanned = await store.tasks.find({ runId }).toArray();
    expect(scanned.map((t) => t.path).sort()).toEqual(["host.dxf", "other.dxf", "xref_target_grid_r2000.dxf"]);
    const run = await store.runs.findOne({ _id: runId });
    expect([...(run?.taskFileIds ?? [])].sort()).toEqual(scanned.map((t) => t.sourceFileId).sort());
    const read = await readRunTasks(store, run!);
    expect(read.map((t) => t._id)).toEqual([...scanned].sort((a, b) => a.index - b.index).map((t) => t._id));
  });

  it("GET of the run shows the same tasks, from the cache of Completed tasks or not, and for a run without the list", async () => {
    const first = await http("GET", runLocation);
    const again = await http("GET", runLocation);
    expect(again.body).toEqual(first.body);
    expect(tasksOf(first.body.run).map((t: any) => t.path)).toEqual([
      "host.dxf",
      "other.dxf",
      "xref_target_grid_r2000.dxf",
    ]);
    // A run recorded by an earlier release has no list: its tasks are found by runId.
    const run = await store.runs.findOne({ _id: runId });
    await store.runs.updateOne({ _id: runId }, { $unset: { taskFileIds: "" } });
    try {
      const older = await http("GET", runLocation);
      expect(older.body).toEqual(first.body);
    } finally {
      await store.runs.updateOne({ _id: runId }, { $set: { taskFileIds: run!.taskFileIds! } });
    }
  });

  it("readRunTasks skips a listed task whose record was never written, and caches only Completed tasks", async () => {
    const run = await store.runs.findOne({ _id: runId });
    const cache = completedTaskCache(10);
    const read = await readRunTasks(store, { _id: runId, taskFileIds: [...run!.taskFileIds!, "never-written"] }, cache);
    expect(read).toHaveLength(3);
    expect(cache.size).toBe(3);
  });
});

describe("a Completed task is never written again", () => {
  it("failTask after the task was recorded keeps the recorded result", async () => {
    const { failTask } = createRunRecordActivities({ store, logger: createLogger("test", "silent") });
    const runId = randomUUID();
    const task = {
      sourceFileId: randomUUID(),
      path: "a.dxf",
      connectorType: "DXF" as const,
      role: "CompositeModel" as const,
      phase: "MasterFile" as const,
      index: 0,
    };
    await store.runs.insertOne({
      _id: runId,
      connectionId: "c",
      iModelId: "m",
      trigger: "manual",
      state: "Executing",
      result: "Undetermined",
      workflowId: "w",
      queuedDateTime: new Date().toISOString(),
      taskFileIds: [task.sourceFileId],
    });
    const error = { code: "Internal", message: "retries exhausted" };
    await failTask({ runId, connectionId: "c", task, error });
    const [failed] = await readRunTasks(store, { _id: runId, taskFileIds: [task.sourceFileId] });
    expect(failed).toMatchObject({ state: "Completed", result: "Error", error });
    await store.tasks.updateOne({ _id: failed._id }, { $set: { result: "Success" }, $unset: { error: "" } });
    await failTask({ runId, connectionId: "c", task, error });
    expect(await store.tasks.findOne({ _id: failed._id })).toMatchObject({ state: "Completed", result: "Success" });
    expect((await store.tasks.findOne({ _id: failed._id }))?.error).toBeUndefined();
  });
});
