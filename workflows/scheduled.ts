/**
 * `scheduledRunWorkflow`: what a connection's Temporal Schedule starts at each fire (id
 * `scheduled/<connectionId>-<scheduled time>`). Short: it decides whether the fire is its occurrence's (day, week or
 * 4-hour slot) first and still of the connection's current schedule, then asks the iModel's run queue for a run with trigger `schedule` on behalf of the owner, and ends;
 * the run itself is the queue's child workflow. Deterministic code only.
 */
import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";
import { log, patched, proxyActivities, uuid4, workflowInfo } from "@temporalio/workflow";
import type { ScheduleActivities, ScheduledRunOutcome } from "../activities/schedules";
import { runRequestsTaskQueue } from "../domain/model";
import type { ScheduledRunInput } from "../domain/schedule";

/** Set by Temporal on every workflow a schedule starts: the fire's nominal (scheduled) time. */
const TEMPORAL_SCHEDULED_START_TIME = defineSearchAttributeKey(
  "TemporalScheduledStartTime",
  SearchAttributeType.DATETIME,
);

const options = {
  startToCloseTimeout: "1 minute",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
} as const;
const acts = proxyActivities<ScheduleActivities>(options);

export type ScheduledWorkflowResult =
  | ScheduledRunOutcome
  | { outcome: "Duplicate"; localDate?: string; claimedBy: string }
  | { outcome: "Superseded"; reason: string };

/** The fire's scheduled time: the search attribute, else the time Temporal appended to the workflow id, else the start. */
function scheduledTime(): Date {
  const info = workflowInfo();
  const fromAttribute = info.typedSearchAttributes.get(TEMPORAL_SCHEDULED_START_TIME);
  if (fromAttribute) return fromAttribute;
  const m = /-(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)$/.exec(info.workflowId);
  if (m) return new Date(m[1]);
  return info.startTime;
}

export async function scheduledRunWorkflow(input: ScheduledRunInput): Promise<ScheduledWorkflowResult> {
  const { workflowId } = workflowInfo();
  const at = scheduledTime().toISOString();
  const fire = await acts.classifyScheduledFire({ ...input, scheduledDateTime: at, workflowId });
  if (fire.decision === "duplicate") {
    log.info("schedule fire dropped: its local day's occurrence already ran", {
      connectionId: input.connectionId,
      scheduledDateTime: at,
      localDate: fire.scheduledFor.localDate,
      claimedBy: fire.claimedBy,
    });
    return { outcome: "Duplicate", localDate: fire.scheduledFor.localDate, claimedBy: fire.claimedBy };
  }
  if (fire.decision === "superseded") {
    log.info("schedule fire dropped: the connection's schedule changed since", {
      connectionId: input.connectionId,
      scheduledDateTime: at,
      reason: fire.reason,
    });
    return { outcome: "Superseded", reason: fire.reason };
  }
  // histories recorded before the run-requests queue kept the activity on the shared queue
  const requests = patched("run-requests-queue")
    ? proxyActivities<ScheduleActivities>({ ...options, taskQueue: runRequestsTaskQueue(workflowInfo().taskQueue) })
    : acts;
  return await requests.startScheduledRun({
    connectionId: input.connectionId,
    runId: uuid4(),
    workflowId,
    scheduledFor: fire.scheduledFor,
  });
}
