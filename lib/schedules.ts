/**
 * The Temporal Schedule of a connection (docs/architecture.md "Decisions": one Temporal Schedule per connection, visible and pausable in the
 * Temporal UI, overlap policy SKIP). Used by the API (PUT/pause/resume) and by the schedule activities (removing the
 * schedule of a deleted connection).
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleSpec,
  type ScheduleUpdateOptions,
} from "@temporalio/client";
import type { Duration } from "@temporalio/common";
import type { ConnectionRecord } from "../domain/model";
import {
  calendarEntries,
  describeSchedule,
  needsGapCatcher,
  scheduledWorkflowIdOf,
  scheduleIdOf,
  scheduleInputOf,
  type ScheduleInput,
  type ScheduledRunInput,
} from "../domain/schedule";
import { SEARCH_ATTRIBUTES } from "../domain/search-attributes";

/**
 * Missed fires (Temporal server down at the time) are still taken when it is back within this window; older ones
 * are dropped (the next fire comes anyway).
 */
export const CATCHUP_WINDOW: Duration = "2 hours";

/** The Temporal spec of a schedule: every time replaced whole (no stale intervals or calendars stay behind). */
export function temporalSpec(s: ScheduleInput, nowMs = Date.now()): ScheduleSpec {
  switch (s.type) {
    case "every4Hours":
      return { intervals: [{ every: "4 hours" }] };
    case "daily":
    case "weekly":
      return { calendars: calendarEntries(s, needsGapCatcher(s, nowMs)), timezone: s.timeZone };
    case "manual":
      throw new Error("a manual schedule has no Temporal spec");
  }
}

/**
 * Makes the connection's Temporal Schedule match its stored schedule: removed for manual (or none), created or
 * replaced otherwise (spec, action with the schedule's revision, policies, paused state).
 * @throws ScheduleAlreadyRunning never; Temporal errors (e.g. an unknown zone on the server) as they are.
 */
export async function applySchedule(client: Client, taskQueue: string, connection: ConnectionRecord): Promise<void> {
  const s = connection.schedule;
  if (!s || s.type === "manual") {
    await removeSchedule(client, connection._id);
    return;
  }
  const input: ScheduledRunInput = {
    connectionId: connection._id,
    iModelId: connection.iModelId,
    revision: s.revision,
    schedule: scheduleInputOf(s),
  };
  const options: ScheduleUpdateOptions = {
    spec: temporalSpec(s),
    action: {
      type: "startWorkflow" as const,
      workflowType: "scheduledRunWorkflow",
      workflowId: scheduledWorkflowIdOf(connection._id),
      taskQueue,
      args: [input],
      // A fire that cannot even start its run within an hour (worker down) gives way to the next fire.
      workflowExecutionTimeout: "1 hour",
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.connectionId, value: connection._id },
        { key: SEARCH_ATTRIBUTES.iModelId, value: connection.iModelId },
        { key: SEARCH_ATTRIBUTES.runTrigger, value: "schedule" },
      ],
      staticSummary: `Scheduled sync of connection "${connection.displayName}" (${describeSchedule(s)})`,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: CATCHUP_WINDOW, pauseOnFailure: false },
    state: {
      paused: s.paused,
      note: s.paused ? (s.note ?? "paused") : `${describeSchedule(s)}, revision ${s.revision}`,
    },
  };
  try {
    await client.schedule.create({ scheduleId: scheduleIdOf(connection._id), ...options });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    try {
      await client.schedule.getHandle(scheduleIdOf(connection._id)).update(() => options);
    } catch (updateErr) {
      // The server may report a schedule whose own workflow completed ("workflow execution already completed"):
      // it cannot be updated, so it is created anew with the same id.
      if (!(updateErr instanceof ScheduleNotFoundError)) throw updateErr;
      await removeSchedule(client, connection._id);
      await client.schedule.create({ scheduleId: scheduleIdOf(connection._id), ...options });
    }
  }
}

/** Deletes the connection's Temporal Schedule; no schedule is fine. */
export async function removeSchedule(client: Client, connectionId: string): Promise<void> {
  try {
    await client.schedule.getHandle(scheduleIdOf(connectionId)).delete();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
}

/** The Temporal description of the connection's schedule, or undefined when it has none. */
export async function describeTemporalSchedule(
  client: Client,
  connectionId: string,
): Promise<ScheduleDescription | undefined> {
  try {
    return await client.schedule.getHandle(scheduleIdOf(connectionId)).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}
