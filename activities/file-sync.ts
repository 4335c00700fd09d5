/**
 * The activities of a sync run: planning it (`beginRun`: which files to synchronize, which are unchanged) and
 * synchronizing one source file (`syncSourceFile`: read, parse with its connector, write into the iModel).
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { referencesReachable } from "../domain/connection-rules";
import { deletionGuardOf } from "../domain/deletion-guard";
import {
  fileStateId,
  taskId,
  type ConnectionRecord,
  type ErrorInfo,
  type FileStateRecord,
  type ReferenceRecord,
  type RunResult,
} from "../domain/model";
import { sourceFileAbsolutePath } from "../domain/paths";
import { updateConnection, withConnection } from "../lib/connection-writes";
import { writeTaskChanges } from "../lib/change-lists";
import { bulkWriteInChunks, type Store } from "../lib/db";
import { activityLogger, type Logger } from "../lib/logger";
import type { WorkerMetrics } from "../lib/metrics";
import { parseInThread } from "./connectors/parse-in-thread";
import { PARSE_AHEAD_MAX_BYTES, ParseAhead } from "./parse-ahead";
import { notWrittenTotal } from "./connectors/common/items";
import { SourceFileError } from "./connectors/types";
import { INSUFFICIENT_STORAGE, writeOrWaitForSpace } from "./disk-full";
import type { WorkerAffinity } from "./worker-queue";
import { loopHeartbeat, whileBeating } from "./heartbeats";
import { DeletionGuardError, writeSourceFile, writtenContentHashes } from "./imodel/writer";
import { listRunTasks, taskRecords, type PlannedTask } from "./run-records";
import {
  checkSourceFile,
  contentHashOf,
  FileChangedDuringReadError,
  hashFile,
  readSourceFileOnce,
  resolveReferences,
} from "./source-files";

export interface FileSyncDeps {
  store: Store;
  logger: Logger;
  /** Runs started, task durations, elements written, files skipped (README.md "Metrics"). */
  metrics?: WorkerMetrics;
  /** SOURCE_ROOTS (absolute): a source file whose real path (symlinks resolved) lies outside them is refused. */
  sourceRoots: string[];
  /**
   * This worker's runs (activities/worker-queue.ts): a run's plan names this worker's own task queue when it has room,
   * so that the run's file activities go to this worker; absent: they stay on the shared queue.
   */
  affinity?: WorkerAffinity;
}

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
  | {
      ok: true;
      tasks: PlannedTask[];
      skipped: string[];
      /** The own task queue of the worker that planned the run (activities/worker-queue.ts). */
      workerTaskQueue?: string;
      /** The planning worker serves other runs: the workflow asks the shared queue for a worker with room. */
      workerBusy?: boolean;
    }
  | { ok: false; error?: ErrorInfo; cancelled?: ErrorInfo };

const now = () => new Date().toISOString();

/** Retryable failures whose task already records its own reason (activities/disk-full.ts, FileChangedDuringRead). */
const RECORDS_OWN_REASON = new Set(["FileChangedDuringRead", INSUFFICIENT_STORAGE]);

/** Whether a path exists (the iModel's `.bim`). */
const exists = (p: string) =>
  fs.stat(p).then(
    () => true,
    () => false,
  );

/**
 * The content hash the iModel records for a source file's data (see `writtenContentHashes` in
 * activities/imodel/writer.ts: the Version of the file's RepositoryLink provenance), or undefined when the iModel holds
 * no data of the file (or there is no `.bim`).
 */
export type HeldContentHash = (sourceFileId: string) => Promise<string | undefined>;

