/**
 * The iModel run queue on its own (docs/architecture.md "One writer per iModel"; docs/product-rules.md "Connections"
 * and "Delete, two modes"), without the HTTP stack: a Temporal dev server of its own (`TestWorkflowEnvironment
 * .createLocal` on the Temporal CLI that scripts/ensure-tools.sh builds) and a worker in this process running the real
 * workflows (`imodelWorkflow`, `syncWorkflow`, `deleteWorkflow`) with stub activities: plain functions that record
 * their calls and that a test can hold open to keep a run executing. Requests go through lib/runs.ts, as the API's do.
 */
import * as path from "node:path";
import type { Client } from "@temporalio/client";
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { TestWorkflowEnvironment } from "@temporalio/testing";
import { DefaultLogger, Runtime, Worker } from "@temporalio/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteWorkflowId, iModelWorkflowId, runWorkflowId } from "../domain/model";
import { SEARCH_ATTRIBUTES } from "../domain/search-attributes";
import { activeRunOf, cancelRuns, requestRun } from "../lib/runs";
import { queueStateQuery, type IModelQueueInput, type RunRequest } from "../workflows/definitions";
import { eventually, ROOT, toolPath } from "./helpers";

/** One call of a stub activity, with the task queue it was sent to. */
interface Call {
  name: string;
  input: any;
  taskQueue: string;
}

const TASKS = [
  { sourceFileId: "f1", path: "a.ifc", connectorType: "IFC", role: "CompositeModel", phase: "MasterFile", index: 0 },
  { sourceFileId: "f2", path: "b.ifc", connectorType: "IFC", role: "CompositeModel", phase: "MasterFile", index: 1 },
];

const calls: Call[] = [];
/** Runs (by runId) whose plan names a worker's own task queue (workflows/worker-pin.ts), and that queue. */
const pinnedRuns = new Map<string, string>();
/** The own task queue of this test's second worker (activities only), which `workerTaskQueue` answers. */
const OWN_QUEUE = `imodel-queue-test-own-${process.pid}`;
/** `<runId>:<sourceFileId>` of files whose stub file activity fails as a file that kept changing while read. */
const changingFiles = new Set<string>();
/** Activities held open, by key (`beginRun:<runId>`, `file:<runId>:<sourceFileId>`). */
const gates = new Map<string, { entered: () => void; released: Promise<void> }>();

/** Holds the activity of `key` open when it runs: `reached` resolves once it runs, `release()` lets it finish. */
function hold(key: string): { reached: Promise<void>; release: () => void } {
  let release!: () => void;
  let entered!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (entered = r));
  gates.set(key, { entered, released });
  return { reached, release };
}

async function pass(key: string): Promise<void> {
  const gate = gates.get(key);
  if (!gate) return;
  gate.entered();
  await gate.released;
}

/** The activities the workflows call, as stubs (same activity type names as the worker's). */
const stubActivities = {
  async recordRunQueued(input: any) {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "recordRunQueued", input });
  },
  async completeRun(input: any) {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "completeRun", input });
    return input.error ? "Error" : input.cancelled ? "Cancelled" : "Success";
  },
  async beginRun(input: any) {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "beginRun", input });
    await pass(`beginRun:${input.runId}`);
    const workerTaskQueue = pinnedRuns.get(input.runId);
    return { ok: true, tasks: TASKS, skipped: [], ...(workerTaskQueue ? { workerTaskQueue } : {}) };
  },
  async syncSourceFile(input: any) {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "syncSourceFile", input });
    await pass(`file:${input.runId}:${input.task.sourceFileId}`);
    if (changingFiles.has(`${input.runId}:${input.task.sourceFileId}`)) {
      // as the file task ends when the file changed during its read on the last attempt
      throw ApplicationFailure.create({
        message: "b.ifc: the file changed while it was read",
        type: "FileChangedDuringRead",
        nonRetryable: true,
      });
    }
    return { result: "Success", references: [] };
  },
  async failTask(input: any) {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "failTask", input });
  },
  async finalizeRun(input: any) {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "finalizeRun", input });
  },
  async beginDeleteJob(input: any) {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "beginDeleteJob", input });
    const workerTaskQueue = pinnedRuns.get(input.runId);
    return { ok: true, tasks: [TASKS[0]], wholeConnection: false, ...(workerTaskQueue ? { workerTaskQueue } : {}) };
  },
  async removeFileData(input: any) {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "removeFileData", input });
  },
  async workerTaskQueue() {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "workerTaskQueue", input: {} });
    return OWN_QUEUE;
  },
  async finishDeleteJob(input: any) {
    calls.push({ taskQueue: Context.current().info.taskQueue, name: "finishDeleteJob", input });
    return false;
  },
};

