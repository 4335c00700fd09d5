/**
 * JSON of a connection's owner and schedule, and of the schedule fields of a run (used by api/representations.ts).
 * Pure: everything comes from the records (the owner's name, email and token state are copied onto the connection).
 */
import type { ConnectionRecord, RunRecord } from "../domain/model";
import { describeSchedule, nextRunAfter, scheduleIdOf, scheduleInputOf } from "../domain/schedule";

/** `owner` of a connection: who scheduled runs run as, and whether their token lets them run. */
export function ownerJson(c: ConnectionRecord) {
  if (!c.owner) return null;
  const expired = c.ownerToken
    ? c.ownerToken.state === "Expired" || Date.parse(c.ownerToken.expiresDateTime) <= Date.now()
    : false;
  return {
    id: c.owner.id,
    email: c.owner.email,
    name: c.owner.name,
    /** `Valid`, `Expired`, or `None` before the owner's first visit is recorded. */
    tokenStatus: c.ownerToken ? (expired ? "Expired" : "Valid") : "None",
    ...(c.ownerToken ? { tokenExpiresDateTime: c.ownerToken.expiresDateTime } : {}),
    _links: { user: { href: `/users/${c.owner.id}` } },
  };
}

/**
 * `schedule` of a connection, with `nextRunDateTime` (UTC ISO; null when manual or paused; dates in `skipDates`, which
 * already had their run when the schedule was changed, are passed over) and the last scheduled run.
 */
export function scheduleJson(c: ConnectionRecord, now = Date.now()) {
  const s = c.schedule;
  const last = c.lastScheduledRun
    ? {
        lastRun: {
          runId: c.lastScheduledRun.runId,
          scheduledDateTime: c.lastScheduledRun.scheduledDateTime,
          outcome: c.lastScheduledRun.outcome,
          ...(c.lastScheduledRun.error ? { error: c.lastScheduledRun.error } : {}),
          ...(c.lastScheduledRun.reason ? { reason: c.lastScheduledRun.reason } : {}),
          _links: { run: { href: `/connections/${c._id}/runs/${c.lastScheduledRun.runId}` } },
        },
      }
    : {};
  if (!s || s.type === "manual") return { type: "manual" as const, nextRunDateTime: null, ...last };
  const next = s.paused ? undefined : nextRunAfter(s, now, s.skipDates);
  return {
    ...scheduleInputOf(s),
    description: describeSchedule(s),
    paused: s.paused,
    ...(s.paused && s.note ? { note: s.note } : {}),
    nextRunDateTime: next ? next.toISOString() : null,
    ...(s.skipDates?.length ? { skipDates: s.skipDates } : {}),
    revision: s.revision,
    updatedDateTime: s.updatedDateTime,
    temporalScheduleId: scheduleIdOf(c._id),
    ...last,
  };
}

/** Extra fields of a run: the owner it ran as and the occurrence it was scheduled for; why it was Skipped. */
export function runScheduleJson(r: RunRecord) {
  return {
    ...(r.ownerId ? { ownerId: r.ownerId } : {}),
    ...(r.scheduledFor ? { scheduledFor: r.scheduledFor } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  };
}
