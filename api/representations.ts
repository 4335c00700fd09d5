import { deletionGuardOf } from "../domain/deletion-guard";
import type { OwnerSummary } from "../domain/users";
import { failureNoticesOf } from "../domain/failure-notices";
import type {
  ConnectionEventRecord,
  ConnectionRecord,
  FileStateRecord,
  ReferenceRecord,
  IModelRecord,
  RunRecord,
  RunResult,
  RunState,
  TaskRecord,
} from "../domain/model";
import { aggregateResult, RUN_STATES, type TaskPhase } from "../domain/model";
import { describedError } from "../domain/task-errors";
import { ownerJson, runScheduleJson, scheduleJson } from "./schedule-owner-json";

/** JSON shapes of the API's resources (modelled on the public iTwin Synchronization API). */

export function iModelJson(m: IModelRecord) {
  return {
    id: m._id,
    name: m.name,
    location: m.location,
    createdDateTime: m.createdDateTime,
    ...(m.gcs
      ? {
          gcsDefinedBy: {
            connectionId: m.gcs.connectionId,
            sourceFileId: m.gcs.sourceFileId,
            path: m.gcs.path,
            ...(m.gcs.crs ? { crs: { epsg: m.gcs.crs.epsg, name: m.gcs.crs.name } } : {}),
          },
        }
      : {}),
    _links: { self: { href: `/imodels/${m._id}` } },
  };
}

/** One reference file under the file that names it, with its own (nested) references; `seen`: ids on the way down. */
function referenceJson(r: ReferenceRecord, refsOf: (id: string) => ReferenceRecord[], seen: string[]): object {
  const nested = r.resolved && !r.circular && !seen.includes(r.id) ? refsOf(r.id) : [];
  return {
    id: r.id,
    path: r.path,
    referencedAs: r.referencedAs,
    attachment: r.attachment,
    ...(r.connectorType ? { connectorType: r.connectorType } : {}),
    role: "ReferenceFile",
    resolved: r.resolved,
    ...(r.circular ? { circular: true } : {}),
    ...(nested.length > 0 ? { references: nested.map((n) => referenceJson(n, refsOf, [...seen, r.id])) } : {}),
  };
}

/**
 * A connection; `fileStates` (its files' records) give each composite model the reference files found under it at
 * its last successful parse, each with its own attached references (nested references).
 */
export function connectionJson(c: ConnectionRecord, fileStates: FileStateRecord[] = []) {
  const refsOf = (id: string) => fileStates.find((f) => f.sourceFileId === id)?.references ?? [];
  return {
    id: c._id,
    displayName: c.displayName,
    iModelId: c.iModelId,
    owner: ownerJson(c),
    schedule: scheduleJson(c),
    source: c.source,
    sourceFiles: c.sourceFiles.map((f) => ({
      id: f.id,
      path: f.path,
      connectorType: f.connectorType,
      role: f.role,
      references: refsOf(f.id).map((r) => referenceJson(r, refsOf, [f.id])),
    })),
    definesGcs: c.definesGcs,
    deletionGuard: deletionGuardOf(c),
    failureNotices: {
      ...failureNoticesOf(c),
      consecutiveFailedScheduledRuns: c.scheduledFailures?.consecutive ?? 0,
      ...(c.scheduledFailures?.since && c.scheduledFailures.consecutive > 0
        ? { failingSince: c.scheduledFailures.since }
        : {}),
    },
    status: c.status,
    ...(c.deletion ? { deletion: c.deletion } : {}),
    createdDateTime: c.createdDateTime,
    _links: {
      self: { href: `/connections/${c._id}` },
      iModel: { href: `/imodels/${c.iModelId}` },
      runs: { href: `/connections/${c._id}/runs` },
      events: { href: `/connections/${c._id}/events` },
      sourceFiles: { href: `/connections/${c._id}/sourceFiles` },
      ...(c.lastRunId ? { lastRun: { href: `/connections/${c._id}/runs/${c.lastRunId}` } } : {}),
    },
  };
}

