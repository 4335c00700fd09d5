/**
 * Run and task records (MongoDB `runs`, `tasks`): the activities that record a run's life from Queued to Completed,
 * shared by sync runs and delete jobs, and the task record helpers the file and delete activities write with.
 */
import {
  aggregateResult,
  taskId,
  ZERO_COUNTS,
  type ErrorInfo,
  type RunKind,
  type RunRecord,
  type RunResult,
  type RunTrigger,
  type TaskRecord,
} from "../domain/model";
import { DEFAULT_CHANGE_LISTS_KEPT } from "../domain/change-lists";
import { pruneChangeLists } from "../lib/change-lists";
import { listNewRun } from "../lib/id-lists";
import { readRunTasks, writeTaskPages } from "../lib/run-tasks";
import { updateConnection } from "../lib/connection-writes";
import type { Store } from "../lib/db";
import { activityLogger, type Logger } from "../lib/logger";
import type { RunEvents } from "./run-events";

export { fileStateId, taskId } from "../domain/model";

export interface RunRecordDeps {
  store: Store;
  logger: Logger;
  /** Runs per connection whose change list is kept (CHANGE_LISTS_KEPT); default `DEFAULT_CHANGE_LISTS_KEPT`. */
  changeListsKept?: number;
  /** What follows a completed run: metrics, webhook events, failure notices (activities/run-events.ts). */
  events?: RunEvents;
}

/** A file a run (or delete job) handles, in order: the identifying part of its task record. */
export type PlannedTask = Pick<
  TaskRecord,
  "sourceFileId" | "path" | "connectorType" | "role" | "phase" | "referencedBy" | "index"
>;

const now = () => new Date().toISOString();

/**
 * What a sync run's or delete job's workflow returns (its result in the Temporal UI, README.md "Temporal UI"): the
 * result its tasks give, each file with its result, error code and element counts, and the totals.
 */
export interface RunSummary {
  result: RunResult;
  files: {
    path: string;
    phase: TaskRecord["phase"];
    result: RunResult;
    error?: string;
    elements: TaskRecord["elements"];
  }[];
  elements: TaskRecord["elements"];
}

/** The {@link RunSummary} of a run's tasks. */
export function runSummary(tasks: TaskRecord[]): RunSummary {
  const sorted = [...tasks].sort((a, b) => a.index - b.index);
  const elements = { ...ZERO_COUNTS };
  for (const t of sorted)
    for (const k of ["inserted", "updated", "deleted", "unchanged"] as const) elements[k] += t.elements[k];
  return {
    result: aggregateResult(sorted.map((t) => t.result)),
    files: sorted.map((t) => ({
      path: t.path,
      phase: t.phase,
      result: t.result,
      ...(t.error ? { error: t.error.code } : {}),
      elements: t.elements,
    })),
    elements,
  };
}

/**
 * Adds source file ids to a run's list of tasks (`RunRecord.taskFileIds`, read by lib/run-tasks.ts), after their task
 * records exist. Idempotent (`$addToSet`).
 */
export async function listRunTasks(store: Store, runId: string, sourceFileIds: string[]): Promise<void> {
  if (sourceFileIds.length === 0) return;
  await store.runs.updateOne({ _id: runId }, { $addToSet: { taskFileIds: { $each: sourceFileIds } } });
}

