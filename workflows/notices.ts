/**
 * `ownershipNoticeWorkflow`: sends one ownership email with retries (the API starts it after a change of owner, id
 * `notice/ownership:…`; docs/product-rules.md "Owner and token"). Deterministic code only.
 */
import { proxyActivities } from "@temporalio/workflow";
import type { OwnerActivities, OwnershipNotice } from "../activities/owners";

/** Mail: retried until the mail server takes it, for up to a day. */
const mail = proxyActivities<Pick<OwnerActivities, "notifyOwnershipChange">>({
  startToCloseTimeout: "1 minute",
  scheduleToCloseTimeout: "1 day",
  retry: { initialInterval: "5 seconds", backoffCoefficient: 2, maximumInterval: "15 minutes" },
});

/** Sends one ownership notice; true when it was sent (false: already sent by an earlier attempt, see the activity). */
export async function ownershipNoticeWorkflow(notice: OwnershipNotice): Promise<boolean> {
  return await mail.notifyOwnershipChange(notice);
}
