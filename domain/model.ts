/**
 * Pure types shared by the API, the workflows and the activities. No I/O here: workflows import this file.
 *
 * Words follow the public iTwin Synchronization API (run, job, task, state, result) and docs/product-rules.md "Vocabulary".
 */
import type { DeletionGuard } from "./deletion-guard";
import type { FailureNoticeSettings, ScheduledFailureStreak } from "./failure-notices";
import type { ErrorInfo } from "./errors";
import type { LastScheduledRun, ScheduledFor, StoredSchedule } from "./schedule";
import type { TokenState } from "./token";
import type { OwnerSummary } from "./users";

/** Run and task states, in the order a run moves through them (iTwin Synchronization API words). */
export const RUN_STATES = [
  "NotStarted",
  "Queued",
  "WaitingToExecute",
  "WaitingToRetry",
  "Executing",
  "Finalizing",
  "Completed",
] as const;
export type RunState = (typeof RUN_STATES)[number];

/** Outcome of a run, job or task (iTwin Synchronization API words). `Undetermined` until it completes. */
export const RUN_RESULTS = [
  "Undetermined",
  "Success",
  "Error",
  "PartialSuccess",
  "Skipped",
  "Cancelled",
  "TimedOut",
] as const;
export type RunResult = (typeof RUN_RESULTS)[number];

/**
 * What started a run. `retry`: `POST /connections/{id}/runs/{runId}/retry`, a run over the files that failed in an
 * earlier run (`retryOf`).
 */
export const RUN_TRIGGERS = ["manual", "schedule", "mapping-change", "delete", "retry"] as const;
export type RunTrigger = (typeof RUN_TRIGGERS)[number];

/** Connector types this service can read. */
export const CONNECTOR_TYPES = ["IFC", "DXF"] as const;
export type ConnectorType = (typeof CONNECTOR_TYPES)[number];

/** Role of a source file in a connection's mapping. */
export type SourceFileRole = "CompositeModel" | "ReferenceFile";

/** Phase of a job a task belongs to: composite models first, then the reference files they name. */
export type TaskPhase = "MasterFile" | "ReferenceFile";

/** Connector type of a file from its extension, or undefined when no connector reads it. */
export function connectorTypeOf(filePath: string): ConnectorType | undefined {
  const ext = filePath.slice(filePath.lastIndexOf(".") + 1).toLowerCase();
  return (CONNECTOR_TYPES as readonly string[]).find((t) => t.toLowerCase() === ext) as ConnectorType | undefined;
}

export type { ErrorInfo } from "./errors";

