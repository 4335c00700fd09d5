/**
 * The API's JSON as the portal reads it (README.md "API"). Only the fields the portal shows are typed; the rest pass
 * through untouched, so fields the API adds later (task item counts, iModel members) can be shown without a redesign.
 */

export interface ErrorInfo {
  code: string;
  message: string;
  target?: string;
  count?: number;
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
  status: ConnectionStatus;
  deletion?: { mode: string; requestedDateTime: string; runId?: string; completedDateTime?: string };
  createdDateTime: string;
  _links: { self: Link; runs: Link; lastRun?: Link };
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
  startDateTime?: string;
  endDateTime?: string;
  durationMs?: number;
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
  queuedDateTime: string;
  startDateTime?: string;
  endDateTime?: string;
  workflowId: string;
  jobs: Job[];
}

export interface Member {
  userId: string;
  email: string;
  name: string;
  firstVisitDateTime?: string;
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