/**
 * File-level incremental sync (README "Synchronization"): a file is unchanged, so its task is Skipped and it is not
 * parsed again, when its content hash (SHA-256, see `hashFile`) equals the hash of its last successful synchronization
 * (its file record) and the iModel holds the data of exactly that synchronization: the file's RepositoryLink in the
 * iModel records the same content hash (`held`). Content decides, not dates or headers; and the `.bim` itself, not
 * its existence: one deleted and created again (by this run's first file, or by another connection's run), replaced by
 * an older copy or by another iModel, or from which the file's data was removed, does not hold the file, so the file is
 * written again. Used by run planning (`beginRun`, through {@link planFiles}) and by the file task
 * (`syncSourceFile`), each asking the iModel its own way (docs/architecture.md "Does the iModel hold the file?").
 * @param file the file's path relative to the source (named in the reason) and its source file id.
 * @param synced the file's record (its last successful synchronization), if any.
 * @param contentHash the file's content hash now, or undefined when it cannot be read; asked for only when the file
 *   was synchronized before and there is a `.bim`.
 * @param held what the iModel holds (see {@link HeldContentHash}), asked last and only when the content hash equals
 *   the recorded one (it may open the iModel); undefined when there is no `.bim` (nothing is hashed then).
 * @returns the hash and the task's Skipped reason (`FileUnchanged`) when the file is unchanged, else undefined.
 * @throws what `held` throws (a file task: the iModel cannot be opened or read, which its write would meet too).
 */
export async function fileUnchanged(
  file: { path: string; sourceFileId: string },
  synced: Pick<FileStateRecord, "syncedContentHash" | "syncedRunId"> | null | undefined,
  contentHash: () => Promise<string | undefined>,
  held: HeldContentHash | undefined,
): Promise<{ contentHash: string; reason: ErrorInfo } | undefined> {
  if (!held || !synced?.syncedContentHash) return undefined;
  const hash = await contentHash();
  if (hash === undefined || hash !== synced.syncedContentHash) return undefined;
  if ((await held(file.sourceFileId)) !== hash) return undefined;
  return {
    contentHash: hash,
    reason: {
      code: "FileUnchanged",
      message: `${path.basename(file.path)} is unchanged since run ${synced.syncedRunId} (same content hash, and the iModel holds that synchronization); not parsed again`,
    },
  };
}

/**
 * What the iModel at `bimPath` holds of the connection's files, for planning a run (see {@link fileUnchanged}): read
 * once, at the first file that may be unchanged (one query for all the files), then answered from memory. Undefined
 * when there is no `.bim`. When the iModel cannot be read (not an iModel, locked), it holds nothing as far as planning
 * goes: every file is planned, and the file tasks meet the error when they write (planning itself is retried without
 * end, so it must not fail on it); a warning is logged.
 * @param readOnly a dry run: the `.bim` opened read-only (see `writtenContentHashes`).
 */
export async function heldByIModel(
  bimPath: string | undefined,
  connectionId: string,
  logger: Logger,
  readOnly = false,
): Promise<HeldContentHash | undefined> {
  if (!bimPath || !(await exists(bimPath))) return undefined;
  let hashes: Promise<Map<string, string>> | undefined;
  return async (sourceFileId) => {
    hashes ??= writtenContentHashes(bimPath, connectionId, { readOnly }).then(
      (m) => m ?? new Map<string, string>(),
      (err: unknown) => {
        logger.warn({ err, bimPath }, "cannot read the iModel: no file is taken as unchanged");
        return new Map<string, string>();
      },
    );
    return (await hashes).get(sourceFileId);
  };
}

/**
 * The ReferenceFile task of a resolved reference (`connectorType` set); `referencedBy`: the composite models it comes
 * from (directly, or through the reference files that name it).
 */
function referenceTask(ref: ReferenceRecord, referencedBy: string[]): PlannedTask {
  return {
    sourceFileId: ref.id,
    path: ref.path,
    connectorType: ref.connectorType!,
    role: "ReferenceFile",
    phase: "ReferenceFile",
    referencedBy: [...referencedBy],
    index: 0,
  };
}

/** References to follow: resolved, readable by a connector, and not closing a cycle. */
const toFollow = (refs: ReferenceRecord[] | undefined): ReferenceRecord[] =>
  (refs ?? []).filter((r) => r.resolved && r.connectorType && !r.circular);

/** The composite models a task's references come from: the composite itself, or the reference's own composites. */
const rootsOf = (t: PlannedTask): string[] => (t.role === "CompositeModel" ? [t.sourceFileId] : (t.referencedBy ?? []));