/** Writing task records: shared by the sync and the delete activities. */
export function taskRecords(store: Store) {
  /**
   * Completes a task (state Completed, end time, duration from its start) with `fields` (result, counts...); a
   * `reason` it had while it waited to retry is removed unless `fields` gives one. A task already Completed is left as
   * it is (a Completed task is never written again, lib/run-tasks.ts: e.g. an attempt that timed out but went on after
   * another attempt completed the task, or after the run completed and its task pages were written).
   * @param startDateTime the task's start (ISO 8601, UTC) when the caller knows it; else it is read from the record.
   */
  async function finishTask(
    runId: string,
    sourceFileId: string,
    fields: Partial<TaskRecord>,
    startDateTime?: string,
  ): Promise<void> {
    // Read by `_id` then write: a filter on `state` beside `_id` would scan the collection on FerretDB
    // (docs/architecture.md "Queries FerretDB serves by _id").
    const recorded = await store.tasks.findOne(
      { _id: taskId(runId, sourceFileId) },
      { projection: { state: 1, startDateTime: 1 } },
    );
    if (recorded?.state === "Completed") return;
    const started = startDateTime ?? recorded?.startDateTime;
    const end = new Date();
    const start = started ? Date.parse(started) : end.getTime();
    await store.tasks.updateOne(
      { _id: taskId(runId, sourceFileId) },
      {
        $set: { state: "Completed", endDateTime: end.toISOString(), durationMs: end.getTime() - start, ...fields },
        // the reason a task waited to retry is not the reason of its end
        ...(fields.reason ? {} : { $unset: { reason: "" as const } }),
      },
    );
  }

  /** A NotStarted task record (without `_id`). */
  function newTask(runId: string, connectionId: string, t: PlannedTask): Omit<TaskRecord, "_id"> {
    return {
      runId,
      connectionId,
      sourceFileId: t.sourceFileId,
      path: t.path,
      connectorType: t.connectorType,
      role: t.role,
      phase: t.phase,
      ...(t.referencedBy ? { referencedBy: t.referencedBy } : {}),
      index: t.index,
      state: "NotStarted",
      result: "Undetermined",
      warnings: [],
      elements: { ...ZERO_COUNTS },
    };
  }

  /**
   * Creates the task record if missing (idempotent).
   * @returns the record as it is now (one round trip).
   */
  async function ensureTask(runId: string, connectionId: string, t: PlannedTask): Promise<TaskRecord> {
    // Every composite model of a run is listed when the run is planned (beginRun, startDeleteJob); a reference file can
    // be found during the run, so it is listed here, before its record exists (a crash in between leaves a listed id
    // without a record, which readers skip, never a record nobody reads).
    if (t.role !== "CompositeModel") await listRunTasks(store, runId, [t.sourceFileId]);
    const record = await store.tasks.findOneAndUpdate(
      { _id: taskId(runId, t.sourceFileId) },
      { $setOnInsert: newTask(runId, connectionId, t) },
      { upsert: true, returnDocument: "after" },
    );
    if (!record) throw new Error(`task ${taskId(runId, t.sourceFileId)}: no record after its upsert`);
    return record;
  }

  return { finishTask, newTask, ensureTask };
}

/**
 * The run record activities (activity type names `recordRunQueued`, `finalizeRun`, `failTask`, `completeRun`, as in
 * the recorded workflow histories): called by the iModel queue, sync runs and delete jobs.
 */
