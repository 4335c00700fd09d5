/**
 * The Temporal Schedule of a connection (docs/architecture.md "Decisions": one Temporal Schedule per connection, visible and pausable in the
 * Temporal UI, overlap policy SKIP). Used by the API (PUT/pause/resume/read) and by the schedule activities (removing
 * the schedule of a deleted connection; bringing Temporal in line with the record at each fire, `reconcileSchedule`).
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
  catcherYears,
  describeSchedule,
  gapCatcherDates,
  scheduledWorkflowIdOf,
  scheduleIdOf,
  scheduleInputOf,
  skipEntries,
  type ScheduleInput,
  type ScheduledRunInput,
  type StoredSchedule,
} from "../domain/schedule";
import { SEARCH_ATTRIBUTES } from "../domain/search-attributes";
import { clampForTemporal } from "../domain/temporal-text";
import { withConnection } from "./connection-writes";
import type { Store } from "./db";

/**
 * Missed fires (Temporal server down at the time) are still taken when it is back within this window; older ones
 * are dropped (the next fire comes anyway).
 */
export const CATCHUP_WINDOW: Duration = "2 hours";

/**
 * The Temporal spec of a schedule, replaced whole at every change (no stale intervals or calendars stay behind):
 * every 4 hours, an interval; daily/weekly, the wall time in the zone plus one explicit-date catcher entry per gap
 * date of {@link catcherYears} (domain/schedule.ts `gapCatcherDates`), and the `skipDates` of the stored schedule as
 * skipped days. Deterministic for a schedule and a UTC year, so the spec changes only when the schedule does or the
 * year turns (then {@link reconcileSchedule} renews it).
 */
export function temporalSpec(
  s: ScheduleInput & Pick<Partial<StoredSchedule>, "skipDates">,
  nowMs = Date.now(),
): ScheduleSpec {
  switch (s.type) {
    case "every4Hours":
      return { intervals: [{ every: "4 hours" }] };
    case "daily":
    case "weekly": {
      const { from, to } = catcherYears(nowMs);
      const skip = skipEntries(s, s.skipDates ?? []);
      return {
        calendars: calendarEntries(s, gapCatcherDates(s, from, to)),
        ...(skip.length ? { skip } : {}),
        timezone: s.timeZone,
      };
    }
    case "manual":
      throw new Error("a manual schedule has no Temporal spec");
  }
}

/** The summary of the schedule's workflows in the Temporal UI, within Temporal's summary limit. */
export function scheduleSummary(connection: Pick<ConnectionRecord, "displayName">, s: ScheduleInput): string {
  return clampForTemporal(`Scheduled sync of connection "${connection.displayName}" (${describeSchedule(s)})`);
}

/** The note Temporal shows with the schedule: the pause note when paused, else what it does. */
function stateNote(s: StoredSchedule): string {
  return s.paused ? (s.note ?? "paused") : `${describeSchedule(s)}, revision ${s.revision}`;
}

/**
 * Makes the connection's Temporal Schedule match its stored schedule: removed for manual (or none), created or
 * replaced otherwise (spec, action with the schedule's revision, policies, paused state).
 * @throws ScheduleAlreadyRunning never; Temporal errors (e.g. an unknown zone on the server) as they are.
 */
export async function applySchedule(
  client: Client,
  taskQueue: string,
  connection: ConnectionRecord,
  nowMs = Date.now(),
): Promise<void> {
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
    spec: temporalSpec(s, nowMs),
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
      staticSummary: scheduleSummary(connection, s),
      staticDetails: clampForTemporal(
        [
          `**Connection**: ${connection.displayName} (\`${connection._id}\`)`,
          `**iModel**: \`${connection.iModelId}\``,
          `**Schedule**: ${describeSchedule(s)}, revision ${s.revision}`,
          "**Trigger**: schedule (each fire asks the iModel's run queue for a run on behalf of the owner)",
          "**Files**:",
          ...connection.sourceFiles
            .filter((f) => f.role === "CompositeModel")
            .map((f) => `- ${f.path} (${f.connectorType})`),
        ].join("\n"),
        8_000,
      ),
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: CATCHUP_WINDOW, pauseOnFailure: false },
    state: { paused: s.paused, note: stateNote(s) },
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