/** What {@link planFiles} plans. */
export interface FilePlan {
  /** Every file of the run, in order: the composite models, then the reference files (breadth first). */
  all: PlannedTask[];
  /** The files to parse and write, in order (the others are unchanged). */
  tasks: PlannedTask[];
  /** Files found unchanged (see fileUnchanged): their content hash and the Skipped reason. */
  unchanged: Map<string, { contentHash: string; reason: ErrorInfo }>;
  /** Files that cannot be read as they are now (their task would fail with this error). */
  problems: Map<string, ErrorInfo>;
}

/**
 * Plans a run of `connection` (README "Synchronization", "Run control"): its composite models in mapping order (or the
 * files of `sourceFileIds`: chosen composite models, and for retries reference files, each with the mapped composite
 * models that reach it as `referencedBy`), then the reference files the composites name, followed to any depth through
 * the references recorded at each file's last parse. File-level incremental sync is decided here for every file at
 * once (see fileUnchanged): unchanged files cost no task of their own, and their references are those recorded at
 * their last parse; changed files give theirs with their task's outcome.
 * @param states the connection's file records.
 * @param held what the iModel holds of the connection's files ({@link heldByIModel}); undefined: there is no `.bim`.
 * @param options.force plan unchanged files as tasks too, without hashing them (a forced run).
 * @param options.preview hash every file that can be unchanged even when forced, and follow the recorded references of
 *   changed files too (a dry run, which parses nothing).
 */
export async function planFiles(
  sourceRoots: string[],
  connection: ConnectionRecord,
  states: FileStateRecord[],
  held: HeldContentHash | undefined,
  options: { sourceFileIds?: string[]; force?: boolean; preview?: boolean } = {},
): Promise<FilePlan> {
  const byId = new Map(states.map((f) => [f.sourceFileId, f]));
  const wanted = options.sourceFileIds ? new Set(options.sourceFileIds) : undefined;
  const mappedComposites = connection.sourceFiles.filter((f) => f.role === "CompositeModel");
  const composites: PlannedTask[] = mappedComposites
    .filter((f) => !wanted || wanted.has(f.id))
    .map((f, index) => ({
      sourceFileId: f.id,
      path: f.path,
      connectorType: f.connectorType,
      role: f.role,
      phase: "MasterFile",
      index,
    }));

  const detect = !options.force || options.preview === true;
  const tasks: PlannedTask[] = [];
  const unchanged = new Map<string, { contentHash: string; reason: ErrorInfo }>();
  const problems = new Map<string, ErrorInfo>();
  let considered = 0;
  // Whether the file's recorded references are followed now (an unchanged file's; a preview follows every file's).
  const consider = async (t: PlannedTask): Promise<boolean> => {
    considered++;
    const abs = sourceFileAbsolutePath(connection.source.path, t.path);
    // A run checks the file only when it may be unchanged (the file task checks it anyway); a preview checks each.
    let problem = options.preview ? await checkSourceFile(abs, sourceRoots, t.path) : undefined;
    if (problem) problems.set(t.sourceFileId, problem);
    const skip = detect
      ? await fileUnchanged(
          t,
          byId.get(t.sourceFileId),
          async () => {
            if (!options.preview) problem = await checkSourceFile(abs, sourceRoots, t.path);
            return problem ? undefined : hashFile(abs).catch(() => undefined);
          },
          held,
        )
      : undefined;
    if (skip) unchanged.set(t.sourceFileId, skip);
    if (!skip || options.force) tasks.push(t);
    return skip !== undefined || options.preview === true;
  };
  const references = new Map<string, PlannedTask>();
  const isComposite = (id: string) => mappedComposites.some((x) => x.id === id);
  const follow = (from: PlannedTask) => {
    for (const r of toFollow(byId.get(from.sourceFileId)?.references)) {
      if (isComposite(r.id)) continue;
      const known = references.get(r.id);
      if (!known) references.set(r.id, referenceTask(r, rootsOf(from)));
      else for (const root of rootsOf(from)) if (!known.referencedBy!.includes(root)) known.referencedBy!.push(root);
    }
  };
  // Chosen reference files (a retry of failed references): each with the mapped composite models that reach it.
  if (wanted) {
    const active = states.filter((s) => !s.unmapped);
    const refRecords = new Map(active.flatMap((s) => toFollow(s.references).map((r) => [r.id, r] as const)));
    for (const id of wanted) {
      const ref = refRecords.get(id);
      if (!ref || isComposite(id)) continue;
      const roots = mappedComposites.filter((c) => referencesReachable([c.id], active).includes(id)).map((c) => c.id);
      if (roots.length > 0) references.set(id, referenceTask(ref, roots));
    }
  }
  for (const c of composites) if (await consider(c)) follow(c);
  // Breadth first: the map grows while it is walked (a Map iterates entries added during the walk).
  for (const r of references.values()) {
    r.index = composites.length + considered; // after every composite
    if (await consider(r)) follow(r);
  }
  return { all: [...composites, ...references.values()], tasks, unchanged, problems };
}

