/**
 * Collections of users, iModel team members, schedule occurrence claims and notices (next to those of lib/db.ts).
 * Atomicity without transactions (FerretDB 1.x): `_id` uniqueness (claims, notices, team members), a unique index
 * on users' email and API key hash, and conditional `updateOne` filters.
 */
import type { Collection } from "mongodb";
import type { Store } from "./db";
import type { TeamMemberRecord, UserRecord } from "../domain/users";

/**
 * One claimed occurrence of a connection's schedule: `_id` = domain/schedule.ts `occurrenceClaimKeys` (connection +
 * local day, ISO week or 4-hour slot); claims of earlier releases were keyed by revision (`legacyOccurrenceKey`).
 */
export interface ScheduleClaimRecord {
  _id: string;
  connectionId: string;
  /** Revision of the schedule whose fire claimed it. */
  revision: number;
  /** Local date of a daily or weekly occurrence. */
  localDate?: string;
  /** `day …`, `week …` or `slot …` (see ScheduledFor.occurrence). */
  occurrence?: string;
  /** The fire that claimed it. */
  scheduledDateTime: string;
  workflowId: string;
  /** Run id of the fire's workflow execution (claims of earlier releases have none). */
  workflowRunId?: string;
  claimedDateTime: string;
}

/** An email notice, claimed before it is sent so that retries never send it twice. `_id` names what it is about. */
export interface NoticeRecord {
  _id: string;
  kind: "token-expired" | "token-expiring" | "ownership" | "run-failure" | "schedule-paused";
  to: string;
  subject: string;
  state: "sending" | "sent" | "skipped";
  createdDateTime: string;
  sentDateTime?: string;
  messageId?: string;
}

export interface PeopleCollections {
  users: Collection<UserRecord>;
  teamMembers: Collection<TeamMemberRecord>;
  scheduleClaims: Collection<ScheduleClaimRecord>;
  notices: Collection<NoticeRecord>;
}

/** Lock key of one user record (lib/record-writes.ts): key rotation and the token mirror both write it. */
export function userLockKey(userId: string): string {
  return `user/${userId}`;
}

export function peopleCollections(store: Store): PeopleCollections {
  return {
    users: store.db.collection<UserRecord>("users"),
    teamMembers: store.db.collection<TeamMemberRecord>("teamMembers"),
    scheduleClaims: store.db.collection<ScheduleClaimRecord>("scheduleClaims"),
    notices: store.db.collection<NoticeRecord>("notices"),
  };
}

/** Creates the indexes (idempotent). */
export async function ensurePeopleIndexes(c: PeopleCollections): Promise<void> {
  await Promise.all([
    c.users.createIndex({ email: 1 }, { unique: true }),
    c.users.createIndex({ apiKeyHash: 1 }, { unique: true }),
    c.teamMembers.createIndex({ iModelId: 1 }),
    c.teamMembers.createIndex({ userId: 1 }),
    c.scheduleClaims.createIndex({ connectionId: 1 }),
  ]);
}

/** True for a duplicate key error (E11000). */
export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number })?.code === 11000;
}
