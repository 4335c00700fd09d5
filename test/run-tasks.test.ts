/**
 * The tasks of a run are read by their `_id`s (lib/run-tasks.ts; docs/architecture.md "Queries FerretDB serves by _id"):
 * the run record lists them, including a reference file found during the run; a run recorded without that list is
 * read by `runId`; a Completed task is never written again.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRunRecordActivities, taskRecords } from "../activities/run-records";
import { openStore, type Store } from "../lib/db";
import { createLogger } from "../lib/logger";
import {
  completedTaskCache,
  readRunTasks,
  TASK_PAGE_MAX_TASKS,
  taskPageId,
  tasksOfPage,
  writeTaskPages,
} from "../lib/run-tasks";
import type { TaskRecord } from "../domain/model";
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
    await store.runs.updateOne({ _id: runId }, { $unset: { taskFileIds: "", taskPages: "" } });
    try {
      const older = await http("GET", runLocation);
      expect(older.body).toEqual(first.body);
    } finally {
      await store.runs.updateOne(
        { _id: runId },
        { $set: { taskFileIds: run!.taskFileIds!, taskPages: run!.taskPages! } },
      );
    }
  });

  it("the completed run's tasks are also in its task pages, which GET reads", async () => {
    const run = await store.runs.findOne({ _id: runId });
    expect(run?.taskPages).toBe(1);
    const page = await store.taskPages.findOne({ _id: taskPageId(runId, 0) });
    const records = await readRunTasks(store, { _id: runId, taskFileIds: run!.taskFileIds });
    expect(tasksOfPage(page!)).toEqual(records);
    expect(await readRunTasks(store, run!)).toEqual(records);
    // GET answers from the page: a change made to the page only (never done by the service) shows in the answer.
    const changed = records.map((t, i) => (i === 0 ? { ...t, path: "from-the-page.dxf" } : t));
    await writeTaskPages(store, runId, changed);
    try {
      expect(tasksOf((await http("GET", runLocation)).body.run)[0].path).toBe("from-the-page.dxf");
    } finally {
      await writeTaskPages(store, runId, records);
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

describe("a Completed task is never written again, also by finishTask", () => {
  it("finishTask of a task already Completed (a late attempt) changes nothing", async () => {
    const { finishTask } = taskRecords(store);
    const runId = randomUUID();
    const _id = `${runId}:f`;
    const completed: TaskRecord = {
      _id,
      runId,
      connectionId: "c",
      sourceFileId: "f",
      path: "f.ifc",
      connectorType: "IFC",
      role: "CompositeModel",
      phase: "MasterFile",
      index: 0,
      state: "Completed",
      result: "Success",
      warnings: [],
      elements: { inserted: 3, updated: 0, deleted: 0, unchanged: 0 },
      endDateTime: "2026-01-01T00:00:00.000Z",
    };
    await store.tasks.insertOne(completed);
    await finishTask(runId, "f", { result: "Error", error: { code: "TaskFailed", message: "late" } });
    expect(await store.tasks.findOne({ _id })).toEqual(completed);
    // A task not Completed yet is completed.
    await store.tasks.updateOne({ _id }, { $set: { state: "Executing" } });
    await finishTask(runId, "f", { result: "Error", error: { code: "TaskFailed", message: "now" } });
    expect(await store.tasks.findOne({ _id })).toMatchObject({ state: "Completed", result: "Error" });
  });
});

describe("task pages", () => {
  const task = (runId: string, index: number, note = ""): TaskRecord => ({
    _id: `${runId}:f${index}`,
    runId,
    connectionId: "c",
    sourceFileId: `f${index}`,
    path: `f${index}.ifc`,
    connectorType: "IFC",
    role: "CompositeModel",
    phase: "MasterFile",
    index,
    state: "Completed",
    result: "Success",
    warnings: note ? [{ code: "Note", message: note }] : [],
    elements: { inserted: index, updated: 0, deleted: 0, unchanged: 0 },
  });

  it("hold every task in index order, at most TASK_PAGE_MAX_TASKS and 4 MiB per page, the same when written again", async () => {
    const runId = randomUUID();
    // 600 tasks given out of order; three of them of 1.5 MiB each, so that bytes, not the count, end two pages.
    const big = "x".repeat(1.5 * 1024 * 1024);
    const tasks = Array.from({ length: 600 }, (_, i) => task(runId, i, [10, 11, 12].includes(i) ? big : ""));
    const shuffled = [...tasks].reverse();
    const pages = await writeTaskPages(store, runId, shuffled);
    const records = await store.taskPages.find({ runId }).sort({ page: 1 }).toArray();
    expect(records).toHaveLength(pages);
    expect(records.every((p) => tasksOfPage(p).length <= TASK_PAGE_MAX_TASKS)).toBe(true);
    // Tasks 0-11 (two large ones, 3 MiB), 12-261 (one large and 249 small, TASK_PAGE_MAX_TASKS), 262-511, 512-599.
    expect(records.map((p) => tasksOfPage(p).length)).toEqual([12, 250, 250, 88]);
    expect(records.map((p) => p.count)).toEqual([12, 250, 250, 88]);
    const read = await readRunTasks(store, { _id: runId, state: "Completed", taskPages: pages });
    expect(read).toEqual(tasks);
    expect(await writeTaskPages(store, runId, tasks)).toBe(pages);
    expect(await store.taskPages.find({ runId }).sort({ page: 1 }).toArray()).toEqual(records);
  });

  it("are read only for a Completed run that names them; a missing page falls back to the task records", async () => {
    const runId = randomUUID();
    const tasks = Array.from({ length: 3 }, (_, i) => task(runId, i));
    await store.tasks.insertMany(tasks);
    const pages = await writeTaskPages(store, runId, tasks);
    const run = { _id: runId, taskFileIds: tasks.map((t) => t.sourceFileId) };
    await writeTaskPages(
      store,
      runId,
      tasks.map((t, i) => (i === 0 ? { ...t, path: "page.ifc" } : t)),
    );
    expect((await readRunTasks(store, { ...run, state: "Completed", taskPages: pages }))[0].path).toBe("page.ifc");
    expect((await readRunTasks(store, { ...run, state: "Finalizing", taskPages: pages }))[0].path).toBe("f0.ifc");
    await store.taskPages.deleteOne({ _id: taskPageId(runId, 0) });
    expect(await readRunTasks(store, { ...run, state: "Completed", taskPages: pages })).toEqual(tasks);
  });
});
