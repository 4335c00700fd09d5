/**
 * The API's JSON as the portal reads it (README.md "API"). Only the fields the portal shows are typed; the rest pass
 * through untouched, so fields the API adds later (task item counts, iModel members) can be shown without a redesign.
 */

export interface ErrorInfo {
  code: string;
  message: string;
  target?: string;
  /** Warnings that sum several occurrences up: how many, and a few of them. */
  count?: number;
  examples?: string[];
}

export interface Link {
  href: string;
}

export interface TokenInfo {
  state: "Valid" | "Expired";
  issuedDateTime: string;
  expiresDateTime: string;
  refreshFromDateTime: string;
}

export interface User {
  id: string;
  email: string;
  name: string;
  role: string;
  token: TokenInfo | null;
}

export interface IModel {
  id: string;
  name: string;
  location: { type: string; path: string };
  createdDateTime: string;
  gcsDefinedBy?: { connectionId: string; sourceFileId: string; path: string };
}

export interface Owner {
  id: string;
  email: string;
  name: string;
  tokenStatus: "Valid" | "Expired" | "None";
  tokenExpiresDateTime?: string;
}

export const SCHEDULE_TYPES = ["manual", "every4Hours", "daily", "weekly"] as const;
export type ScheduleType = (typeof SCHEDULE_TYPES)[number];
export const DAYS_OF_WEEK = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] as const;

/** A schedule as `PUT /connections/{id}/schedule` takes it. */
export interface ScheduleInput {
  type: ScheduleType;
  time?: string;
  timeZone?: string;
  dayOfWeek?: string;
}

export interface Schedule extends ScheduleInput {
  description?: string;
  paused?: boolean;
  note?: string;
  nextRunDateTime: string | null;
  lastRun?: {
    runId: string;
    scheduledDateTime: string;
    outcome: string;
    error?: ErrorInfo;
    reason?: ErrorInfo;
  };
}

export interface ReferenceFile {
  id: string;
  path: string;
  referencedAs: string;
  attachment: string;
  connectorType?: string;
  role: "ReferenceFile";
  resolved: boolean;
  /** A reference that closes a cycle (a file naming itself, or one that names it again): not followed again. */
  circular?: boolean;
  /** Its own attached references (nested references), to any depth. */
  references?: ReferenceFile[];
}

export interface SourceFile {
  id: string;
  path: string;
  connectorType: string;
  role: "CompositeModel";
  references: ReferenceFile[];
}

export type ConnectionStatus = "Active" | "Deleting" | "Deleted";

export interface Connection {
  id: string;
  displayName: string;
  iModelId: string;
  owner: Owner | null;
  schedule: Schedule;
  source: { type: string; path: string };
  sourceFiles: SourceFile[];
  definesGcs: boolean;
  deletionGuard: DeletionGuard;
  status: ConnectionStatus;
  deletion?: { mode: string; requestedDateTime: string; runId?: string; completedDateTime?: string };
  createdDateTime: string;
  _links: { self: Link; runs: Link; lastRun?: Link };
}

/** A connection's deletion guard (README.md "Synchronization"). */
export interface DeletionGuard {
  enabled: boolean;
  /** Holds a file when more than this share (0 to less than 1) of its elements would be deleted... */
  fraction: number;
  /** ...and at least this many. */
  minElements: number;
}

/** Items of the file that were not written, by reason and class (README.md "Synchronization", accounting). */
export interface NotWrittenItems {
  code: string;
  className: string;
  count: number;
  examples: string[];
}

/** What a task read and what became of each item: read = inserted + updated + unchanged + the not written. */
export interface TaskItems {
  read: number;
  written: { inserted: number; updated: number; unchanged: number };
  notWritten: NotWrittenItems[];
}

export interface Task {
  sourceFileId: string;
  path: string;
  fileName?: string;
  role: "CompositeModel" | "ReferenceFile";
  phase: "MasterFile" | "ReferenceFile";
  referencedBy?: string[];
  state: string;
  result: string;
  error?: ErrorInfo;
  reason?: ErrorInfo;
  /** Absent on the tasks of delete jobs. */
  warnings?: ErrorInfo[];
  /** Element counts: inserted, updated, deleted, unchanged (any further counts are shown as they come). */
  elements?: Record<string, number>;
  /** Absent on tasks that did not read and write their file (and on records from before item accounting). */
  items?: TaskItems;
  startDateTime?: string;
  endDateTime?: string;
  durationMs?: number;
  attempts?: number;
}

export interface Job {
  connectorType: string;
  state: string;
  result: string;
  phases: { phase: string; state: string; result: string }[];
  tasks: Task[];
}

