/**
 * Activities: every side effect of a run (records in MongoDB, reading source files, writing the iModel).
 * Created with their dependencies so the worker and tests can wire them.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Context } from "@temporalio/activity";
import {
  aggregateResult,
  ZERO_COUNTS,
  type ConnectorType,
  type ErrorInfo,
  type RunResult,
  type RunTrigger,
  type SourceFileRole,
  type TaskRecord,
} from "../domain/model";
import { sourceFileAbsolutePath } from "../domain/paths";
import type { Store } from "../lib/db";
import type { Logger } from "../lib/logger";
import { CONNECTORS } from "./connectors";
import { SourceFileError } from "./connectors/types";
import { ensureIModel, writeSourceFile } from "./imodel/writer";

export interface ActivityDeps {
  store: Store;
  logger: Logger;
}

/** A file the run will synchronize, in order. */
export interface PlannedTask {
  sourceFileId: string;
  path: string;
  connectorType: ConnectorType;
  role: SourceFileRole;
  index: number;
}

export type RunPlan = { ok: true; tasks: PlannedTask[] } | { ok: false; error: ErrorInfo };

const now = () => new Date().toISOString();

/** `_id` of a task record. */
export const taskId = (runId: string, sourceFileId: string) => `${runId}:${sourceFileId}`;

/** SHA-256 hex of a file's content (content, not dates or headers, decides whether a file changed). */
export async function hashFile(absolutePath: string): Promise<string> {
  const hash = createHash("sha256");
  const handle = await fs.open(absolutePath, "r");
  try {
    for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer);
  } finally {
    await handle.close().catch(() => undefined);
  }
  return hash.digest("hex");
}