export function createRunRecordActivities({
  store,
  logger,
  changeListsKept = DEFAULT_CHANGE_LISTS_KEPT,
  events,
}: RunRecordDeps) {
  const log = (extra: Record<string, unknown> = {}): Logger => activityLogger(logger, extra);
  const { finishTask, ensureTask } = taskRecords(store);

  return {
    /** Records a newly queued run (idempotent) and links it from its connection as the last run. */
    async recordRunQueued(input: {
      runId: string;
      connectionId: string;
      iModelId: string;
      trigger: RunTrigger;
      workflowId: string;
      ownerId?: string;
      scheduledFor?: RunRecord["scheduledFor"];
      kind?: RunKind;
      sourceFileIds?: string[];
      confirmDeletions?: boolean;
      force?: boolean;
      retryOf?: string;
      requestedBy?: string;
    }): Promise<void> {
      await listNewRun(store, input.connectionId, input.runId);
      await store.runs.updateOne(
        { _id: input.runId },
        {
          $setOnInsert: {
            connectionId: input.connectionId,
            iModelId: input.iModelId,
            trigger: input.trigger,
            workflowId: input.workflowId,
            state: "Queued",
            result: "Undetermined",
            queuedDateTime: now(),
            ...(input.ownerId ? { ownerId: input.ownerId } : {}),
            ...(input.scheduledFor ? { scheduledFor: input.scheduledFor } : {}),
            ...(input.kind === "delete" ? { kind: input.kind } : {}),
            ...(input.sourceFileIds ? { sourceFileIds: input.sourceFileIds } : {}),
            ...(input.confirmDeletions ? { confirmDeletions: true } : {}),
            ...(input.force ? { force: true } : {}),
            ...(input.retryOf ? { retryOf: input.retryOf } : {}),
            ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
          },
        },
        { upsert: true },
      );
      await updateConnection(store, input.connectionId, () => ({ $set: { lastRunId: input.runId } }));
      log({ runId: input.runId, connectionId: input.connectionId }).info("run queued");
    },

    /**
     * Marks a run Finalizing: every task is done; its iModel queue completes it once the connection is free.
     * @returns the run's summary (its workflow's result; releases before it returned nothing).
     */
    async finalizeRun(input: { runId: string }): Promise<RunSummary> {
      const run = await store.runs.findOneAndUpdate(
        { _id: input.runId },
        { $set: { state: "Finalizing" } },
        { returnDocument: "after" }, // FerretDB 1.x refuses a projection in findAndModify
      );
      return runSummary(await readRunTasks(store, { _id: input.runId, taskFileIds: run?.taskFileIds }));
    },

    /** Completes a task with result Error after its activity gave up (retries exhausted). */
    async failTask(input: { runId: string; connectionId: string; task: PlannedTask; error: ErrorInfo }): Promise<void> {
      // A task already Completed keeps the result it recorded (a Completed task is never written again: lib/run-tasks.ts).
      if ((await ensureTask(input.runId, input.connectionId, input.task)).state === "Completed") return;
      await finishTask(input.runId, input.task.sourceFileId, { result: "Error", error: input.error });
    },

    /**
     * Completes the run: result from its tasks (see `aggregateResult`), or Error when `error` is given, or Cancelled
     * when `cancelled` is given (its reason is recorded). Tasks that never ran are completed as Skipped, or Cancelled
     * when the run was cancelled. The run's task records are written together as task pages before the run is marked
     * Completed (lib/run-tasks.ts `writeTaskPages`). Then the change lists of the connection's runs beyond the newest `changeListsKept`
     * are pruned (lib/change-lists.ts; a failure there is logged, the next completion prunes them), and what follows a
     * run's end happens (activities/run-events.ts: metrics, webhook events, failure notices). Idempotent.
     */
    async completeRun(input: { runId: string; error?: ErrorInfo; cancelled?: ErrorInfo }): Promise<RunResult> {
      const before = await store.runs.findOne({ _id: input.runId }, { projection: { state: 1, taskFileIds: 1 } });
      const leftOver: RunResult = input.cancelled ? "Cancelled" : "Skipped";
      const left: Partial<TaskRecord> = {
        state: "Completed",
        result: leftOver,
        endDateTime: now(),
        ...(input.cancelled ? { reason: input.cancelled } : {}),
      };
      // Tasks read by _id (lib/run-tasks.ts); those not Completed are completed one by one, by _id.
      const tasks = await readRunTasks(store, { _id: input.runId, taskFileIds: before?.taskFileIds });
      for (const t of tasks.filter((x) => x.state !== "Completed")) {
        await store.tasks.updateOne({ _id: t._id }, { $set: left });
        Object.assign(t, left);
      }
      const result: RunResult = input.error
        ? "Error"
        : input.cancelled
          ? "Cancelled"
          : aggregateResult(tasks.map((t) => t.result));
      const error =
        input.error ??
        (result === "Error" || result === "PartialSuccess"
          ? {
              code: result === "Error" ? "AllTasksFailed" : "SomeTasksFailed",
              message: `${tasks.filter((t) => t.result === "Error").length} of ${tasks.length} files failed`,
            }
          : undefined);
      // Every task is Completed now and never written again: its records are also written together, read by GET of
      // the run from now on (lib/run-tasks.ts `writeTaskPages`).
      const taskPages = await writeTaskPages(store, input.runId, tasks);
      await store.runs.updateOne(
        { _id: input.runId },
        {
          $set: {
            state: "Completed",
            result,
            taskPages,
            endDateTime: now(),
            ...(error ? { error } : {}),
            ...(input.cancelled ? { reason: input.cancelled } : {}),
          },
        },
      );
      log({ runId: input.runId }).info({ result }, "run completed");
      const run = await store.runs.findOne({ _id: input.runId }, { projection: { connectionId: 1 } });
      if (run)
        await pruneChangeLists(store, run.connectionId, changeListsKept).then(
          (pruned) => {
            if (pruned.length > 0)
              log({ runId: input.runId, connectionId: run.connectionId }).info({ pruned }, "change lists pruned");
          },
          (err: Error) =>
            log({ runId: input.runId }).warn({ err: err.message }, "change lists not pruned now; the next run does"),
        );
      await events?.runEnded(input.runId, before?.state !== "Completed");
      return result;
    },
  };
}

export type RunRecordActivities = ReturnType<typeof createRunRecordActivities>;
