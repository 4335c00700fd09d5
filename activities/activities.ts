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
  type ConnectionRecord,
  type RunRecord,
  type ErrorInfo,
  type RunResult,
  type RunKind,
  type RunTrigger,
  connectorTypeOf,
  type ReferenceRecord,
  type TaskRecord,
} from "../domain/model";
import { fileStateId, taskId } from "../domain/model";
import { referenceCandidates } from "../domain/references";
import { isInside, sourceFileAbsolutePath } from "../domain/paths";
import { updateConnection, withConnection } from "../lib/connection-writes";
import { bulkWriteInChunks, type Store } from "../lib/db";
import { activityLogger, type Logger } from "../lib/logger";
import { activeMappingOf, mappedFiles } from "../lib/mapping";
import { CONNECTORS } from "./connectors";
import { SourceFileError, type DiscoveredReference } from "./connectors/types";
import { ensureIModel, writeSourceFile } from "./imodel/writer";

export interface ActivityDeps {
  store: Store;
  logger: Logger;
  /** SOURCE_ROOTS (absolute): a source file whose real path (symlinks resolved) lies outside them is refused. */
  sourceRoots: string[];
}

/** A file the run will synchronize, in order: the identifying part of its task record. */
export type PlannedTask = Pick<
  TaskRecord,
  "sourceFileId" | "path" | "connectorType" | "role" | "phase" | "referencedBy" | "index"
>;

/** What one file task produced: its result and the resolved reference files to synchronize after it. */
export interface TaskOutcome {
  result: RunResult;
  references: PlannedTask[];
}

/**
 * The files to synchronize, in order, and the ids of files already completed as Skipped (unchanged); or why the run
 * cannot run: `error` (the run's result becomes Error) or `cancelled` (Cancelled: the connection was deleted meanwhile).
 */
export type RunPlan =
  { ok: true; tasks: PlannedTask[]; skipped: string[] } | { ok: false; error?: ErrorInfo; cancelled?: ErrorInfo };

const now = () => new Date().toISOString();

export { fileStateId, taskId } from "../domain/model";

/** Stable id of a reference file of a connection: the same resolved path gives the same id in every composite. */
export function referenceId(connectionId: string, resolvedPath: string): string {
  return `ref-${createHash("sha256").update(`${connectionId}\0${resolvedPath}`).digest("hex").slice(0, 24)}`;
}

/**
 * Checks a source file before reading it: it must be a regular file (a FIFO or device would block the reader) whose
 * real path (symlinks resolved) lies inside one of `roots`.
 * @returns undefined when it may be read, else the task error (`FileNotFound`, `FileUnreadable`, `FileOutsideSourceRoots`).
 */
export async function checkSourceFile(
  absolutePath: string,
  roots: string[],
  label: string,
): Promise<ErrorInfo | undefined> {
  let real: string;
  try {
    real = await fs.realpath(absolutePath);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    return {
      code: missing ? "FileNotFound" : "FileUnreadable",
      message: `${label}: ${missing ? "the file does not exist" : (err as Error).message}; its data in the iModel is kept`,
      target: label,
    };
  }
  const realRoots = await Promise.all(roots.map((r) => fs.realpath(r).catch(() => r)));
  if (!realRoots.some((root) => isInside(root, real))) {
    return {
      code: "FileOutsideSourceRoots",
      message: `${label}: the file resolves to a path outside SOURCE_ROOTS and is not read`,
      target: label,
    };
  }
  const stat = await fs.stat(real);
  if (!stat.isFile())
    return {
      code: "FileUnreadable",
      message: `${label}: not a regular file; its data in the iModel is kept`,
      target: label,
    };
  return undefined;
}

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