/**
 * The sync run activities (activity type names `beginRun` and `syncSourceFile`, as in the recorded workflow
 * histories), created with their dependencies so the worker and tests can wire them.
 */
export function createFileSyncActivities({ store, logger, sourceRoots, metrics, affinity }: FileSyncDeps) {
  const log = (extra: Record<string, unknown> = {}): Logger => activityLogger(logger, extra);

  const { finishTask, newTask, ensureTask } = taskRecords(store);
  // The run's next file, read and parsed while this one is written (docs/architecture.md "Parse ahead").
  const parseAhead = new ParseAhead();
  const startParseAhead = (next: PlannedTask | undefined, sourcePath: string) => {
    if (!next) return;
    const absolutePath = sourceFileAbsolutePath(sourcePath, next.path);
    parseAhead.start(absolutePath, async () => {
      // the same checks as the task's own read: never read outside the source roots
      if (await checkSourceFile(absolutePath, sourceRoots, next.path)) return undefined;
      if ((await fs.stat(absolutePath)).size > PARSE_AHEAD_MAX_BYTES) return undefined;
      const fileName = path.basename(next.path);
      const bytes = await readSourceFileOnce(absolutePath, fileName);
      const contentHash = contentHashOf(bytes);
      return { contentHash, parsed: parseInThread(next.connectorType, bytes, fileName) };
    });
  };

  /**
   * An attempt of a file task failed with a fault of the service (the database, the iModel, a worker fault) and Temporal
   * retries it after its backoff: the task shows `WaitingToRetry` with reason `AttemptFailed` (the attempt and its error)
   * meanwhile, never `Executing` without a word. Faults that record their own reason (`FileChangedDuringRead`,
   * `InsufficientStorage`) and failures Temporal does not retry (`WriterDataError`: the workflow completes the task as
   * Error) are left alone; a Completed task is never touched. Best effort: the database may be the fault.
   */
  const recordAttemptFailed = async (runId: string, task: PlannedTask, err: unknown): Promise<void> => {
    if (err instanceof ApplicationFailure && (err.nonRetryable || RECORDS_OWN_REASON.has(err.type ?? ""))) return;
    const attempt = Context.current().info.attempt;
    const message = err instanceof Error ? err.message : String(err);
    const reason: ErrorInfo = {
      code: "AttemptFailed",
      message: `attempt ${attempt} failed (${message}); retried after a backoff`,
      target: task.path,
    };
    const l = log({ runId, file: task.path });
    l.warn({ reason, attempt }, "file task attempt failed; Temporal retries it");
    await store.tasks
      .updateOne(
        { _id: taskId(runId, task.sourceFileId), state: { $ne: "Completed" } },
        { $set: { state: "WaitingToRetry", reason } },
      )
      .catch((e: Error) => l.warn({ err: e.message }, "could not record the failed attempt on the task"));
  };

  return {
    /**
     * Marks the run Executing and creates one NotStarted task per file to synchronize (idempotent): every mapped
     * composite model with its references, or the files the run was asked for (`sourceFileIds`), see
     * {@link planFiles}. Unchanged files (see fileUnchanged: same content hash, and the iModel holds that
     * synchronization, read once for the run by {@link heldByIModel}) are completed as Skipped at once, unless the run
     * was asked with `force`.
     */
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
      // The run starts when planning starts (hashing every file is part of the run's time); its file tasks record the
      // elements they change from now on (README "What a run changed").
      if (!run.startDateTime) {
        await store.runs.updateOne(
          { _id: input.runId },
          { $set: { state: "Executing", startDateTime: now(), changeList: "kept" } },
        );
        metrics?.runsStarted.inc({ trigger: run.trigger, kind: "sync" });
      } else if (run.state !== "Executing" || run.changeList === undefined)
        await store.runs.updateOne({ _id: input.runId }, { $set: { state: "Executing", changeList: "kept" } });
      const iModel = await store.imodels.findOne({ _id: run.iModelId });
      const held = await heldByIModel(iModel?.location.path, connection._id, log({ runId: input.runId }));
      const states = await store.fileStates.find({ connectionId: connection._id }).toArray();
      // A run asked for chosen files (or a retry) plans those; a forced run skips no unchanged file.
      const { all, tasks, unchanged } = await planFiles(sourceRoots, connection, states, held, {
        ...(run.sourceFileIds ? { sourceFileIds: run.sourceFileIds } : {}),
        force: run.force === true,
      });

      const at = now();
      // The run lists its tasks before their records exist (lib/run-tasks.ts reads them by these ids).
      await listRunTasks(
        store,
        input.runId,
        all.map((t) => t.sourceFileId),
      );
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
                reason: skip.reason,
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
      if (unchanged.size > 0) metrics?.filesSkipped.inc({ reason: "FileUnchanged" }, unchanged.size);
      log({ runId: input.runId }).info(
        {
          files: all.length,
          toSynchronize: tasks.length,
          unchanged: unchanged.size,
          ...(run.sourceFileIds ? { chosen: run.sourceFileIds.length } : {}),
          ...(run.force ? { force: true } : {}),
        },
        "run started",
      );
      const workerTaskQueue = affinity?.claim(input.runId);
      return {
        ok: true,
        tasks,
        skipped: [...unchanged.keys()],
        ...(workerTaskQueue ? { workerTaskQueue } : affinity ? { workerBusy: true } : {}),
      };
    },

    /**
     * Synchronizes one file: reads its bytes once (see `readSourceFileOnce`) and hashes them; when it is unchanged
     * (see fileUnchanged; the iModel is asked only when the hash is the recorded one, since an earlier task of the run
     * may have created the `.bim` afresh) the task is Skipped; otherwise its connector checks the same bytes for completeness and
     * parses them in a parser thread (`parseInThread`), and the writer puts them into the iModel in one transaction
     * (element-level incremental sync by provenance), unless the connection's deletion guard holds the file (`domain/deletion-guard.ts`; not when the
     * run was asked with `confirmDeletions`). A problem of the file itself (missing, unreadable, incomplete, not
     * parseable, held by the deletion guard) completes the task with result Error and a code, leaving its data in the
     * iModel; faults of the service (database, iModel) throw so Temporal retries. A file that changes while it is
     * read sets the task WaitingToRetry (reason `FileChangedDuringRead`) and throws a retryable ApplicationFailure of
     * that type: Temporal reads it again after its backoff. A write that fails for lack of space sets the task
     * WaitingToRetry (reason `InsufficientStorage`, see `writeOrWaitForSpace`) and is retried the same way. The activity
     * records a heartbeat every 5 s while it reads, parses and writes (docs/architecture.md "Heartbeats").
     * @returns the task result and the resolved reference files to synchronize after it (a composite model's, and the
     *   attached references of a reference file).
     */
    async syncSourceFile(input: {
      runId: string;
      connectionId: string;
      iModelId: string;
      task: PlannedTask;
      /** The run was asked with `{"confirmDeletions": true}`: the deletion guard holds nothing. */
      confirmDeletions?: boolean;
      /** The run's next task as planned now, parsed ahead while this file is written (absent: none, or older runs). */
      next?: PlannedTask;
    }): Promise<TaskOutcome> {
      try {
        const { runId, task } = input;
        affinity?.note(runId);
        const l = log({ runId, connectionId: input.connectionId, file: task.path });
        const attempt = Context.current().info.attempt;
        const id = taskId(runId, task.sourceFileId);
        const stateId = fileStateId(input.connectionId, task.sourceFileId);
        const [existing, fileState] = await Promise.all([
          ensureTask(runId, input.connectionId, task),
          store.fileStates.findOne({ _id: stateId }),
        ]);
        const plannedReferences = (records: ReferenceRecord[] | undefined): PlannedTask[] =>
          toFollow(records).map((r) => referenceTask(r, rootsOf(task)));
        if (existing.state === "Completed") {
          // Retried after it was recorded.
          return {
            result: existing.result,
            references: existing.result === "Error" ? [] : plannedReferences(fileState?.references),
          };
        }
        const startDateTime = existing.startDateTime ?? now();
        await store.tasks.updateOne(
          { _id: id },
          {
            // every attempt counts, also across a hand-over to another worker (a new activity: attempt 1 again)
            $set: { state: "Executing", attempts: (existing.attempts ?? 0) + 1, startDateTime },
            ...(existing.reason ? { $unset: { reason: "" as const } } : {}), // FileChangedDuringRead of the last attempt
          },
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
          await finishTask(runId, task.sourceFileId, { result: why.result, reason: why.reason }, startDateTime);
          if (why.result === "Skipped") metrics?.filesSkipped.inc({ reason: why.reason.code });
          return { result: why.result, references: [] };
        };
        const before = notToWrite(connection);
        if (before) return stop(before);

        const started = Date.now();
        const fail = async (error: ErrorInfo): Promise<TaskOutcome> => {
          l.warn({ error }, "task failed");
          await finishTask(runId, task.sourceFileId, { result: "Error", error }, startDateTime);
          metrics?.taskDuration.observe(
            { connector_type: task.connectorType, result: "Error" },
            (Date.now() - started) / 1000,
          );
          return { result: "Error", references: [] };
        };

        const problem = await checkSourceFile(absolutePath, sourceRoots, task.path);
        if (problem) return fail({ ...problem, message: problem.message.replace(task.path, fileName) });
        // One read per attempt: the content hash describes exactly the bytes the connector parses. The main thread beats
        // while it reads (docs/architecture.md "Heartbeats").
        let bytes: Buffer;
        try {
          bytes = await whileBeating(
            () => "reading",
            () => readSourceFileOnce(absolutePath, fileName),
          );
        } catch (err) {
          if (err instanceof FileChangedDuringReadError) {
            const reason: ErrorInfo = { code: "FileChangedDuringRead", message: err.message, target: task.path };
            await store.tasks.updateOne({ _id: id }, { $set: { state: "WaitingToRetry", reason } });
            l.info({ reason, attempt }, "file changed while it was read; read again after the retry backoff");
            throw ApplicationFailure.retryable(err.message, "FileChangedDuringRead");
          }
          const code = (err as NodeJS.ErrnoException).code === "ENOENT" ? "FileNotFound" : "FileUnreadable";
          return fail({
            code,
            message: `${fileName}: cannot read the source file (${(err as Error).message}); its data in the iModel is kept`,
            target: task.path,
          });
        }
        const contentHash = contentHashOf(bytes);
        // The iModel is asked only when the hash is the recorded one: whether the .bim there now holds that
        // synchronization (an earlier file of this run may have created it afresh), see fileUnchanged.
        const unchangedFile = await fileUnchanged(
          task,
          fileState,
          async () => contentHash,
          async (sourceFileId) =>
            (await writtenContentHashes(iModel.location.path, connection._id, { sourceFileId }))?.get(sourceFileId),
        );
        // A forced run parses and compares it all the same (README "Run control"); the run is read only then.
        const skip =
          unchangedFile && (await store.runs.findOne({ _id: runId }, { projection: { force: 1 } }))?.force !== true
            ? unchangedFile
            : undefined;
        if (skip) {
          await finishTask(
            runId,
            task.sourceFileId,
            { result: "Skipped", contentHash, reason: skip.reason },
            startDateTime,
          );
          metrics?.filesSkipped.inc({ reason: skip.reason.code });
          l.info("task skipped: file unchanged");
          return { result: "Skipped", references: plannedReferences(fileState?.references) };
        }

        let parsed;
        let parsedAhead = false;
        try {
          // In a parser thread, while this thread keeps beating (docs/architecture.md "Heartbeats"): the thread parses
          // the bytes just hashed (moved to it, not read again), completeness checks first; or the parse of the same
          // bytes started while the previous file was written (docs/architecture.md "Parse ahead").
          parsed = await whileBeating(
            () => "parsing",
            async () => {
              const ahead = await parseAhead.take(absolutePath, contentHash);
              parsedAhead = ahead !== undefined;
              return ahead ?? parseInThread(task.connectorType, bytes, fileName);
            },
          );
        } catch (err) {
          if (err instanceof SourceFileError) return fail({ code: err.code, message: err.message, target: task.path });
          return fail({
            code: "ConnectorFailed",
            message: `${fileName}: the ${task.connectorType} connector failed (${String(err)})`,
            target: task.path,
          });
        }
        startParseAhead(input.next, connection.source.path);
        const refs = await resolveReferences(store, connection, task, parsed.references ?? []);

        Context.current().heartbeat("writing");
        const fresh = await store.connections.findOne({ _id: connection._id });
        const lastMoment = notToWrite(fresh);
        if (lastMoment) return stop(lastMoment);
        const guard = deletionGuardOf(fresh ?? connection); // the settings as they are now
        // A full disk: the task waits (WaitingToRetry, reason InsufficientStorage) and is retried (docs/architecture.md "Full disks").
        const bimFolder = path.dirname(iModel.location.path);
        let written;
        try {
          written = await writeOrWaitForSpace(
            store,
            l,
            { id, path: task.path, record: existing, bimFolder },
            async () =>
              writeSourceFile({
                bimPath: iModel.location.path,
                iModelName: iModel.name,
                onCreated: ({ stale }) => {
                  const bimPath = iModel.location.path;
                  if (stale.length === 0) l.info({ bimPath }, "iModel created");
                  // left by an earlier database at the path (see ensureIModel): a -wal/-journal with content moved aside
                  else
                    l.warn({ bimPath, stale }, "iModel created; files of an earlier database at its path taken away");
                },
                connectionId: connection._id,
                connectionName: connection.displayName,
                sourceFileId: task.sourceFileId,
                sourceFilePath: task.path,
                contentHash,
                runId,
                parsed,
                ...(guard.enabled && !input.confirmDeletions ? { deletionGuard: guard } : {}),
                heartbeat: loopHeartbeat("writing"),
                // The change list, stored before the write commits (README "What a run changed").
                recordChanges: (changes) =>
                  writeTaskChanges(
                    store,
                    { runId, connectionId: input.connectionId, sourceFileId: task.sourceFileId },
                    changes,
                  ),
              }),
          );
        } catch (err) {
          if (err instanceof DeletionGuardError)
            return fail({ code: "DeletionGuard", message: err.message, target: task.path });
          throw err;
        }
        if (written.georeference === "set") {
          // The first file carrying a georeference set the iModel's GCS: remember which, and mark its connection.
          await store.imodels.updateOne(
            { _id: iModel._id, gcs: { $exists: false } },
            {
              $set: {
                gcs: {
                  connectionId: connection._id,
                  sourceFileId: task.sourceFileId,
                  path: task.path,
                  dateTime: now(),
                  ...(written.crs ? { crs: written.crs } : {}),
                },
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
                references: refs.records,
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
        await finishTask(
          runId,
          task.sourceFileId,
          { result: "Success", contentHash, elements, items: written.items, warnings },
          startDateTime,
        );
        if (metrics) {
          metrics.taskDuration.observe(
            { connector_type: task.connectorType, result: "Success" },
            (Date.now() - started) / 1000,
          );
          for (const change of ["inserted", "updated", "deleted"] as const)
            if (elements[change] > 0)
              metrics.elementsWritten.inc({ connector_type: task.connectorType, change }, elements[change]);
        }
        l.info(
          {
            elements,
            items: { read: written.items.read, notWritten: notWrittenTotal(written.items.notWritten) },
            warnings: warnings.length,
            replayed: written.replayed,
            georeference: written.georeference,
            parsedAhead,
          },
          "task completed",
        );
        return { result: "Success", references: plannedReferences(refs.records) };
      } catch (err) {
        await recordAttemptFailed(input.runId, input.task, err);
        throw err;
      }
    },
  };
}

export type FileSyncActivities = ReturnType<typeof createFileSyncActivities>;
