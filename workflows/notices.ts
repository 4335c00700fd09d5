/**
 * Notice workflows, each sending one email with retries: `ownershipNoticeWorkflow` (the API starts it after a change
 * of owner, id `notice/ownership:…`; docs/product-rules.md "Owner and token"), `runFailureNoticeWorkflow` and
 * `schedulePausedNoticeWorkflow` (started when a scheduled run failed; docs/product-rules.md "Failure notices").
 * Deterministic code only.
 */
import { proxyActivities } from "@temporalio/workflow";
import type { OwnerActivities, OwnershipNotice } from "../activities/owners";
import type { RunFailureNotice } from "../activities/run-events";

/** Mail: retried until the mail server takes it, for up to a day. */
const mail = proxyActivities<
  Pick<OwnerActivities, "notifyOwnershipChange" | "notifyRunFailure" | "notifySchedulePaused">
>({
  startToCloseTimeout: "1 minute",
  scheduleToCloseTimeout: "1 day",
  retry: { initialInterval: "5 seconds", backoffCoefficient: 2, maximumInterval: "15 minutes" },
});

/** Sends one ownership notice; true when it was sent (false: already sent by an earlier attempt, see the activity). */
export async function ownershipNoticeWorkflow(notice: OwnershipNotice): Promise<boolean> {
  return await mail.notifyOwnershipChange(notice);
}

/**
 * Sends the email about a failed scheduled run (id `notice/run-failure:<connectionId>:<UTC day>`: one per connection and
 * day; docs/product-rules.md "Failure notices"). True when it was sent.
 */
export async function runFailureNoticeWorkflow(notice: RunFailureNotice): Promise<boolean> {
  return await mail.notifyRunFailure(notice);
}

/** Tells the owner that failed scheduled runs paused the schedule (id `notice/schedule-paused:<connectionId>:<runId>`). */
export async function schedulePausedNoticeWorkflow(notice: RunFailureNotice): Promise<boolean> {
  return await mail.notifySchedulePaused(notice);
}