/** Writing task records: shared by the sync and the delete activities. */
export function taskRecords(store: Store) {
  /** Completes a task (state Completed, end time, duration from its start) with `fields` (result, counts...). */
  async function finishTask(runId: string, sourceFileId: string, fields: Partial<TaskRecord>): Promise<void> {
    const record = await store.tasks.findOne({ _id: taskId(runId, sourceFileId) });
    const end = new Date();
    const start = record?.startDateTime ? Date.parse(record.startDateTime) : end.getTime();
    await store.tasks.updateOne(
      { _id: taskId(runId, sourceFileId) },
      { $set: { state: "Completed", endDateTime: end.toISOString(), durationMs: end.getTime() - start, ...fields } },
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

  /** Creates the task record if missing (idempotent). */
  async function ensureTask(runId: string, connectionId: string, t: PlannedTask): Promise<void> {
    await store.tasks.updateOne(
      { _id: taskId(runId, t.sourceFileId) },
      { $setOnInsert: newTask(runId, connectionId, t) },
      { upsert: true },
    );
  }

  return { finishTask, newTask, ensureTask };
}

export function createActivities({ store, logger, sourceRoots }: ActivityDeps) {
  const log = (extra: Record<string, unknown> = {}): Logger => activityLogger(logger, extra);

  const { finishTask, newTask, ensureTask } = taskRecords(store);

  /**
   * Resolves the references a composite names against the source: each becomes a resolved reference (a task of the
   * ReferenceFile phase) or a warning on the composite's task (`UnresolvedReference`, `UnsupportedReferenceFormat`).
   */
  async function resolveReferences(
    connection: ConnectionRecord,
    composite: PlannedTask,
    discovered: DiscoveredReference[],
  ): Promise<{ records: ReferenceRecord[]; warnings: ErrorInfo[] }> {
    const records: ReferenceRecord[] = [];
    const warnings: ErrorInfo[] = [];
    const sourceFolder = connection.source.path;
    const mappedElsewhere =
      discovered.length > 0 ? await filesOfOtherConnections(connection) : new Map<string, string>();
    // A reference that is itself a composite model of the connection keeps the composite's id (synchronized once).
    const idFor = (p: string) => connection.sourceFiles.find((f) => f.path === p)?.id ?? referenceId(connection._id, p);
    for (const ref of discovered) {
      let found: string | undefined;
      for (const candidate of referenceCandidates(composite.path, ref.path)) {
        const stat = await fs.stat(sourceFileAbsolutePath(sourceFolder, candidate)).catch(() => undefined);
        if (stat?.isFile()) {
          found = candidate;
          break;
        }
      }
      const connectorType = found ? connectorTypeOf(found) : undefined;
      const real = found
        ? await fs.realpath(sourceFileAbsolutePath(sourceFolder, found)).catch(() => undefined)
        : undefined;
      const owner = real ? mappedElsewhere.get(real) : undefined;
      if (found && owner) {
        // A file is mapped by at most one connection of an iModel: its data comes from that connection.
        if (records.some((r) => r.path === found)) continue;
        records.push({
          id: idFor(found),
          path: found,
          referencedAs: ref.path,
          attachment: ref.attachment,
          ...(connectorType ? { connectorType } : {}),
          resolved: false,
        });
        warnings.push({
          code: "ReferenceMappedByAnotherConnection",
          message: `reference '${ref.path}' (${found}) is mapped by connection ${owner} of this iModel; it is synchronized there, not here`,
          target: ref.path,
        });
      } else if (found && connectorType && found !== composite.path) {
        if (records.some((r) => r.path === found)) continue;
        records.push({
          id: idFor(found),
          path: found,
          referencedAs: ref.path,
          attachment: ref.attachment,
          connectorType,
          resolved: true,
        });
      } else {
        records.push({
          id: idFor(found ?? ref.path),
          path: found ?? ref.path,
          referencedAs: ref.path,
          attachment: ref.attachment,
          resolved: false,
        });
        warnings.push(
          found && !connectorType
            ? {
                code: "UnsupportedReferenceFormat",
                message: `reference '${ref.path}' (${found}) has a format no connector reads; it is not synchronized`,
                target: ref.path,
              }
            : {
                code: "UnresolvedReference",
                message: `reference '${ref.path}'${ref.name ? ` (${ref.name})` : ""} was not found in the source; it is not synchronized`,
                target: ref.path,
              },
        );
      }
    }
    return { records, warnings };
  }

  /**
   * Real paths of the files the iModel's other active connections map (composite models) or synchronize (resolved
   * reference files), each with that connection's name and id for messages.
   */
  async function filesOfOtherConnections(connection: ConnectionRecord): Promise<Map<string, string>> {
    const { connections, states } = await activeMappingOf(store, connection.iModelId, connection._id);
    return new Map(
      (await mappedFiles(connections, states)).map((f) => [
        f.real,
        `'${f.connection.displayName}' (${f.connection._id})`,
      ]),
    );
  }

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
    }): Promise<void> {
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
          },
        },
        { upsert: true },
      );
      await updateConnection(store, input.connectionId, () => ({ $set: { lastRunId: input.runId } }));
      log({ runId: input.runId, connectionId: input.connectionId }).info("run queued");
    },

    /** Marks the run Executing and creates one NotStarted task per mapped file (idempotent). */
    async beginRun(input: { runId: string }): Promise<RunPlan> {
      const run = await store.runs.findOne({ _id: input.runId });
      if (!run) return { ok: false, error: { code: "RunNotFound", message: `run ${input.runId} has no record` } };
      const connection = await store.connections.findOne({ _id: run.connectionId });
      if (!connection)
        return {
          ok: false,
          error: { code: "ConnectionNotFound", message: `connection ${run.connectionId} has no record` },
        };
      // A deleted connection never synchronizes again, whoever asked (docs/product-rules.md "Delete, two modes": a delete stops future syncs at once).
      if (connection.status !== "Active") {
        return {
          ok: false,
          cancelled: {
            code: "ConnectionDeleted",
            message: `connection ${run.connectionId} was deleted before the run started`,
          },
        };
      }
      // The run starts when planning starts (hashing every file is part of the run's time).
      if (!run.startDateTime)
        await store.runs.updateOne({ _id: input.runId }, { $set: { state: "Executing", startDateTime: now() } });
      else if (run.state !== "Executing")
        await store.runs.updateOne({ _id: input.runId }, { $set: { state: "Executing" } });
      const iModel = await store.imodels.findOne({ _id: run.iModelId });
      const bimExists = iModel
        ? await fs.stat(iModel.location.path).then(
            () => true,
            () => false,
          )
        : false;
      const states = new Map(
        (await store.fileStates.find({ connectionId: connection._id }).toArray()).map((f) => [f.sourceFileId, f]),
      );
      const composites: PlannedTask[] = connection.sourceFiles
        .filter((f) => f.role === "CompositeModel")
        .map((f, index) => ({
          sourceFileId: f.id,
          path: f.path,
          connectorType: f.connectorType,
          role: f.role,
          phase: "MasterFile",
          index,
        }));

      // File-level incremental sync, decided here for every file at once so unchanged files cost no task of their
      // own: a file whose content hash equals its last successfully synchronized hash is Skipped. References of an
      // unchanged composite are those found at its last parse.
      const tasks: PlannedTask[] = [];
      const skipped: string[] = [];
      const skippedRecords: { task: PlannedTask; contentHash: string; runId?: string }[] = [];
      const consider = async (t: PlannedTask): Promise<boolean> => {
        const state = states.get(t.sourceFileId);
        const abs = sourceFileAbsolutePath(connection.source.path, t.path);
        const readable = state?.syncedContentHash && bimExists && !(await checkSourceFile(abs, sourceRoots, t.path));
        const hash = readable ? await hashFile(abs).catch(() => undefined) : undefined;
        if (hash && hash === state?.syncedContentHash) {
          skipped.push(t.sourceFileId);
          skippedRecords.push({ task: t, contentHash: hash, runId: state.syncedRunId });
          return true;
        }
        tasks.push(t);
        return false;
      };
      const references = new Map<string, PlannedTask>();
      for (const c of composites) {
        if (!(await consider(c))) continue;
        for (const r of states.get(c.sourceFileId)?.references ?? []) {
          if (!r.resolved || !r.connectorType || composites.some((x) => x.sourceFileId === r.id)) continue;
          const known = references.get(r.id);
          if (known) known.referencedBy!.push(c.sourceFileId);
          else
            references.set(r.id, {
              sourceFileId: r.id,
              path: r.path,
              connectorType: r.connectorType,
              role: "ReferenceFile",
              phase: "ReferenceFile",
              referencedBy: [c.sourceFileId],
              index: 0,
            });
        }
      }
      for (const r of references.values()) {
        r.index = composites.length + skipped.length + tasks.length; // after every composite
        await consider(r);
      }
      const all = [...composites, ...references.values()];
      const at = now();
      const unchanged = new Map(skippedRecords.map((r) => [r.task.sourceFileId, r]));
      // One upsert per task, in chunks; unchanged files are written Completed/Skipped at once (no second write).
      await bulkWriteInChunks(
        store.tasks,
        all.map((t) => {
          const skip = unchanged.get(t.sourceFileId);
          const record = skip
            ? {
                ...newTask(input.runId, connection._id, t),
                state: "Completed" as const,
                result: "Skipped" as const,
                contentHash: skip.contentHash,
                reason: {
                  code: "FileUnchanged",
                  message: `${path.basename(t.path)} is unchanged since run ${skip.runId} (same content hash); not parsed again`,
                },
                startDateTime: at,
                endDateTime: at,
                durationMs: 0,
              }
            : newTask(input.runId, connection._id, t);
          return {
            updateOne: {
              filter: { _id: taskId(input.runId, t.sourceFileId) },
              update: { $setOnInsert: record },
              upsert: true,
            },
          };
        }),
      );
      log({ runId: input.runId }).info(
        { files: all.length, toSynchronize: tasks.length, unchanged: skipped.length },
        "run started",
      );
      return { ok: true, tasks, skipped };
    },

    /**
     * Synchronizes one file: reads and hashes it; when its content equals the last successfully synchronized content
     * the task is Skipped (file-level incremental sync: content, not dates, decides); otherwise parses it with its
     * connector and writes it into the iModel in one transaction (element-level incremental sync by provenance).
     * A problem of the file itself (missing, unreadable, not parseable) completes the task with result Error and a
     * code, leaving its data in the iModel; faults of the service (database, iModel) throw so Temporal retries.
     * @returns the task result and, for a composite model, its resolved reference files.
     */
    async syncSourceFile(input: {
      runId: string;
      connectionId: string;
      iModelId: string;
      task: PlannedTask;
    }): Promise<TaskOutcome> {
      const { runId, task } = input;
      const l = log({ runId, connectionId: input.connectionId, file: task.path });
      const attempt = Context.current().info.attempt;
      const id = taskId(runId, task.sourceFileId);
      await ensureTask(runId, input.connectionId, task);
      const existing = await store.tasks.findOne({ _id: id });
      const stateId = fileStateId(input.connectionId, task.sourceFileId);
      const fileState = await store.fileStates.findOne({ _id: stateId });
      const plannedReferences = (records: ReferenceRecord[] | undefined): PlannedTask[] =>
        (records ?? [])
          .filter((r) => r.resolved && r.connectorType)
          .map((r) => ({
            sourceFileId: r.id,
            path: r.path,
            connectorType: r.connectorType!,
            role: "ReferenceFile",
            phase: "ReferenceFile",
            referencedBy: [task.sourceFileId],
            index: 0,
          }));
      if (existing?.state === "Completed") {
        // Retried after it was recorded.
        return {
          result: existing.result,
          references: existing.result === "Error" ? [] : plannedReferences(fileState?.references),
        };
      }
      await store.tasks.updateOne(
        { _id: id },
        { $set: { state: "Executing", attempts: attempt, startDateTime: existing?.startDateTime ?? now() } },
      );
      const [connection, iModel] = await Promise.all([
        store.connections.findOne({ _id: input.connectionId }),
        store.imodels.findOne({ _id: input.iModelId }),
      ]);
      if (!connection || !iModel)
        throw new Error(`connection ${input.connectionId} or iModel ${input.iModelId} has no record`);
      const absolutePath = sourceFileAbsolutePath(connection.source.path, task.path);
      const fileName = path.basename(task.path);

      // Checked before parsing and again right before writing (the connection is read afresh): a connection deleted
      // or a file unmapped while the run executes is not written, whether or not the run's cancellation arrived.
      const notToWrite = (
        c: ConnectionRecord | null,
      ): { result: "Cancelled" | "Skipped"; reason: ErrorInfo } | undefined => {
        if (!c || c.status !== "Active") {
          return {
            result: "Cancelled",
            reason: {
              code: "ConnectionDeleted",
              message: `the connection was deleted during the run; ${fileName} is not synchronized`,
            },
          };
        }
        const mapped = (id: string) => c.sourceFiles.some((f) => f.id === id);
        const stillMapped =
          task.role === "CompositeModel" ? mapped(task.sourceFileId) : (task.referencedBy ?? []).some(mapped);
        if (!stillMapped)
          return {
            result: "Skipped",
            reason: {
              code: "SourceFileUnmapped",
              message: `${fileName} was unmapped during the run; not synchronized`,
            },
          };
        return undefined;
      };
      const stop = async (why: { result: "Cancelled" | "Skipped"; reason: ErrorInfo }): Promise<TaskOutcome> => {
        l.info({ reason: why.reason }, "task not written");
        await finishTask(runId, task.sourceFileId, { result: why.result, reason: why.reason });
        return { result: why.result, references: [] };
      };
      const before = notToWrite(connection);
      if (before) return stop(before);

      const fail = async (error: ErrorInfo): Promise<TaskOutcome> => {
        l.warn({ error }, "task failed");
        await finishTask(runId, task.sourceFileId, { result: "Error", error });
        return { result: "Error", references: [] };
      };

      const problem = await checkSourceFile(absolutePath, sourceRoots, task.path);
      if (problem) return fail({ ...problem, message: problem.message.replace(task.path, fileName) });
      let contentHash: string;
      try {
        contentHash = await hashFile(absolutePath);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code === "ENOENT" ? "FileNotFound" : "FileUnreadable";
        return fail({
          code,
          message: `${fileName}: cannot read the source file (${(err as Error).message}); its data in the iModel is kept`,
          target: task.path,
        });
      }
      const bimExists = await fs.stat(iModel.location.path).then(
        () => true,
        () => false,
      );
      if (fileState?.syncedContentHash === contentHash && bimExists) {
        const reason = {
          code: "FileUnchanged",
          message: `${fileName} is unchanged since run ${fileState.syncedRunId} (same content hash); not parsed again`,
        };
        await finishTask(runId, task.sourceFileId, { result: "Skipped", contentHash, reason });
        l.info("task skipped: file unchanged");
        return { result: "Skipped", references: plannedReferences(fileState.references) };
      }

      Context.current().heartbeat("parsing");
      let parsed;
      try {
        parsed = await CONNECTORS[task.connectorType](absolutePath);
      } catch (err) {
        if (err instanceof SourceFileError) return fail({ code: err.code, message: err.message, target: task.path });
        return fail({
          code: "ConnectorFailed",
          message: `${fileName}: the ${task.connectorType} connector failed (${String(err)})`,
          target: task.path,
        });
      }
      const refs =
        task.role === "CompositeModel"
          ? await resolveReferences(connection, task, parsed.references ?? [])
          : { records: [] as ReferenceRecord[], warnings: [] as ErrorInfo[] };

      Context.current().heartbeat("writing");
      const lastMoment = notToWrite(await store.connections.findOne({ _id: connection._id }));
      if (lastMoment) return stop(lastMoment);
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
      if (written.georeference === "set") {
        // The first file carrying a georeference set the iModel's GCS: remember which, and mark its connection.
        await store.imodels.updateOne(
          { _id: iModel._id, gcs: { $exists: false } },
          {
            $set: {
              gcs: { connectionId: connection._id, sourceFileId: task.sourceFileId, path: task.path, dateTime: now() },
            },
          },
        );
        await updateConnection(store, connection._id, (c) =>
          c.definesGcs ? undefined : { $set: { definesGcs: true } },
        );
      }
      // Under the connection's lock: an unmap (which marks file records under the same lock) is never overwritten.
      await withConnection(store, connection._id, async (current) => {
        await store.fileStates.updateOne(
          { _id: stateId },
          {
            $set: {
              connectionId: input.connectionId,
              sourceFileId: task.sourceFileId,
              path: task.path,
              role: task.role,
              syncedContentHash: contentHash,
              syncedRunId: runId,
              syncedDateTime: now(),
              ...(task.role === "CompositeModel" ? { references: refs.records } : {}),
            },
            // A file synchronized while mapped (see FileStateRecord.unmapped) is mapped again; one unmapped meanwhile
            // keeps its mark.
            ...(notToWrite(current) ? {} : { $unset: { unmapped: "" as const } }),
          },
          { upsert: true },
        );
      });
      const elements = {
        inserted: written.inserted,
        updated: written.updated,
        deleted: written.deleted,
        unchanged: written.unchanged,
      };
      const warnings = [...parsed.warnings, ...written.warnings, ...refs.warnings];
      await finishTask(runId, task.sourceFileId, { result: "Success", contentHash, elements, warnings });
      l.info(
        { elements, warnings: warnings.length, replayed: written.replayed, georeference: written.georeference },
        "task completed",
      );
      return { result: "Success", references: plannedReferences(refs.records) };
    },

    /** Marks a run Finalizing: every task is done; its iModel queue completes it once the connection is free. */
    async finalizeRun(input: { runId: string }): Promise<void> {
      await store.runs.updateOne({ _id: input.runId }, { $set: { state: "Finalizing" } });
    },

    /** Completes a task with result Error after its activity gave up (retries exhausted). */
    async failTask(input: { runId: string; connectionId: string; task: PlannedTask; error: ErrorInfo }): Promise<void> {
      await ensureTask(input.runId, input.connectionId, input.task);
      await finishTask(input.runId, input.task.sourceFileId, { result: "Error", error: input.error });
    },

    /**
     * Completes the run: result from its tasks (see `aggregateResult`), or Error when `error` is given, or Cancelled
     * when `cancelled` is given (its reason is recorded). Tasks that never ran are completed as Skipped, or Cancelled
     * when the run was cancelled. Idempotent.
     */
    async completeRun(input: { runId: string; error?: ErrorInfo; cancelled?: ErrorInfo }): Promise<RunResult> {
      const leftOver: RunResult = input.cancelled ? "Cancelled" : "Skipped";
      await store.tasks.updateMany(
        { runId: input.runId, state: { $ne: "Completed" } },
        {
          $set: {
            state: "Completed",
            result: leftOver,
            endDateTime: now(),
            ...(input.cancelled ? { reason: input.cancelled } : {}),
          },
        },
      );
      const tasks = await store.tasks.find({ runId: input.runId }).toArray();
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
      await store.runs.updateOne(
        { _id: input.runId },
        {
          $set: {
            state: "Completed",
            result,
            endDateTime: now(),
            ...(error ? { error } : {}),
            ...(input.cancelled ? { reason: input.cancelled } : {}),
          },
        },
      );
      log({ runId: input.runId }).info({ result }, "run completed");
      return result;
    },
  };
}