/** What decides whether a Temporal spec says the same as another: time zone, entry comments, intervals. */
function specSignature(spec: {
  timezone?: string;
  calendars?: { comment?: string }[];
  skip?: { comment?: string }[];
  intervals?: { every: unknown }[];
}): string {
  const comments = (entries?: { comment?: string }[]) => (entries ?? []).map((e) => e.comment ?? "").sort();
  return JSON.stringify({
    timezone: spec.calendars?.length ? (spec.timezone ?? "") : "",
    calendars: comments(spec.calendars),
    skip: comments(spec.skip),
    intervals: (spec.intervals ?? []).length,
  });
}

/**
 * Whether Temporal's schedule says what the connection's record says: same revision and schedule in the action, same
 * summary, paused when the record says paused (a schedule paused in the Temporal UI while the record is not is left
 * paused), and the spec of {@link temporalSpec} for `nowMs` (its year's catcher dates).
 */
export function scheduleInSync(
  description: ScheduleDescription,
  connection: ConnectionRecord,
  nowMs = Date.now(),
): boolean {
  const s = connection.schedule;
  if (!s || s.type === "manual") return false;
  const action = description.action;
  const input = (action.type === "startWorkflow" ? action.args?.[0] : undefined) as ScheduledRunInput | undefined;
  return (
    input?.revision === s.revision &&
    JSON.stringify(input.schedule) === JSON.stringify(scheduleInputOf(s)) &&
    (action.type !== "startWorkflow" ||
      action.staticSummary === undefined ||
      action.staticSummary === scheduleSummary(connection, s)) &&
    // Paused in Temporal while the record is not: an operator's pause from the Temporal UI, respected.
    (description.state.paused || !s.paused) &&
    specSignature(description.spec) === specSignature(temporalSpec(s, nowMs))
  );
}

/**
 * Brings the connection's Temporal Schedule in line with its record when they differ (the record is what the API
 * answered, so it wins): removes a schedule the record does not have, creates or replaces one that is missing or
 * says something else (another revision, paused state or note, or last year's catcher dates), and otherwise leaves
 * it alone. Called by the schedule's fires (activities/schedules.ts), its reads and its saves (api/schedules.ts),
 * so a failure between the two writes is repaired at the next of them (docs/architecture.md "Decisions").
 * @returns what was done.
 * @throws Temporal's errors as they are.
 */
export async function reconcileSchedule(
  client: Client,
  taskQueue: string,
  connection: ConnectionRecord,
  nowMs = Date.now(),
): Promise<"unchanged" | "applied" | "removed"> {
  const wanted = connection.status === "Active" && connection.schedule && connection.schedule.type !== "manual";
  const description = await describeTemporalSchedule(client, connection._id);
  if (!wanted) {
    if (!description) return "unchanged";
    await removeSchedule(client, connection._id);
    return "removed";
  }
  if (description && scheduleInSync(description, connection, nowMs)) return "unchanged";
  await applySchedule(client, taskQueue, connection, nowMs);
  return "applied";
}

/**
 * Pauses a connection's schedule with a note, as the API's pause does (docs/architecture.md "Decisions"): under the
 * connection's lock, Temporal first, then the record; a failed record write puts Temporal back. Used when failed
 * scheduled runs pause the schedule (activities/run-events.ts).
 * @param by who paused it (the schedule's `updatedBy`).
 * @returns the connection as written, or undefined when there was nothing to pause (not Active, manual, or paused).
 * @throws Temporal's and MongoDB's errors (nothing paused in the record then).
 */
export async function pauseSchedule(
  store: Store,
  client: Client,
  taskQueue: string,
  connectionId: string,
  note: string,
  by: string,
): Promise<ConnectionRecord | undefined> {
  return withConnection(store, connectionId, async (current, write) => {
    const s = current.schedule;
    if (current.status !== "Active" || !s || s.type === "manual" || s.paused) return undefined;
    const next: StoredSchedule = {
      ...s,
      paused: true,
      note: clampForTemporal(note),
      updatedDateTime: new Date().toISOString(),
      updatedBy: by,
    };
    await applySchedule(client, taskQueue, { ...current, schedule: next });
    try {
      return await write({ $set: { schedule: next } });
    } catch (err) {
      await reconcileSchedule(client, taskQueue, current).catch(() => undefined);
      throw err;
    }
  });
}
