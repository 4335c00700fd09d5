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

/**
 * An API key's hash pointing at its user (`_id` = the hash): authentication reads it by `_id`, which FerretDB serves
 * without scanning the users (docs/architecture.md "Authentication"). The user record stays the authority: a key
 * record whose user no longer has that hash authenticates nobody.
 */
export interface ApiKeyRecord {
  _id: string;
  userId: string;
}

export interface PeopleCollections {
  users: Collection<UserRecord>;
  apiKeys: Collection<ApiKeyRecord>;
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
    apiKeys: store.db.collection<ApiKeyRecord>("apiKeys"),
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

/**
 * The user whose API key has this hash, or null. Reads the key record by `_id`, then the user by `_id`, and accepts
 * the user only when its record holds this very hash (a rotated key's old record is ignored). A hash without a key
 * record (users written before key records existed, or a write that stopped between the user and its key record) is
 * looked up on the users themselves, and its key record is written then, so the next request takes the fast path.
 * @throws MongoDB errors of the reads (a failed write of the key record is ignored: the next request writes it).
 */
export async function findUserByApiKeyHash(c: PeopleCollections, hash: string): Promise<UserRecord | null> {
  const key = await c.apiKeys.findOne({ _id: hash });
  if (key) {
    const user = await c.users.findOne({ _id: key.userId });
    if (user?.apiKeyHash === hash) return user;
  }
  const user = await c.users.findOne({ apiKeyHash: hash });
  if (user) await putApiKey(c, hash, user._id).catch(() => undefined);
  return user;
}

/**
 * Records that `hash` is `userId`'s API key (idempotent), and removes the record of the key it replaces, if given.
 * Call it after the user record holds the hash: until then {@link findUserByApiKeyHash} ignores it.
 */
export async function putApiKey(c: PeopleCollections, hash: string, userId: string, replaced?: string): Promise<void> {
  await c.apiKeys.updateOne({ _id: hash }, { $set: { userId } }, { upsert: true });
  if (replaced && replaced !== hash) await c.apiKeys.deleteOne({ _id: replaced, userId });
}

/** True for a duplicate key error (E11000). */
export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number })?.code === 11000;
}