function taskJson(t: TaskRecord) {
  return {
    sourceFileId: t.sourceFileId,
    path: t.path,
    fileName: t.path.split("/").pop(),
    role: t.role,
    phase: t.phase,
    ...(t.referencedBy ? { referencedBy: t.referencedBy } : {}),
    state: t.state,
    result: t.result,
    ...(t.error ? { error: describedError(t.error) } : {}),
    ...(t.reason ? { reason: t.reason } : {}),
    // Always a list, also on records that were written without one (a task Skipped as unchanged).
    warnings: t.warnings ?? [],
    elements: t.elements,
    ...(t.items ? { items: t.items } : {}),
    ...(t.startDateTime ? { startDateTime: t.startDateTime } : {}),
    ...(t.endDateTime ? { endDateTime: t.endDateTime } : {}),
    ...(t.durationMs !== undefined ? { durationMs: t.durationMs } : {}),
    ...(t.attempts ? { attempts: t.attempts } : {}),
  };
}

/** The least advanced state of a set of tasks (a job is Completed only when all its tasks are). */
function jobState(states: RunState[]): RunState {
  if (states.includes("Executing")) return "Executing";
  return states.reduce<RunState>(
    (least, s) => (RUN_STATES.indexOf(s) < RUN_STATES.indexOf(least) ? s : least),
    "Completed",
  );
}

/**
 * The phase a run is in (iTwin Synchronization API's `phase`): the phase of the task being executed (or waiting to
 * be retried); between tasks, the furthest phase a task has reached; undefined before any task started (a Queued
 * run, or one still planning). A completed run shows the last phase it reached.
 */
export function runPhase(tasks: Pick<TaskRecord, "phase" | "state" | "result">[]): TaskPhase | undefined {
  const current = tasks.find((t) => t.state === "Executing" || t.state === "WaitingToRetry");
  if (current) return current.phase;
  // Tasks completed at planning (unchanged files, Skipped) count only when nothing else ran.
  const started = tasks.filter((t) => t.state === "Completed" && t.result !== "Skipped");
  const reached = started.length > 0 ? started : tasks.filter((t) => t.state === "Completed");
  if (reached.length === 0) return undefined;
  return reached.some((t) => t.phase === "ReferenceFile") ? "ReferenceFile" : "MasterFile";
}

export function runJson(r: RunRecord, tasks: TaskRecord[]) {
  const byType = new Map<string, TaskRecord[]>();
  for (const t of [...tasks].sort((a, b) => a.index - b.index)) {
    byType.set(t.connectorType, [...(byType.get(t.connectorType) ?? []), t]);
  }
  const jobs = [...byType.entries()].map(([connectorType, ts]) => {
    const state = jobState(ts.map((t) => t.state));
    const result: RunResult = state === "Completed" ? aggregateResult(ts.map((t) => t.result)) : "Undetermined";
    const phases = (["MasterFile", "ReferenceFile"] as const)
      .map((phase) => ({ phase, tasks: ts.filter((t) => t.phase === phase) }))
      .filter((p) => p.tasks.length > 0)
      .map((p) => {
        const s = jobState(p.tasks.map((t) => t.state));
        return {
          phase: p.phase,
          state: s,
          result: s === "Completed" ? aggregateResult(p.tasks.map((t) => t.result)) : "Undetermined",
        };
      });
    return { connectorType, state, result, phases, tasks: ts.map(taskJson) };
  });
  return {
    id: r._id,
    connectionId: r.connectionId,
    iModelId: r.iModelId,
    trigger: r.trigger,
    kind: r.kind ?? "sync",
    ...(r.sourceFileIds ? { sourceFileIds: r.sourceFileIds } : {}),
    state: r.state,
    result: r.result,
    ...(runPhase(tasks) ? { phase: runPhase(tasks) } : {}),
    ...(r.error ? { error: describedError(r.error) } : {}),
    ...(r.confirmDeletions ? { confirmDeletions: true } : {}),
    ...(r.force ? { force: true } : {}),
    ...(r.retryOf ? { retryOf: r.retryOf } : {}),
    ...(r.requestedBy ? { requestedBy: r.requestedBy } : {}),
    changeList: r.changeList ?? "none",
    queuedDateTime: r.queuedDateTime,
    ...(r.startDateTime ? { startDateTime: r.startDateTime } : {}),
    ...(r.endDateTime ? { endDateTime: r.endDateTime } : {}),
    workflowId: r.workflowId,
    ...runScheduleJson(r),
    jobs,
    _links: {
      self: { href: `/connections/${r.connectionId}/runs/${r._id}` },
      connection: { href: `/connections/${r.connectionId}` },
      ...(r.changeList === "kept" ? { changes: { href: `/connections/${r.connectionId}/runs/${r._id}/changes` } } : {}),
      ...(r.retryOf ? { retryOf: { href: `/connections/${r.connectionId}/runs/${r.retryOf}` } } : {}),
      ...(r.kind !== "delete" && r.state === "Completed" && tasks.some((t) => t.result === "Error")
        ? { retry: { href: `/connections/${r.connectionId}/runs/${r._id}/retry`, method: "POST" } }
        : {}),
    },
  };
}