export interface Run {
  id: string;
  connectionId: string;
  iModelId: string;
  trigger: string;
  kind: "sync" | "delete";
  state: string;
  result: string;
  error?: ErrorInfo;
  reason?: ErrorInfo;
  /** The run was asked with `{"confirmDeletions": true}`: the deletion guard held none of its files. */
  confirmDeletions?: boolean;
  /** A retry: the run whose failed files it synchronizes again (README.md "Run control"). */
  retryOf?: string;
  /** The composite models the run was limited to. */
  sourceFileIds?: string[];
  /** Asked with `{"force": true}`: files rewritten even when their content hash is unchanged. */
  force?: boolean;
  /** Whether the list of the elements it changed is kept ("pruned": removed, as for older runs). */
  changeList?: "kept" | "pruned" | "none";
  queuedDateTime: string;
  startDateTime?: string;
  endDateTime?: string;
  workflowId: string;
  jobs: Job[];
  /** `retry` is there while the run is completed with failed files; `changes` while its change list is kept. */
  _links?: { retry?: Link; changes?: Link; retryOf?: Link };
}

export const CHANGE_OPERATIONS = ["inserted", "updated", "deleted"] as const;
export type ChangeOperation = (typeof CHANGE_OPERATIONS)[number];

/** One element a run inserted, updated or deleted (`GET .../runs/{runId}/changes`). */
export interface Change {
  operation: ChangeOperation;
  /** IFC GlobalId or DXF handle. */
  identifier: string;
  elementId: string;
  /** The source class (IFC class, DXF entity type); null for a deleted DXF element. */
  className: string | null;
  category?: string | null;
  sourceFileId: string;
  path: string;
}

export interface ChangePage {
  changes: Change[];
  /** The run's totals by operation. */
  counts: Record<ChangeOperation, number>;
  _links: { next?: Link };
}

/** One entry of a connection's timeline (`GET /connections/{id}/events`): a change to it, or one of its runs. */
export interface TimelineEvent {
  id: string;
  kind: "change" | "run";
  /** `Run` for a run; else ConnectionCreated, ConnectionRenamed, ScheduleSet, OwnerChanged, ... */
  type: string;
  dateTime: string;
  by: { id: string; email: string; name: string } | null;
  details: Record<string, unknown>;
}

/** What a delete or an unmap with its data would remove (`DELETE ...?mode=deleteData&dryRun=true`). */
export interface RemovalCounts {
  elements: number;
  /** Types and materials. */
  definitions: number;
  models: number;
  partitions: number;
  aspects: number;
  links: number;
  externalSources: number;
}

export interface RemovalPreview {
  scope: "connection" | "sourceFile";
  files: { sourceFileId: string; path: string; role: string; hasData: boolean | null; removes: RemovalCounts }[];
  subject?: { exists: boolean; elements: number; models: number; aspects: number };
  totals: RemovalCounts;
  clearsGeoreference: boolean;
}

/** What a run would do (`POST /connections/{id}/run {"dryRun": true}`). */
export interface RunPreview {
  force: boolean;
  files: {
    sourceFileId: string;
    path: string;
    role: string;
    changed: boolean;
    synchronize: boolean;
    reason?: ErrorInfo;
    problem?: ErrorInfo;
    size?: number;
  }[];
  counts: { files: number; changed: number; unchanged: number; toSynchronize: number; unreadable: number };
  estimate: { durationMs: number } | null;
}

export const TEAM_ROLES = ["manager", "member"] as const;
export type TeamRole = (typeof TEAM_ROLES)[number];

/** A member of an iModel's team (`GET /imodels/{id}/members`). */
export interface Member {
  userId: string;
  email: string;
  name: string;
  role: TeamRole;
  /** Who added them (a user id); null for a member carried over from before teams. */
  addedBy: string | null;
  addedDateTime: string;
  /** Their first request on the iModel since being added; null until then (they cannot own connections meanwhile). */
  firstInteractionDateTime: string | null;
}

/** A user as `GET /users` shows it (administrators only). */
export interface UserRecord extends User {
  createdDateTime: string;
}

/** `GET /health` (no key needed): 200 ok or degraded (low disk space), 503 unavailable. */
export interface Health {
  status: "ok" | "degraded" | "unavailable";
  checks: Record<string, string>;
  disk?: {
    minFreeMb: number;
    filesystems: { path: string; freeMb: number; totalMb: number; low: boolean }[];
  };
}

export interface SourceFolderEntry {
  name: string;
  path: string;
}

export interface SourceFileEntry {
  name: string;
  path: string;
  size: number;
  modifiedDateTime: string;
  connectorType: string | null;
}

export interface SourceListing {
  folder: { path: string; root: string; parent: string | null } | null;
  folders: SourceFolderEntry[];
  files: SourceFileEntry[];
  truncated: boolean;
}

export interface PortalConfig {
  temporalUi: { url: string; namespace: string };
}
