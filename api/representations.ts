import { deletionGuardOf } from "../domain/deletion-guard";
import type {
  ConnectionRecord,
  FileStateRecord,
  ReferenceRecord,
  IModelRecord,
  RunRecord,
  RunResult,
  RunState,
  TaskRecord,
} from "../domain/model";
import { aggregateResult, RUN_STATES } from "../domain/model";
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
    status: c.status,
    ...(c.deletion ? { deletion: c.deletion } : {}),
    createdDateTime: c.createdDateTime,
    _links: {
      self: { href: `/connections/${c._id}` },
      iModel: { href: `/imodels/${c.iModelId}` },
      runs: { href: `/connections/${c._id}/runs` },
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
    ...(t.error ? { error: t.error } : {}),
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
    ...(r.error ? { error: r.error } : {}),
    ...(r.confirmDeletions ? { confirmDeletions: true } : {}),
    queuedDateTime: r.queuedDateTime,
    ...(r.startDateTime ? { startDateTime: r.startDateTime } : {}),
    ...(r.endDateTime ? { endDateTime: r.endDateTime } : {}),
    workflowId: r.workflowId,
    ...runScheduleJson(r),
    jobs,
    _links: {
      self: { href: `/connections/${r.connectionId}/runs/${r._id}` },
      connection: { href: `/connections/${r.connectionId}` },
    },
  };
}