/** One change of a connection's timeline (README "Connection timeline"). */
export function connectionEventJson(e: ConnectionEventRecord) {
  return {
    id: e._id,
    kind: "change" as const,
    type: e.type,
    dateTime: e.dateTime,
    by: e.by,
    details: e.details,
    _links: { connection: { href: `/connections/${e.connectionId}` } },
  };
}

/** A run as an entry of its connection's timeline; `by`: who asked for it (scheduled runs: the owner), if known. */
export function runEventJson(r: RunRecord, by: OwnerSummary | null) {
  return {
    id: r._id,
    kind: "run" as const,
    type: "Run" as const,
    dateTime: r.queuedDateTime,
    by,
    details: {
      trigger: r.trigger,
      kind: r.kind ?? "sync",
      state: r.state,
      result: r.result,
      ...(r.startDateTime ? { startDateTime: r.startDateTime } : {}),
      ...(r.endDateTime ? { endDateTime: r.endDateTime } : {}),
      ...(r.error ? { error: r.error } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.sourceFileIds ? { sourceFileIds: r.sourceFileIds } : {}),
      ...(r.force ? { force: true } : {}),
      ...(r.confirmDeletions ? { confirmDeletions: true } : {}),
      ...(r.retryOf ? { retryOf: r.retryOf } : {}),
    },
    _links: { run: { href: `/connections/${r.connectionId}/runs/${r._id}` } },
  };
}

/**
 * A file of a connection as the `sourceFiles` sub-resource shows it: its role, its references (nested, as on the
 * connection), the composite models a reference file comes from, its last successful synchronization and its newest
 * task.
 */
export function sourceFileJson(
  c: Pick<ConnectionRecord, "_id">,
  file: { id: string; path: string; connectorType?: string; role: string; referencedBy?: string[] },
  fileStates: FileStateRecord[],
  lastTask: TaskRecord | undefined,
) {
  const refsOf = (id: string) => fileStates.find((f) => f.sourceFileId === id)?.references ?? [];
  const state = fileStates.find((f) => f.sourceFileId === file.id);
  return {
    id: file.id,
    path: file.path,
    fileName: file.path.split("/").pop(),
    ...(file.connectorType ? { connectorType: file.connectorType } : {}),
    role: file.role,
    ...(file.referencedBy ? { referencedBy: file.referencedBy } : {}),
    references: refsOf(file.id).map((r) => referenceJson(r, refsOf, [file.id])),
    lastSynchronized: state?.syncedContentHash
      ? {
          contentHash: state.syncedContentHash,
          dateTime: state.syncedDateTime ?? null,
          runId: state.syncedRunId ?? null,
        }
      : null,
    lastTask: lastTask
      ? {
          runId: lastTask.runId,
          state: lastTask.state,
          result: lastTask.result,
          ...(lastTask.error ? { error: lastTask.error } : {}),
          ...(lastTask.reason ? { reason: lastTask.reason } : {}),
          elements: lastTask.elements,
          ...(lastTask.endDateTime ? { endDateTime: lastTask.endDateTime } : {}),
          _links: { run: { href: `/connections/${c._id}/runs/${lastTask.runId}` } },
        }
      : null,
    _links: { self: { href: `/connections/${c._id}/sourceFiles/${encodeURIComponent(file.id)}` } },
  };
}
