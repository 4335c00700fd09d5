/**
 * iModel teams in the database (docs/product-rules.md "Teams"). One record per member in `teamMembers`, `_id` =
 * iModel + user ({@link teamMemberId}), so that the check every request makes is a single `_id` lookup, the one lookup
 * FerretDB serves without a scan. Writes of one member record (added, role changed, first interaction, removed) run
 * under that record's lease lock (lib/record-writes.ts explains why FerretDB needs it).
 */
import type { Collection, Db } from "mongodb";
import { hasInteracted, teamMemberId, type TeamMemberRecord, type TeamRole } from "../domain/users";
import type { PeopleCollections } from "./collections";
import type { Store } from "./db";
import { withLock } from "./locks";
import type { Logger } from "./logger";
import { withRecord } from "./record-writes";

/** Lock key of one team member record. */
export function teamMemberLockKey(memberId: string): string {
  return `teamMember/${memberId}`;
}

/** Thrown inside {@link recordInteraction} when the member record is gone. */
class MemberGone extends Error {}

/**
 * Records a member's first interaction with the iModel (idempotent: an earlier one is kept).
 * @param at when (UTC).
 * @returns the member record as written, or undefined when there is no such member (any more).
 */
export async function recordInteraction(
  db: Db,
  people: PeopleCollections,
  memberId: string,
  at: Date = new Date(),
): Promise<TeamMemberRecord | undefined> {
  try {
    return await withRecord(
      db,
      people.teamMembers,
      teamMemberLockKey(memberId),
      memberId,
      async (current, write) =>
        hasInteracted(current) ? current : write({ $set: { firstInteractionDateTime: at.toISOString() } }),
      { notFound: () => new MemberGone() },
    );
  } catch (err) {
    if (err instanceof MemberGone) return undefined;
    throw err;
  }
}

/**
 * Adds a user to an iModel's team, or changes the role of a member.
 * @param interactedAt set for a member whose addition is itself an interaction (the creator of the iModel, an
 *   administrator creating a connection); ISO 8601 UTC.
 * @returns the record as stored; `created` true when the user was not a member before, `changed` when the role changed.
 * @throws ApiError ConcurrentChange (409) when the member's lock stays held for 15 s.
 */
export async function putTeamMember(
  db: Db,
  people: PeopleCollections,
  member: { iModelId: string; userId: string; role: TeamRole; addedBy: string; interactedAt?: string },
): Promise<{ member: TeamMemberRecord; created: boolean; changed: boolean }> {
  const _id = teamMemberId(member.iModelId, member.userId);
  return withLock(db, teamMemberLockKey(_id), async (lease) => {
    const existing = await people.teamMembers.findOne({ _id });
    if (!existing) {
      const record: TeamMemberRecord = {
        _id,
        iModelId: member.iModelId,
        userId: member.userId,
        role: member.role,
        addedBy: member.addedBy,
        addedDateTime: new Date().toISOString(),
        ...(member.interactedAt ? { firstInteractionDateTime: member.interactedAt } : {}),
      };
      lease.assertHeld();
      await people.teamMembers.insertOne(record);
      return { member: record, created: true, changed: true };
    }
    if (existing.role === member.role) return { member: existing, created: false, changed: false };
    lease.assertHeld();
    await people.teamMembers.updateOne({ _id }, { $set: { role: member.role } });
    return { member: { ...existing, role: member.role }, created: false, changed: true };
  });
}

/**
 * Removes a member record (under its lock, so that a concurrent first-interaction write cannot bring it back).
 * @returns whether there was one.
 */
export async function deleteTeamMember(db: Db, people: PeopleCollections, memberId: string): Promise<boolean> {
  return withLock(db, teamMemberLockKey(memberId), async (lease) => {
    lease.assertHeld();
    return (await people.teamMembers.deleteOne({ _id: memberId })).deletedCount > 0;
  });
}

/** The ids of the iModels whose team the user is a member of (for the lists a user sees). */
export async function memberIModelIds(people: PeopleCollections, userId: string): Promise<string[]> {
  const records = await people.teamMembers.find({ userId }, { projection: { iModelId: 1 } }).toArray();
  return records.map((r) => r.iModelId);
}

/** A team member record written before teams existed: any request on an iModel created one. */
interface LegacyTeamMemberRecord {
  _id: string;
  iModelId: string;
  userId: string;
  firstVisitDateTime?: string;
}

/**
 * Upgrades the team member records written before teams existed (idempotent; the API runs it at start). Those records
 * said only that a user had once made a request on the iModel, which anyone could do, so they do not make a team by
 * themselves. For each iModel that has such records:
 * - the owner of its oldest Active (or Deleting) connection becomes its manager, the owners of its other connections
 *   members (they keep their connections: an owner is always a member), each counted as having interacted since their
 *   first recorded request;
 * - the other records are removed (logged with the iModel and user ids, so that a manager can add them again).
 * iModels without any owner then have no team: only administrators see them until one adds a manager.
 * @returns how many records became members and how many were removed.
 */
export async function migrateLegacyTeamMembers(
  store: Store,
  people: PeopleCollections,
  logger: Logger,
): Promise<{ kept: number; removed: number }> {
  const collection = people.teamMembers as unknown as Collection<LegacyTeamMemberRecord>;
  const legacy = await collection.find({ role: { $exists: false } }).toArray();
  const byIModel = new Map<string, LegacyTeamMemberRecord[]>();
  for (const r of legacy) byIModel.set(r.iModelId, [...(byIModel.get(r.iModelId) ?? []), r]);
  let kept = 0;
  let removed = 0;
  const now = new Date().toISOString();
  for (const [iModelId, records] of byIModel) {
    const connections = await store.connections
      .find({ iModelId, status: { $in: ["Active", "Deleting"] } }, { projection: { ownerId: 1 } })
      .sort({ createdDateTime: 1, _id: 1 })
      .toArray();
    const owners = [...new Set(connections.flatMap((c) => (c.ownerId ? [c.ownerId] : [])))];
    const dropped: string[] = [];
    for (const r of records) {
      const rank = owners.indexOf(r.userId);
      if (rank < 0) {
        await collection.deleteOne({ _id: r._id, role: { $exists: false } });
        dropped.push(r.userId);
        removed++;
        continue;
      }
      const member: TeamMemberRecord = {
        _id: r._id,
        iModelId,
        userId: r.userId,
        role: rank === 0 ? "manager" : "member",
        addedBy: null,
        addedDateTime: now,
        firstInteractionDateTime: r.firstVisitDateTime ?? now,
      };
      await people.teamMembers.replaceOne({ _id: r._id, role: { $exists: false } }, member);
      kept++;
    }
    // An owner without a record of their own (not expected: creating a connection was a request on the iModel).
    for (const [rank, userId] of owners.entries()) {
      await people.teamMembers.updateOne(
        { _id: teamMemberId(iModelId, userId) },
        {
          $setOnInsert: {
            iModelId,
            userId,
            role: rank === 0 ? "manager" : "member",
            addedBy: null,
            addedDateTime: now,
            firstInteractionDateTime: now,
          },
        },
        { upsert: true },
      );
    }
    logger.info(
      { iModelId, manager: owners[0] ?? null, members: owners.slice(1), removed: dropped },
      "team of the iModel made from the records written before teams existed",
    );
  }
  if (legacy.length > 0) logger.warn({ kept, removed }, "team member records from before teams upgraded");
  return { kept, removed };
}