export function createActivities({ store, logger }: ActivityDeps) {
  function log(extra: Record<string, unknown> = {}): Logger {
    try {
      const info = Context.current().info;
      return logger.child({ workflowId: info.workflowExecution.workflowId, activity: info.activityType, attempt: info.attempt, ...extra });
    } catch {
      return logger.child(extra);
    }
  }

  async function finishTask(runId: string, sourceFileId: string, fields: Partial<TaskRecord>): Promise<void> {
    const record = await store.tasks.findOne({ _id: taskId(runId, sourceFileId) });
    const end = new Date();
    const start = record?.startDateTime ? Date.parse(record.startDateTime) : end.getTime();
    await store.tasks.updateOne(
      { _id: taskId(runId, sourceFileId) },
      { $set: { state: "Completed", endDateTime: end.toISOString(), durationMs: end.getTime() - start, ...fields } },
    );
  }

  return {
    /** Records a newly queued run (idempotent) and links it from its connection as the last run. */
    async recordRunQueued(input: { runId: string; connectionId: string; iModelId: string; trigger: RunTrigger; workflowId: string }): Promise<void> {
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
          },
        },
        { upsert: true },
      );
      await store.connections.updateOne({ _id: input.connectionId }, { $set: { lastRunId: input.runId } });
      log({ runId: input.runId, connectionId: input.connectionId }).info("run queued");
    },

    /** Marks the run Executing and creates one NotStarted task per mapped file (idempotent). */
    async beginRun(input: { runId: string }): Promise<RunPlan> {
      const run = await store.runs.findOne({ _id: input.runId });
      if (!run) return { ok: false, error: { code: "RunNotFound", message: `run ${input.runId} has no record` } };
      const connection = await store.connections.findOne({ _id: run.connectionId });
      if (!connection || connection.status !== "Active") {
        return { ok: false, error: { code: "ConnectionNotFound", message: `connection ${run.connectionId} is gone or deleted` } };
      }
      const tasks: PlannedTask[] = connection.sourceFiles.map((f, index) => ({
        sourceFileId: f.id,
        path: f.path,
        connectorType: f.connectorType,
        role: f.role,
        index,
      }));
      for (const t of tasks) {
        await store.tasks.updateOne(
          { _id: taskId(input.runId, t.sourceFileId) },
          {
            $setOnInsert: {
              runId: input.runId,
              connectionId: run.connectionId,
              sourceFileId: t.sourceFileId,
              path: t.path,
              connectorType: t.connectorType,
              role: t.role,
              index: t.index,
              state: "NotStarted",
              result: "Undetermined",
              warnings: [],
              elements: { ...ZERO_COUNTS },
            },
          },
          { upsert: true },
        );
      }
      await store.runs.updateOne({ _id: input.runId }, { $set: { state: "Executing", startDateTime: run.startDateTime ?? now() } });
      log({ runId: input.runId }).info({ files: tasks.length }, "run started");
      return { ok: true, tasks };
    },

    /**
     * Synchronizes one file: reads and hashes it, parses it with its connector and writes it into the iModel in one
     * transaction. A problem of the file itself (missing, unreadable, not parseable) completes the task with result
     * Error and a code; faults of the service (database, iModel) throw so Temporal retries the activity.
     */
    async syncSourceFile(input: { runId: string; connectionId: string; iModelId: string; task: PlannedTask }): Promise<RunResult> {
      const { runId, task } = input;
      const l = log({ runId, connectionId: input.connectionId, file: task.path });
      const attempt = Context.current().info.attempt;
      const id = taskId(runId, task.sourceFileId);
      const existing = await store.tasks.findOne({ _id: id });
      if (existing?.state === "Completed") return existing.result; // retried after it was recorded
      await store.tasks.updateOne(
        { _id: id },
        { $set: { state: "Executing", attempts: attempt, startDateTime: existing?.startDateTime ?? now() } },
      );
      const [connection, iModel] = await Promise.all([
        store.connections.findOne({ _id: input.connectionId }),
        store.imodels.findOne({ _id: input.iModelId }),
      ]);
      if (!connection || !iModel) throw new Error(`connection ${input.connectionId} or iModel ${input.iModelId} has no record`);
      const absolutePath = sourceFileAbsolutePath(connection.source.path, task.path);
      const fileName = path.basename(task.path);

      const fail = async (error: ErrorInfo): Promise<RunResult> => {
        l.warn({ error }, "task failed");
        await finishTask(runId, task.sourceFileId, { result: "Error", error });
        return "Error";
      };

      let contentHash: string;
      try {
        contentHash = await hashFile(absolutePath);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code === "ENOENT" ? "FileNotFound" : "FileUnreadable";
        return fail({ code, message: `${fileName}: cannot read the source file (${(err as Error).message})`, target: task.path });
      }
      Context.current().heartbeat("parsing");
      let parsed;
      try {
        parsed = await CONNECTORS[task.connectorType](absolutePath);
      } catch (err) {
        if (err instanceof SourceFileError) return fail({ code: err.code, message: err.message, target: task.path });
        return fail({ code: "ConnectorFailed", message: `${fileName}: the ${task.connectorType} connector failed (${String(err)})`, target: task.path });
      }
      Context.current().heartbeat("writing");
      ensureIModel(iModel.location.path, iModel.name);
      const written = await writeSourceFile({
        bimPath: iModel.location.path,
        connectionId: connection._id,
        connectionName: connection.displayName,
        sourceFileId: task.sourceFileId,
        sourceFilePath: task.path,
        contentHash,
        runId,
        parsed,
      });
      const elements = { inserted: written.inserted, updated: written.updated, deleted: written.deleted, unchanged: written.unchanged };
      await finishTask(runId, task.sourceFileId, { result: "Success", contentHash, elements, warnings: written.warnings.concat(parsed.warnings) });
      l.info({ elements, warnings: parsed.warnings.length + written.warnings.length, replayed: written.replayed }, "task completed");
      return "Success";
    },

    /** Completes a task with result Error after its activity gave up (retries exhausted). */
    async failTask(input: { runId: string; sourceFileId: string; error: ErrorInfo }): Promise<void> {
      await finishTask(input.runId, input.sourceFileId, { result: "Error", error: input.error });
    },

    /**
     * Completes the run: result from its tasks (see `aggregateResult`), or Error when `error` is given.
     * Tasks that never ran are completed as Skipped.
     */
    async completeRun(input: { runId: string; error?: ErrorInfo }): Promise<RunResult> {
      await store.tasks.updateMany(
        { runId: input.runId, state: { $ne: "Completed" } },
        { $set: { state: "Completed", result: "Skipped", endDateTime: now() } },
      );
      const tasks = await store.tasks.find({ runId: input.runId }).toArray();
      const result: RunResult = input.error ? "Error" : aggregateResult(tasks.map((t) => t.result));
      const error = input.error ?? (result === "Error" || result === "PartialSuccess"
        ? { code: result === "Error" ? "AllTasksFailed" : "SomeTasksFailed", message: `${tasks.filter((t) => t.result === "Error").length} of ${tasks.length} files failed` }
        : undefined);
      await store.runs.updateOne(
        { _id: input.runId },
        { $set: { state: "Completed", result, endDateTime: now(), ...(error ? { error } : {}) } },
      );
      log({ runId: input.runId }).info({ result }, "run completed");
      return result;
    },
  };
}