/** The calls of stub activity `name` for the given runs, in call order, as `name runId`. */
const callsOf = (runIds: string[], ...names: string[]) =>
  calls
    .filter((c) => names.includes(c.name) && runIds.includes(c.input.runId))
    .map((c) => `${c.name} ${c.input.runId}`);

/** Waits for the run's record to be completed; returns the `completeRun` input. */
const completed = (runId: string) =>
  eventually(
    `run ${runId} completed`,
    async () => calls.find((c) => c.name === "completeRun" && c.input.runId === runId)?.input,
    60_000,
    50,
  );

const reason = { code: "RunCancelledByUser", message: "cancelled by the test" };

describe("iModel run queue (imodelWorkflow with stub activities on a Temporal dev server of its own)", () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let ownWorker: Worker;
  let running: Promise<void>;
  let client: Client;
  const taskQueue = `imodel-queue-test-${process.pid}`;
  let n = 0;
  /** A fresh iModel id for a test, so tests never share a queue. */
  const newIModel = () => `m-${Date.now()}-${++n}`;

  /** Asks the iModel's queue for a run, as the API does (lib/runs.ts; starts the queue on first use). */
  const ask = (iModelId: string, connectionId: string, runId: string, extra: Partial<RunRequest> = {}) => {
    const { trigger = "manual", ...recorded } = extra;
    return requestRun(client, taskQueue, { _id: connectionId, iModelId }, trigger, runId, 20_000, recorded);
  };
  const queueOf = (iModelId: string) => client.workflow.getHandle(iModelWorkflowId(iModelId)).query(queueStateQuery);

  beforeAll(async () => {
    try {
      Runtime.install({ logger: new DefaultLogger("WARN") });
    } catch {
      /* already installed */
    }
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: "existing-path", path: toolPath("temporal", "TEMPORAL_BIN") },
        searchAttributes: Object.values(SEARCH_ATTRIBUTES),
      },
    });
    client = env.client;
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowsPath: path.join(ROOT, "workflows", "index.ts"),
      activities: stubActivities,
    });
    // A second worker polling only its own queue, as every worker process does (activities/worker-queue.ts).
    ownWorker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: OWN_QUEUE,
      activities: stubActivities,
    });
    running = Promise.all([worker.run(), ownWorker.run()]).then(() => undefined);
  }, 180_000);

  afterAll(async () => {
    worker?.shutdown();
    ownWorker?.shutdown();
    await running?.catch(() => undefined);
    await env?.teardown();
  }, 60_000);

  it("executes the runs of all connections one at a time, in the order they were asked for", async () => {
    const m = newIModel();
    const first = hold("beginRun:A");
    expect(await ask(m, "c1", "A")).toEqual({ runId: "A", created: true });
    await first.reached;
    expect(await ask(m, "c2", "B")).toEqual({ runId: "B", created: true });
    expect(await ask(m, "c3", "C")).toEqual({ runId: "C", created: true });
    const state = await queueOf(m);
    expect(state.active?.runId).toBe("A");
    expect(state.queue.map((r) => r.runId)).toEqual(["B", "C"]);
    expect(callsOf(["B", "C"], "beginRun")).toEqual([]); // nothing else starts while A executes
    first.release();
    await completed("C");
    expect(callsOf(["A", "B", "C"], "beginRun", "finalizeRun", "completeRun")).toEqual([
      "beginRun A",
      "finalizeRun A",
      "completeRun A",
      "beginRun B",
      "finalizeRun B",
      "completeRun B",
      "beginRun C",
      "finalizeRun C",
      "completeRun C",
    ]);
    expect(callsOf(["A", "B", "C"], "syncSourceFile")).toHaveLength(6);
    expect((await completed("A")).cancelled).toBeUndefined();
  });

  it("answers a second request for a connection with its active run (created: false) until it is completed", async () => {
    const m = newIModel();
    const first = hold("beginRun:D");
    expect(await ask(m, "c1", "D")).toEqual({ runId: "D", created: true });
    await first.reached;
    expect(await ask(m, "c1", "D2")).toEqual({ runId: "D", created: false }); // executing
    expect(await ask(m, "c2", "E")).toEqual({ runId: "E", created: true });
    expect(await ask(m, "c2", "E2", { trigger: "schedule" })).toEqual({ runId: "E", created: false }); // queued
    expect(await activeRunOf(client, { _id: "c1", iModelId: m })).toBe("D");
    expect(await activeRunOf(client, { _id: "c2", iModelId: m })).toBe("E");
    first.release();
    await completed("E");
    expect(await activeRunOf(client, { _id: "c1", iModelId: m })).toBeUndefined();
    expect(await ask(m, "c1", "D3")).toEqual({ runId: "D3", created: true });
    await completed("D3");
    expect(callsOf(["D", "D2", "D3", "E", "E2"], "recordRunQueued")).toEqual([
      "recordRunQueued D",
      "recordRunQueued E",
      "recordRunQueued D3",
    ]);
  });

  it("cancels a queued run at once (completed Cancelled, never executed)", async () => {
    const m = newIModel();
    const first = hold("beginRun:F");
    await ask(m, "c1", "F");
    await first.reached;
    expect(await ask(m, "c2", "G")).toEqual({ runId: "G", created: true });
    expect(await cancelRuns(client, { _id: "c2", iModelId: m }, { reason })).toEqual({
      cancelled: ["G"],
      notCancellable: [],
    });
    // Completed while F still executes.
    expect(callsOf(["G"], "completeRun")).toEqual(["completeRun G"]);
    expect(await completed("G")).toEqual({ runId: "G", cancelled: reason });
    expect((await queueOf(m)).queue).toEqual([]);
    first.release();
    await completed("F");
    expect(callsOf(["G"], "beginRun", "syncSourceFile")).toEqual([]);
    await expect(client.workflow.getHandle(runWorkflowId("c2", "G")).describe()).rejects.toThrow(/not found/i);
  });

  it("cancels an executing run: the cancellation reaches its child, the file being written finishes, the run completes Cancelled", async () => {
    const m = newIModel();
    const file = hold("file:H:f1");
    await ask(m, "c1", "H");
    await file.reached;
    expect(await cancelRuns(client, { _id: "c1", iModelId: m }, { runId: "H", reason })).toEqual({
      cancelled: ["H"],
      notCancellable: [],
    });
    const child = client.workflow.getHandle(runWorkflowId("c1", "H"));
    await eventually("the child's cancellation request", async () =>
      (await child.fetchHistory()).events?.some((e) => e.workflowExecutionCancelRequestedEventAttributes),
    );
    expect(callsOf(["H"], "completeRun")).toEqual([]); // not before its file is done
    file.release();
    expect(await completed("H")).toEqual({ runId: "H", cancelled: reason });
    expect(callsOf(["H"], "syncSourceFile", "finalizeRun")).toEqual(["syncSourceFile H"]); // f2 never started
    expect(await child.result()).toEqual({ cancelled: { code: "RunCancelled", message: "the run was cancelled" } });
  });

  it("queues delete jobs behind an active sync, answers a twin delete with the same job, never cancels one", async () => {
    const m = newIModel();
    const sync = hold("beginRun:S");
    await ask(m, "c1", "S");
    await sync.reached;
    const files = { kind: "delete" as const, trigger: "mapping-change" as const, sourceFileIds: ["f1"] };
    expect(await ask(m, "c1", "X", files)).toEqual({ runId: "X", created: true });
    expect(await ask(m, "c1", "X2", files)).toEqual({ runId: "X", created: false }); // its twin
    expect(await ask(m, "c1", "S2")).toEqual({ runId: "X", created: false }); // the newest active run
    expect(await cancelRuns(client, { _id: "c1", iModelId: m }, { runId: "X", reason })).toEqual({
      cancelled: [],
      notCancellable: ["X"],
    });
    sync.release();
    expect(await completed("X")).toEqual({ runId: "X" });
    expect(callsOf(["X"], "beginDeleteJob", "removeFileData", "finishDeleteJob", "finalizeRun")).toEqual([
      "beginDeleteJob X",
      "removeFileData X",
      "finishDeleteJob X",
      "finalizeRun X",
    ]);
    expect((await client.workflow.getHandle(deleteWorkflowId("c1", "X")).describe()).type).toBe("deleteWorkflow");
    expect(callsOf(["X2", "S2"], "recordRunQueued")).toEqual([]);
  });

  it("a delete job with cancelSyncs cancels the connection's executing sync first", async () => {
    const m = newIModel();
    const sync = hold("beginRun:T");
    await ask(m, "c1", "T");
    await sync.reached;
    expect(await ask(m, "c1", "Y", { kind: "delete", trigger: "delete", cancelSyncs: true })).toEqual({
      runId: "Y",
      created: true,
    });
    sync.release();
    expect(await completed("T")).toEqual({
      runId: "T",
      cancelled: { code: "ConnectionDeleted", message: "the connection was deleted while the run was active" },
    });
    await completed("Y");
    expect(callsOf(["T"], "syncSourceFile")).toEqual([]);
    expect(callsOf(["T", "Y"], "beginRun", "beginDeleteJob", "completeRun")).toEqual([
      "beginRun T",
      "completeRun T",
      "beginDeleteJob Y",
      "completeRun Y",
    ]);
  });

  it("a run asked with confirmDeletions records it and passes it to every file; a file that kept changing ends FileChangedDuringRead", async () => {
    const m = newIModel();
    changingFiles.add("CD:f2");
    expect(await ask(m, "c1", "CD", { confirmDeletions: true })).toEqual({ runId: "CD", created: true });
    await completed("CD");
    expect(calls.find((c) => c.name === "recordRunQueued" && c.input.runId === "CD")?.input).toMatchObject({
      confirmDeletions: true,
    });
    const files = calls.filter((c) => c.name === "syncSourceFile" && c.input.runId === "CD");
    expect(files.map((c) => c.input.confirmDeletions)).toEqual([true, true]);
    const failed = calls.find((c) => c.name === "failTask" && c.input.runId === "CD")?.input;
    expect(failed).toMatchObject({
      task: { sourceFileId: "f2" },
      error: { code: "FileChangedDuringRead", message: "b.ifc: the file changed while it was read", target: "b.ifc" },
    });
    // without it, nothing is recorded or passed
    expect(await ask(m, "c1", "ND")).toEqual({ runId: "ND", created: true });
    await completed("ND");
    expect(calls.find((c) => c.name === "recordRunQueued" && c.input.runId === "ND")?.input).not.toHaveProperty(
      "confirmDeletions",
    );
    expect(
      calls.filter((c) => c.name === "syncSourceFile" && c.input.runId === "ND").map((c) => c.input.confirmDeletions),
    ).toEqual([undefined, undefined]);
  });

  it("sends a run's file activities to the worker that planned it; a delete job's removals too; unpinned runs stay on the shared queue", async () => {
    const m = newIModel();
    pinnedRuns.set("P1", OWN_QUEUE);
    pinnedRuns.set("PD", OWN_QUEUE);
    expect(await ask(m, "c1", "P1")).toEqual({ runId: "P1", created: true });
    await completed("P1");
    expect(calls.filter((c) => c.input.runId === "P1").map((c) => `${c.name} ${c.taskQueue}`)).toEqual([
      `recordRunQueued ${taskQueue}`,
      `beginRun ${taskQueue}`,
      `syncSourceFile ${OWN_QUEUE}`,
      `syncSourceFile ${OWN_QUEUE}`,
      `finalizeRun ${taskQueue}`,
      `completeRun ${taskQueue}`,
    ]);
    expect(await ask(m, "c1", "PD", { kind: "delete" })).toEqual({ runId: "PD", created: true });
    await completed("PD");
    expect(calls.filter((c) => c.name === "removeFileData" && c.input.runId === "PD").map((c) => c.taskQueue)).toEqual([
      OWN_QUEUE,
    ]);
    expect(await ask(m, "c1", "U1")).toEqual({ runId: "U1", created: true });
    await completed("U1");
    expect(calls.filter((c) => c.name === "syncSourceFile" && c.input.runId === "U1").map((c) => c.taskQueue)).toEqual([
      taskQueue,
      taskQueue,
    ]);
  });

  it("hands a run over to a live worker when its worker does not start the file activity in time (dead worker)", async () => {
    const m = newIModel();
    // planned by a worker that is gone: nobody polls its queue
    pinnedRuns.set("H1", `${OWN_QUEUE}-gone`);
    const before = calls.filter((c) => c.name === "workerTaskQueue").length;
    expect(await ask(m, "c1", "H1")).toEqual({ runId: "H1", created: true });
    const done = await completed("H1");
    expect(done.error).toBeUndefined();
    expect(done.cancelled).toBeUndefined();
    // the first file waited out the schedule-to-start timeout, then both went to the live worker; nothing failed
    expect(calls.filter((c) => c.name === "syncSourceFile" && c.input.runId === "H1").map((c) => c.taskQueue)).toEqual([
      OWN_QUEUE,
      OWN_QUEUE,
    ]);
    expect(calls.filter((c) => c.name === "workerTaskQueue").length - before).toBe(1);
    expect(calls.filter((c) => c.name === "failTask" && c.input.runId === "H1")).toEqual([]);
  }, 120_000);

  it("continues as new when idle with a long history, carrying its queue and threshold", async () => {
    const m = newIModel();
    const handle = client.workflow.getHandle(iModelWorkflowId(m));
    // A queue carried over by continue-as-new: its run was recorded before and executes first.
    const carried = hold("beginRun:Q");
    const input: IModelQueueInput = {
      iModelId: m,
      queue: [{ runId: "Q", connectionId: "c1", trigger: "manual" }],
      continueAsNewAfterEvents: 10,
    };
    const started = await client.workflow.start("imodelWorkflow", {
      workflowId: iModelWorkflowId(m),
      taskQueue,
      args: [input],
    });
    await carried.reached;
    expect(await ask(m, "c1", "Q2")).toEqual({ runId: "Q", created: false });
    carried.release();
    await completed("Q");
    const second = await eventually("continue-as-new", async () => {
      const d = await handle.describe();
      return d.runId !== started.firstExecutionRunId ? d.runId : undefined;
    });
    const history = await client.workflow.getHandle(iModelWorkflowId(m), started.firstExecutionRunId).fetchHistory();
    const last = history.events![history.events!.length - 1];
    const payload = last.workflowExecutionContinuedAsNewEventAttributes?.input?.payloads?.[0]?.data;
    expect(payload && JSON.parse(Buffer.from(payload).toString("utf8"))).toEqual({
      iModelId: m,
      queue: [],
      continueAsNewAfterEvents: 10,
    });
    expect(callsOf(["Q", "Q2"], "recordRunQueued")).toEqual([]);
    // The new run answers requests and continues as new again with the carried threshold.
    expect(await ask(m, "c1", "Q3")).toEqual({ runId: "Q3", created: true });
    await completed("Q3");
    await eventually("a second continue-as-new", async () => (await handle.describe()).runId !== second);
  });
});