/** Element counts of one task (numbers of elements). */
export interface ElementCounts {
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

export const ZERO_COUNTS: ElementCounts = Object.freeze({ inserted: 0, updated: 0, deleted: 0, unchanged: 0 });

/** What a write did to elements, by operation (numbers of elements, or of change list chunks). */
export const CHANGE_OPERATIONS = ["inserted", "updated", "deleted"] as const;
export type ChangeOperation = (typeof CHANGE_OPERATIONS)[number];
export type ChangeCounts = Record<ChangeOperation, number>;

/**
 * Items of one reason code and source class that a task read but did not write (README "Synchronization": what an
 * item is per format). `examples`: up to 5 identifiers (IFC GlobalIds or `#<instance>`, DXF handles).
 */
export interface NotWrittenItems {
  /** Why, e.g. `UnsupportedEntityType`, `SpatialStructureElement`, `PaperSpace`, `InvalidElementData`. */
  code: string;
  /** Source class or entity type, e.g. `IfcRail`, `HATCH`. */
  className: string;
  count: number;
  examples: string[];
}

/**
 * What a task read from its file and what became of each item: `read` = `written.inserted + written.updated +
 * written.unchanged` + the sum of `notWritten[].count`, always.
 */
export interface TaskItems {
  read: number;
  written: { inserted: number; updated: number; unchanged: number };
  notWritten: NotWrittenItems[];
  /**
   * Property values and quantities of the file's elements and definitions: `read` = `written` + the sum of
   * `notWritten[].count` (`written`: held by the iModel after the write, unchanged ones included). Absent on tasks
   * recorded before property data was synchronized.
   */
  properties?: ContentTally;
  /** Relationships of the file's elements (spatial containment and aggregation, type, material uses); same rule. */
  relationships?: ContentTally;
  /** Types and materials (definitions): `read` = inserted + updated + unchanged + the sum of `notWritten[].count`. */
  definitions?: {
    read: number;
    written: { inserted: number; updated: number; unchanged: number };
    deleted: number;
    notWritten: NotWrittenItems[];
  };
}

/** Read, written and not written (by reason) of one kind of content of a file (see {@link TaskItems}). */
export interface ContentTally {
  read: number;
  written: number;
  notWritten: NotWrittenItems[];
}

/** Where an iModel lives. Only local `.bim` files in the embedded default. */
export interface IModelLocation {
  type: "local";
  /** Absolute path of the `.bim` file. */
  path: string;
}

export interface IModelRecord {
  _id: string;
  name: string;
  location: IModelLocation;
  /**
   * Which file set the iModel's geographic coordinate system (the first synchronized file carrying one), and the
   * projected CRS that defined it (EPSG code and the EPSG dataset's name; absent for a latitude/longitude georeference
   * such as IfcSite's).
   */
  gcs?: {
    connectionId: string;
    sourceFileId: string;
    path: string;
    dateTime: string;
    crs?: { epsg: number; name: string };
  };
  /** ISO 8601 UTC. */
  createdDateTime: string;
  /** The user who created it (its team's first manager); absent on iModels created before teams existed. */
  createdBy?: string;
}

/** A folder source: `path` is absolute and inside one of SOURCE_ROOTS. */
export interface LocalSource {
  type: "local";
  path: string;
}

export interface SourceFileRecord {
  /** Stable id of the mapping entry (UUID). */
  id: string;
  /** Path relative to the source folder, `/`-separated, never containing `..`. */
  path: string;
  connectorType: ConnectorType;
  role: SourceFileRole;
}

/**
 * A reference file discovered under a composite model (e.g. a DXF XREF). `resolved` false means the file could not be
 * found or read in the source; it is then a warning on the composite's task, not a task of its own.
 */
export interface ReferenceRecord {
  /** Stable id: derived from the connection and the resolved path, so a file shared by two composites has one id. */
  id: string;
  /** Resolved path relative to the source (`/`-separated), or the path as written when unresolved. */
  path: string;
  /** The path exactly as the composite wrote it. */
  referencedAs: string;
  attachment: "Attach" | "Overlay";
  connectorType?: ConnectorType;
  resolved: boolean;
  /**
   * The reference closes a cycle (the file it names attaches, directly or through other references, the file that
   * names it, or is that file): it is not followed again, and the task that found it has a `CircularReference` warning.
   */
  circular?: boolean;
}

/**
 * What the service knows of one file of a connection between runs. `_id` = `${connectionId}:${sourceFileId}`.
 * Kept apart from the connection so runs never rewrite the connection record.
 */
export interface FileStateRecord {
  _id: string;
  connectionId: string;
  sourceFileId: string;
  path: string;
  role: SourceFileRole;
  /** SHA-256 of the content last synchronized successfully, and by which run (ISO 8601 UTC time). */
  syncedContentHash?: string;
  syncedRunId?: string;
  syncedDateTime?: string;
  /**
   * The references found at the file's last successful parse: for composite models every attached or overlay
   * reference, for reference files their attached references (nested references; overlays are followed only from
   * the composite model, as CAD applications do).
   */
  references?: ReferenceRecord[];
  /**
   * Set when the file was unmapped (with its composite model): `keepData` leaves its data in the iModel, and mapping
   * the same path again in this connection reuses the file's id so that data is synchronized incrementally;
   * `deleteData` means a delete job removes its data (and then this record).
   */
  unmapped?: {
    mode: DataMode;
    dateTime: string;
    /** On the unmapped composite model's record: the files that went with it (itself and its own references). */
    sourceFileIds?: string[];
  };
}

/**
 * `Active`: synchronized on demand or on schedule. `Deleting`: deleted with its data; its delete job (a run with
 * trigger `delete`) is removing the data, and no sync can start. `Deleted`: no sync can start again; its files may be
 * mapped by other connections.
 */
export const CONNECTION_STATUSES = ["Active", "Deleting", "Deleted"] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

/**
 * What happens to the data already in the iModel when a connection is deleted or a composite model unmapped
 * (docs/product-rules.md "Delete, two modes" and "Change mapping"): `keepData` keeps it and only stops future syncs;
 * `deleteData` also removes it with a delete job.
 */
export const DATA_MODES = ["keepData", "deleteData"] as const;
export type DataMode = (typeof DATA_MODES)[number];

/** What a run does: synchronize files, or remove files' data from the iModel (a delete job). */
export type RunKind = "sync" | "delete";

export interface ConnectionRecord {
  _id: string;
  iModelId: string;
  displayName: string;
  source: LocalSource;
  sourceFiles: SourceFileRecord[];
  /** True when this connection's file set the iModel's geographic coordinate system. */
  definesGcs: boolean;
  status: ConnectionStatus;
  /** Id of the newest run, if any. */
  lastRunId?: string;
  /** ISO 8601 UTC. */
  createdDateTime: string;
  /** The owner (scheduled runs run on their behalf): id, and a copy of their email and name for display. */
  ownerId?: string;
  owner?: OwnerSummary;
  /** The owner's token as mirrored by their owner token workflow (scheduled runs need it Valid). */
  ownerToken?: { state: TokenState; expiresDateTime: string };
  /** Absent = manual only. */
  schedule?: StoredSchedule;
  lastScheduledRun?: LastScheduledRun;
  /** Set by a delete: how (`keepData` or `deleteData`), when it was asked (ISO 8601 UTC), and the delete job's run. */
  deletion?: { mode: DataMode; requestedDateTime: string; runId?: string; completedDateTime?: string };
  /** The connection's deletion guard; absent = the defaults (`domain/deletion-guard.ts`). */
  deletionGuard?: DeletionGuard;
  /** Failure notices of scheduled runs; absent = the defaults (`domain/failure-notices.ts`). */
  failureNotices?: Partial<FailureNoticeSettings>;
  /** The current streak of failed scheduled runs (`domain/failure-notices.ts` `nextStreak`). */
  scheduledFailures?: ScheduledFailureStreak;
  /**
   * Timeline (README "Connection timeline"): the sequence number of the connection's newest event, and the events of
   * its last change, written in the same document write as the change itself and copied into `connectionEvents`
   * (lib/connection-events.ts), so a change never loses its event. Absent on connections not changed since events
   * exist.
   */
  eventSeq?: number;
  lastEvents?: ConnectionEventRecord[];
}

/**
 * Kinds of change to a connection recorded in its timeline (README "Connection timeline"), with what `details` holds:
 * - `ConnectionCreated` {displayName, sourceFiles: [{id, path, connectorType}]};
 * - `ConnectionRenamed` {from, to}; `DeletionGuardChanged` {from, to} (the effective guards); `FailureNoticesChanged`
 *   {from, to} (the effective settings);
 * - `ScheduleSet` {schedule: the schedule as given, description, revision}; `SchedulePaused` {note}; `ScheduleResumed`;
 * - `OwnerChanged` {from: {id, email, name} | null, to: {id, email, name}};
 * - `SourceFilesMapped` {sourceFiles: [{id, path, connectorType}]};
 * - `SourceFileUnmapped` {mode, sourceFileId, path, sourceFileIds (the files that went with it)};
 * - `ConnectionDeleted` {mode}.
 */
export const CONNECTION_EVENT_TYPES = [
  "ConnectionCreated",
  "ConnectionRenamed",
  "DeletionGuardChanged",
  "FailureNoticesChanged",
  "ScheduleSet",
  "SchedulePaused",
  "ScheduleResumed",
  "OwnerChanged",
  "SourceFilesMapped",
  "SourceFileUnmapped",
  "ConnectionDeleted",
] as const;
export type ConnectionEventType = (typeof CONNECTION_EVENT_TYPES)[number];

/**
 * One change to a connection (collection `connectionEvents`), `_id` = `${connectionId}:${seq}` with `seq` padded to 9
 * digits: the same change always has the same id, so copying it again changes nothing.
 */
export interface ConnectionEventRecord {
  _id: string;
  connectionId: string;
  /** 1, 2, ... per connection, in the order the changes were made. */
  seq: number;
  type: ConnectionEventType;
  /** ISO 8601 UTC. */
  dateTime: string;
  /** Who made the change (a copy of their id, email and name at the time). */
  by: OwnerSummary;
  details: Record<string, unknown>;
}

export interface RunRecord {
  _id: string;
  connectionId: string;
  iModelId: string;
  trigger: RunTrigger;
  /** `delete`: a delete job (removes files' data); absent or `sync`: a synchronization. */
  kind?: RunKind;
  /**
   * Delete jobs of unmapped files: the ids of the files whose data it removes (absent: the whole connection). Sync runs
   * asked for chosen files (`POST …/run {"sourceFileIds"}`, and retries): the files it synchronizes, with the
   * reference files they name (absent: every mapped composite model).
   */
  sourceFileIds?: string[];
  /**
   * The source file ids of the run's task records (`_id` = `taskId(runId, id)`), in the order they were planned; reads
   * of a run's tasks go by these `_id`s (lib/run-tasks.ts). Absent: a run recorded before this field, read by `runId`.
   */
  taskFileIds?: string[];
  /**
   * The number of task page records (`taskPages` collection, `_id` = `taskPageId(runId, page)`) that hold the run's
   * task records, written once when the run completed (lib/run-tasks.ts `writeTaskPages`): a Completed run's tasks are
   * read from these few records instead of one record per task. Absent: not written (runs completed by releases before
   * it, or a completion interrupted before it): the tasks are read one by one.
   */
  taskPages?: number;
  state: RunState;
  result: RunResult;
  error?: ErrorInfo;
  /** Temporal workflow id of the run (operators find it in the Temporal UI by this id). */
  workflowId: string;
  /** ISO 8601 UTC timestamps. */
  queuedDateTime: string;
  startDateTime?: string;
  endDateTime?: string;
  /** Scheduled runs: the owner on whose behalf the run ran, and the schedule occurrence it was for. */
  ownerId?: string;
  scheduledFor?: ScheduledFor;
  /** Why a run was Skipped (e.g. `RunInProgress`). */
  reason?: ErrorInfo;
  /** The run was asked with `{"confirmDeletions": true}`: the deletion guard does not hold its files. */
  confirmDeletions?: boolean;
  /**
   * Sync runs asked with `{"force": true}`: files whose content hash is unchanged are parsed and compared element by
   * element all the same (README "Run control").
   */
  force?: boolean;
  /** Runs with trigger `retry`: the run whose failed files this run synchronizes again. */
  retryOf?: string;
  /** The user who asked for the run (manual, retry, delete and mapping-change runs of this release on). */
  requestedBy?: string;
  /**
   * The run's change list (README "What a run changed"): `kept` from the run's start on (sync runs), `pruned` once the
   * connection has more newer runs with a list than `CHANGE_LISTS_KEPT`; absent: none recorded (delete jobs, runs of
   * earlier releases).
   */
  changeList?: "kept" | "pruned";
}

/** One file inside a run. Stored one document per task, `_id` = `${runId}:${sourceFileId}`. */
export interface TaskRecord {
  _id: string;
  runId: string;
  connectionId: string;
  sourceFileId: string;
  path: string;
  connectorType: ConnectorType;
  role: SourceFileRole;
  phase: TaskPhase;
  /**
   * For reference files: the composite models of this run that name it, directly or through other reference files
   * (nested references).
   */
  referencedBy?: string[];
  /** Position in the run, for stable ordering. */
  index: number;
  state: RunState;
  result: RunResult;
  error?: ErrorInfo;
  /** Why a task was Skipped (e.g. `FileUnchanged`), or why it is WaitingToRetry (`InsufficientStorage`). */
  reason?: ErrorInfo;
  warnings: ErrorInfo[];
  elements: ElementCounts;
  /** What the task read from the file and what became of it; set when the file was read and written. */
  items?: TaskItems;
  /** SHA-256 hex of the file content that was read, once known. */
  contentHash?: string;
  /** ISO 8601 UTC timestamps and wall time in ms. */
  startDateTime?: string;
  endDateTime?: string;
  durationMs?: number;
  /** Attempts the task took (1 = first try), counting every attempt of its activity, also after a hand-over. */
  attempts?: number;
  /**
   * Chunks of the task's change list written so far, per operation (domain/change-lists.ts); the committed write's
   * counts are `elements`. Pruning removes these chunks.
   */
  changeChunks?: ChangeCounts;
}

/** `_id` of a task record. */
export const taskId = (runId: string, sourceFileId: string) => `${runId}:${sourceFileId}`;

/** `_id` of a file state record. */
export const fileStateId = (connectionId: string, sourceFileId: string) => `${connectionId}:${sourceFileId}`;

/**
 * The task queue of the activities that wait for an iModel queue to answer a run request (docs/architecture.md
 * "Several workers"): the shared queue's name + `/run-requests`, polled by every worker with slots of its own. On the
 * shared queue, fires that all wait for their iModel queue held every activity slot, while the iModel queue's own
 * activity (recording the run) waited for a slot: a thousand fires at once took hours.
 */
export const runRequestsTaskQueue = (sharedTaskQueue: string): string => `${sharedTaskQueue}/run-requests`;

/** The workflow id of a run: names the connection and the run so operators find it in the Temporal UI. */
export function runWorkflowId(connectionId: string, runId: string): string {
  return `sync/${connectionId}/${runId}`;
}

/** The workflow id of a delete job: names the connection and the run. */
export function deleteWorkflowId(connectionId: string, runId: string): string {
  return `delete/${connectionId}/${runId}`;
}

/** The workflow id of an iModel's run queue (its single writer). */
export function iModelWorkflowId(iModelId: string): string {
  return `imodel/${iModelId}`;
}

/**
 * The result of a run from its task results (iTwin Synchronization API semantics):
 * no task or all Success/Skipped (unchanged files) → Success; all Error → Error; a mix → PartialSuccess.
 */
export function aggregateResult(results: RunResult[]): RunResult {
  if (results.length === 0) return "Success";
  if (results.some((r) => r === "Cancelled")) return "Cancelled";
  const failed = results.filter((r) => r === "Error" || r === "TimedOut").length;
  if (failed === 0) return "Success";
  if (failed === results.length) return "Error";
  return "PartialSuccess";
}
