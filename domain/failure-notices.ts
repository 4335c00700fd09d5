/**
 * Failure notices of scheduled runs (docs/product-rules.md "Failure notices"): the connection's owner gets an email
 * when a scheduled run ends Error or PartialSuccess, at most one per connection per UTC day, and after `pauseAfter`
 * consecutive failed scheduled runs the schedule is paused with a note and the owner is told. Settings per connection
 * (`failureNotices`, changed like the deletion guard); the rules here are pure.
 */
import { z } from "zod";
import type { ErrorInfo } from "./errors";

/** A connection's settings: emails on or off, and the number of consecutive failed scheduled runs that pauses. */
export interface FailureNoticeSettings {
  /** Emails to the owner (failed scheduled runs, the pause); the pause itself happens either way. */
  enabled: boolean;
  /** Consecutive failed scheduled runs after which the schedule is paused; 0 = never. */
  pauseAfter: number;
}

/** The defaults: emails on, pause after 10 failed scheduled runs in a row. */
export const DEFAULT_FAILURE_NOTICES: FailureNoticeSettings = Object.freeze({ enabled: true, pauseAfter: 10 });

/** The settings of a connection (the defaults for anything not set). */
export function failureNoticesOf(c: { failureNotices?: Partial<FailureNoticeSettings> }): FailureNoticeSettings {
  return { ...DEFAULT_FAILURE_NOTICES, ...(c.failureNotices ?? {}) };
}

/** `failureNotices` of `PATCH /connections/{id}`: any of its settings; the others keep their values. */
export const failureNoticesInput = z
  .object({
    enabled: z.boolean({ invalid_type_error: "enabled must be true or false" }).optional(),
    pauseAfter: z
      .number({ invalid_type_error: "pauseAfter must be an integer" })
      .int("pauseAfter must be an integer")
      .min(0, "pauseAfter must be from 0 (never pause) to 1000")
      .max(1000, "pauseAfter must be from 0 (never pause) to 1000")
      .optional(),
  })
  .strict();

/** The streak of failed scheduled runs of a connection, kept on its record. */
export interface ScheduledFailureStreak {
  /** Consecutive scheduled runs that ended Error or PartialSuccess. */
  consecutive: number;
  /** The last run counted (a retried count of the same run changes nothing). */
  lastRunId: string;
  /** ISO 8601 UTC: when the streak began (its first failed run's end). */
  since?: string;
}

/** What a completed scheduled run does to the streak: counts as a failure, ends it, or leaves it as it is. */
export type StreakEffect = "failure" | "success" | "none";

/**
 * How a completed run counts (only scheduled sync runs count):
 * - Error or PartialSuccess: a failure, except a run refused for the owner's token (`UserNotAuthenticated`: the token
 *   emails tell the owner, and no file was touched);
 * - Success: ends the streak;
 * - Skipped (another run was active), Cancelled: neither.
 */
export function streakEffect(run: { trigger: string; kind?: string; result: string; error?: ErrorInfo }): StreakEffect {
  if (run.trigger !== "schedule" || run.kind === "delete") return "none";
  if (run.result === "Success") return "success";
  if ((run.result === "Error" || run.result === "PartialSuccess") && run.error?.code !== "UserNotAuthenticated")
    return "failure";
  return "none";
}

/**
 * The streak after a run: a failure adds one (once per run id), a success starts over at zero.
 * @returns the new streak, or undefined when nothing changes.
 */
export function nextStreak(
  streak: ScheduledFailureStreak | undefined,
  runId: string,
  effect: StreakEffect,
  at: string,
): ScheduledFailureStreak | undefined {
  if (effect === "none" || streak?.lastRunId === runId) return undefined;
  if (effect === "success") return streak && streak.consecutive > 0 ? { consecutive: 0, lastRunId: runId } : undefined;
  const consecutive = (streak?.consecutive ?? 0) + 1;
  return { consecutive, lastRunId: runId, since: consecutive === 1 ? at : (streak?.since ?? at) };
}

/** The UTC day (YYYY-MM-DD) of an instant: at most one failure email per connection per such day. */
export function noticeDay(iso: string): string {
  return iso.slice(0, 10);
}
