/**
 * Costs that grow linearly, a phase of the benchmark (scripts/bench.ts): what one synchronized file costs when the
 * corpus is ten times larger, how large a run's Temporal history gets per file, and how long `GET` of a run of 2,000
 * tasks takes.
 *
 * The product allows at most 250 composite models per iModel across its connections (docs/product-rules.md
 * "Limits"), so the larger corpus is spread over several iModels of one connection each; a run reaches 2,000 tasks
 * only through reference files. The run `GET` is therefore measured on a run record of 2,000 tasks seeded from a real
 * run's records, and the history of such a run is projected from the real runs' events per file (a run's history is
 * a fixed part plus one activity per file: workflows/sync.ts).
 */
import { performance } from "node:perf_hooks";
import { Connection, WorkflowClient } from "@temporalio/client";
import { MongoClient, type Document } from "mongodb";
import { taskId, type TaskRecord } from "../domain/model";
import { writeTaskPages } from "../lib/run-tasks";

/**
 * Temporal's default limits of one workflow history (the server refuses to go on past them): events and bytes of the
 * history (`limit.historyCount.error`, `limit.historySize.error`), and bytes of one event's payloads
 * (`limit.blobSize.error`).
 */
export const HISTORY_LIMIT_EVENTS = 51_200;
export const HISTORY_LIMIT_BYTES = 50 * 1024 * 1024;
export const PAYLOAD_LIMIT_BYTES = 2 * 1024 * 1024;

export interface HistoryMeasure {
  /** Events in the workflow's history. */
  events: number;
  /** Size of the history in bytes, as the server reports it (absent on servers that do not). */
  bytes?: number;
  /** The largest payload bytes of one event (the plan: `beginRun`'s result names every planned file). */
  largestEventPayloadBytes: number;
}

/** The bytes of the payloads (binary values) anywhere inside a decoded history event. */
function payloadBytes(v: unknown): number {
  if (v instanceof Uint8Array) return v.byteLength;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + payloadBytes(x), 0);
  if (v && typeof v === "object") return Object.values(v).reduce((n: number, x) => n + payloadBytes(x), 0);
  return 0;
}

/**
 * The history of a run's workflow (`sync/<connectionId>/<runId>`, workflows/sync.ts) as the Temporal server describes it.
 * @param address Temporal frontend `host:port`.
 * @throws when the server is unreachable or the workflow does not exist.
 */
export async function historyOf(address: string, workflowIds: string[]): Promise<HistoryMeasure[]> {
  const connection = await Connection.connect({ address });
  try {
    const client = new WorkflowClient({ connection, namespace: "default" });
    const out: HistoryMeasure[] = [];
    for (const id of workflowIds) {
      const handle = client.getHandle(id);
      const d = await handle.describe();
      const events = (await handle.fetchHistory()).events ?? [];
      out.push({
        events: d.historyLength,
        ...(d.historySize !== undefined ? { bytes: d.historySize } : {}),
        largestEventPayloadBytes: Math.max(0, ...events.map(payloadBytes)),
      });
    }
    return out;
  } finally {
    await connection.close();
  }
}

/**
 * Seeds a run of `tasks` tasks straight into the database: a clone of a real, completed run record and of its task
 * records, repeated with source file ids suffixed `~k` until there are `tasks` of them; with `pages`, also its task
 * pages, written as `completeRun` writes them (lib/run-tasks.ts `writeTaskPages`), without them as a run completed by
 * an earlier release. Its `_id` is `<runId>-x<tasks>` (`-unpaged` appended without pages).
 * @returns the new run's id (same connection as the template run).
 * @throws when the template run or its task records are missing.
 */
export async function seedLongRun(mongoUri: string, runId: string, tasks: number, pages: boolean): Promise<string> {
  const client = new MongoClient(mongoUri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const db = client.db();
    const run = await db.collection("runs").findOne({ _id: runId as never });
    if (!run) throw new Error(`no run record ${runId} to clone`);
    const fileIds = run.taskFileIds as string[] | undefined;
    if (!fileIds?.length) throw new Error(`run ${runId} lists no tasks`);
    const templates: Document[] = [];
    for (const id of fileIds) {
      const t = await db.collection("tasks").findOne({ _id: taskId(runId, id) as never });
      if (!t) throw new Error(`no task record ${taskId(runId, id)}`);
      templates.push(t);
    }
    const newRunId = `${runId}-x${tasks}${pages ? "" : "-unpaged"}`;
    const newFileIds: string[] = [];
    const docs: Document[] = [];
    for (let i = 0; i < tasks; i++) {
      const t = templates[i % templates.length];
      const fileId = `${t.sourceFileId}~${Math.floor(i / templates.length)}`;
      newFileIds.push(fileId);
      docs.push({ ...t, _id: taskId(newRunId, fileId), runId: newRunId, sourceFileId: fileId, index: i });
    }
    for (let i = 0; i < docs.length; i += 1000)
      await db.collection("tasks").insertMany(docs.slice(i, i + 1000), { ordered: false });
    const { taskPages: _, ...completed } = run;
    const taskPages = pages
      ? await writeTaskPages({ taskPages: db.collection("taskPages") }, newRunId, docs as TaskRecord[])
      : undefined;
    await db.collection("runs").insertOne({
      ...completed,
      _id: newRunId as never,
      taskFileIds: newFileIds,
      ...(taskPages === undefined ? {} : { taskPages }),
    });
    return newRunId;
  } finally {
    await client.close();
  }
}

/**
 * Times GETs of one path: the first (nothing of it cached by the API) and the median of `repeat` more.
 * @returns milliseconds, wall time of this process.
 * @throws when an answer is not 200.
 */
export async function timeGets(
  get: (path: string) => Promise<{ status: number }>,
  path: string,
  repeat = 5,
): Promise<{ firstMs: number; medianMs: number }> {
  const once = async () => {
    const t = performance.now();
    const r = await get(path);
    if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status}`);
    return performance.now() - t;
  };
  const firstMs = await once();
  const rest: number[] = [];
  for (let i = 0; i < repeat; i++) rest.push(await once());
  rest.sort((a, b) => a - b);
  return { firstMs, medianMs: rest[Math.floor(rest.length / 2)] };
}
