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
  queuedDateTime: string;
  startDateTime?: string;
  endDateTime?: string;
  workflowId: string;
  jobs: Job[];
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
