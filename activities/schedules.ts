/**
 * Activities of `scheduledRunWorkflow`: decide which occurrence a fire is for (and drop duplicates of a local day),
 * then start the run on behalf of the connection's owner, or record why it did not run.
 */
import { Context } from "@temporalio/activity";
import type { Client } from "@temporalio/client";
import type { ConnectionRecord, ErrorInfo, RunRecord } from "../domain/model";
import {
  classifyFire,
  legacyOccurrenceKey,
  occurrenceClaimKeys,
  type LastScheduledRun,
  type ScheduledFor,
  type ScheduledRunInput,
} from "../domain/schedule";
import { tokenIsValid } from "../domain/token";
import { isDuplicateKey, peopleCollections } from "../lib/collections";
import { updateConnection, withConnection } from "../lib/connection-writes";
import type { Store } from "../lib/db";
import { listNewRun } from "../lib/id-lists";
import { activityLogger, type Logger } from "../lib/logger";
import { requestRun } from "../lib/runs";
import type { WorkerMetrics } from "../lib/metrics";
import { reconcileSchedule, removeSchedule } from "../lib/schedules";
import type { RunEvents } from "./run-events";

export interface ScheduleActivityDeps {
  store: Store;
  logger: Logger;
  temporal: Client;
  taskQueue: string;
  /** What follows a run recorded Completed here (Refused, Skipped): metrics, webhook events (activities/run-events.ts). */
  events?: RunEvents;
  metrics?: WorkerMetrics;
}

export type FireDecision =
  | { decision: "run"; scheduledFor: ScheduledFor }
  | { decision: "duplicate"; scheduledFor: ScheduledFor; claimedBy: string }
  /** The connection's record no longer has this schedule (another revision, paused, manual): the fire is dropped. */
  | { decision: "superseded"; scheduledFor: ScheduledFor; reason: string };

export type ScheduledRunOutcome =
  | { outcome: "Queued"; runId: string }
  | { outcome: "Skipped"; runId: string; activeRunId: string }
  | { outcome: "Refused"; runId: string; error: ErrorInfo }
  | { outcome: "ConnectionGone" };

export function createScheduleActivities({
  store,
  logger,
  temporal,
  taskQueue,
  events,
  metrics,
}: ScheduleActivityDeps) {
  const people = peopleCollections(store);

  const log = (extra: Record<string, unknown> = {}): Logger => activityLogger(logger, extra);

  /** A run that never reached the iModel queue: recorded Completed at once (idempotent by `_id`). */
  async function recordCompletedRun(
    runId: string,
    connection: ConnectionRecord,
    workflowId: string,
    scheduledFor: ScheduledFor,
    fields: Pick<RunRecord, "result"> & Partial<Pick<RunRecord, "error" | "reason" | "ownerId">>,
  ): Promise<void> {
    const now = new Date().toISOString();
    const record: Omit<RunRecord, "_id"> = {
      connectionId: connection._id,
      iModelId: connection.iModelId,
      trigger: "schedule",
      state: "Completed",
      workflowId,
      queuedDateTime: now,
      startDateTime: now,
      endDateTime: now,
      scheduledFor,
      ...fields,
    };
    await listNewRun(store, connection._id, runId);
    const written = await store.runs.updateOne({ _id: runId }, { $setOnInsert: record }, { upsert: true });
    await events?.runEnded(runId, written.upsertedCount > 0);
  }

  async function noteLastScheduledRun(
    connectionId: string,
    last: LastScheduledRun,
    setLastRun: boolean,
  ): Promise<void> {
    await updateConnection(store, connectionId, () => ({
      $set: { lastScheduledRun: last, ...(setLastRun ? { lastRunId: last.runId } : {}) },
    }));
  }

  /**
   * Brings the Temporal Schedule in line with the record (lib/schedules.ts `reconcileSchedule`), under the connection's
   * lock so that an API change (which holds it between its Temporal and record writes) is never seen half-done. Best
   * effort: a failure is logged and retried at the next fire.
   */
  async function reconcile(connectionId: string): Promise<void> {
    try {
      const done = await withConnection(store, connectionId, (current) =>
        reconcileSchedule(temporal, taskQueue, current),
      );
      if (done !== "unchanged")
        log({ connectionId }).info({ done }, "Temporal schedule brought in line with the connection");
    } catch (err) {
      log({ connectionId }).warn({ err: (err as Error).message }, "Temporal schedule not reconciled now; next fire");
    }
  }

  return {
    /**
     * Which occurrence a fire belongs to (see `classifyFire`) and whether it runs:
     * - the connection's record decides first: a fire of another revision than the record's, or while the record says
     *   paused or manual, is `superseded` (dropped) and the Temporal Schedule is brought in line (a write to Temporal
     *   whose record write then failed, or the reverse, is repaired here); the spec is renewed too when its catcher
     *   dates are last year's;
     * - a daily, weekly or every-4-hours occurrence is claimed (`occurrenceClaimKeys`: the local day, ISO week or slot,
     *   whatever the revision): the first fire of an occurrence runs, later ones are duplicates. Claims of earlier
     *   releases (keyed by revision) still count for their day;
     * - a fire by hand (`trigger`) always runs.
     * Idempotent for retries of the same workflow execution (a claim it made is its own; a second backfill of the same
     * scheduled time is another execution with the same workflow id, and a duplicate).
     */
    async classifyScheduledFire(
      input: ScheduledRunInput & { scheduledDateTime: string; workflowId: string },
    ): Promise<FireDecision> {
      const at = new Date(input.scheduledDateTime);
      const fire = classifyFire(input.schedule, at);
      const { keys, occurrence } = occurrenceClaimKeys(input.connectionId, input.schedule, fire, at);
      const timeZone =
        input.schedule.type === "daily" || input.schedule.type === "weekly" ? input.schedule.timeZone : undefined;
      const scheduledFor: ScheduledFor = {
        scheduledDateTime: input.scheduledDateTime,
        revision: input.revision,
        kind: fire.kind,
        ...(fire.kind === "calendar" ? { localDate: fire.localDate, ...(timeZone ? { timeZone } : {}) } : {}),
        ...(occurrence ? { occurrence } : {}),
      };
      const l = log({ connectionId: input.connectionId });

      const connection = await store.connections.findOne({ _id: input.connectionId });
      if (connection && connection.status === "Active") {
        const s = connection.schedule;
        await reconcile(connection._id);
        const superseded =
          !s || s.type === "manual"
            ? "the connection's schedule is manual now"
            : s.revision !== input.revision
              ? `the connection's schedule is at revision ${s.revision}, this fire is of revision ${input.revision}`
              : s.paused
                ? "the connection's schedule is paused"
                : undefined;
        if (superseded && fire.kind !== "trigger") {
          l.info(
            { scheduledDateTime: input.scheduledDateTime, reason: superseded },
            "schedule fire dropped: superseded",
          );
          metrics?.scheduleFires.inc({ outcome: "Superseded" });
          return { decision: "superseded", scheduledFor, reason: superseded };
        }
      }
      if (keys.length === 0) return { decision: "run", scheduledFor };

      const duplicate = (claimedBy: string | undefined): FireDecision => {
        l.info(
          { occurrence, scheduledDateTime: input.scheduledDateTime, claimedBy },
          "schedule fire dropped: its occurrence already had its scheduled run",
        );
        metrics?.scheduleFires.inc({ outcome: "Duplicate" });
        return { decision: "duplicate", scheduledFor, claimedBy: claimedBy ?? "?" };
      };
      if (fire.kind === "calendar") {
        const legacy = await people.scheduleClaims.findOne({
          _id: legacyOccurrenceKey(input.connectionId, input.revision, fire.localDate),
        });
        if (legacy) return duplicate(legacy.workflowId);
      }
      // The fire's own execution: a backfill over the same scheduled time again has the same workflow id, another run id.
      const runId = Context.current().info.workflowExecution.runId;
      const ours = (claim: { workflowId: string; workflowRunId?: string } | null) =>
        claim !== null && claim.workflowId === input.workflowId && claim.workflowRunId === runId;
      const mine: string[] = [];
      for (const key of keys) {
        try {
          await people.scheduleClaims.insertOne({
            _id: key,
            connectionId: input.connectionId,
            revision: input.revision,
            ...(fire.kind === "calendar" ? { localDate: fire.localDate } : {}),
            ...(occurrence ? { occurrence } : {}),
            scheduledDateTime: input.scheduledDateTime,
            workflowId: input.workflowId,
            workflowRunId: runId,
            claimedDateTime: new Date().toISOString(),
          });
          mine.push(key);
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
          const claim = await people.scheduleClaims.findOne({ _id: key });
          if (ours(claim)) continue; // our own claim, retried
          // Another fire had this day or week: give back what this fire claimed before it.
          for (const own of mine) await people.scheduleClaims.deleteOne({ _id: own, workflowRunId: runId });
          return duplicate(claim?.workflowId);
        }
      }
      return { decision: "run", scheduledFor };
    },

    /**
     * Starts the scheduled run on behalf of the connection's owner. Refused (run recorded Completed/Error with code
     * `UserNotAuthenticated`, no file touched) when the owner's token is not valid; Skipped (recorded Completed/Skipped,
     * reason `RunInProgress`) when the connection already has an active run. A deleted connection's schedule is
     * removed. Idempotent for retries: `runId` comes from the workflow.
     */
    async startScheduledRun(input: {
      connectionId: string;
      runId: string;
      workflowId: string;
      scheduledFor: ScheduledFor;
    }): Promise<ScheduledRunOutcome> {
      const { runId, scheduledFor } = input;
      const l = log({ connectionId: input.connectionId, runId });
      const connection = await store.connections.findOne({ _id: input.connectionId });
      if (!connection || connection.status !== "Active") {
        await removeSchedule(temporal, input.connectionId);
        l.warn("connection deleted or missing: its schedule is removed");
        metrics?.scheduleFires.inc({ outcome: "ConnectionGone" });
        return { outcome: "ConnectionGone" };
      }
      const now = new Date().toISOString();
      const owner = connection.ownerId ? await people.users.findOne({ _id: connection.ownerId }) : null;
      if (!owner || !tokenIsValid(owner.token, Date.now())) {
        const error: ErrorInfo = !owner
          ? {
              code: "UserNotAuthenticated",
              message: `Connection '${connection.displayName}' has no owner whose token could run a scheduled sync; give it an owner.`,
            }
          : {
              code: "UserNotAuthenticated",
              message: owner.token
                ? `The owner's token (${owner.email}) expired on ${owner.token.expiresDateTime}; scheduled syncs run on the owner's behalf and start again after the owner's next request to the service.`
                : `The owner (${owner.email}) has no token yet; it is issued at the owner's next request to the service.`,
              target: owner._id,
            };
        await recordCompletedRun(runId, connection, input.workflowId, scheduledFor, {
          result: "Error",
          error,
          ...(owner ? { ownerId: owner._id } : {}),
        });
        await noteLastScheduledRun(
          connection._id,
          { runId, scheduledDateTime: scheduledFor.scheduledDateTime, dateTime: now, outcome: "Refused", error },
          true,
        );
        l.warn({ error }, "scheduled run refused: the owner is not authenticated");
        metrics?.scheduleFires.inc({ outcome: "Refused" });
        return { outcome: "Refused", runId, error };
      }

      // The owner and occurrence are recorded with the run itself (no window where the run lacks them).
      const result = await requestRun(temporal, taskQueue, connection, "schedule", runId, undefined, {
        ownerId: owner._id,
        scheduledFor,
      });
      if (result.created || result.runId === runId) {
        await noteLastScheduledRun(
          connection._id,
          { runId, scheduledDateTime: scheduledFor.scheduledDateTime, dateTime: now, outcome: "Queued" },
          false,
        );
        l.info({ ownerId: owner._id, scheduledFor }, "scheduled run queued");
        metrics?.scheduleFires.inc({ outcome: "Queued" });
        return { outcome: "Queued", runId };
      }
      const reason: ErrorInfo = {
        code: "RunInProgress",
        message: `Run ${result.runId} of this connection was in progress when the schedule fired; scheduled runs never overlap another run of the same connection.`,
        target: result.runId,
      };
      await recordCompletedRun(runId, connection, input.workflowId, scheduledFor, {
        result: "Skipped",
        reason,
        ownerId: owner._id,
      });
      await noteLastScheduledRun(
        connection._id,
        { runId, scheduledDateTime: scheduledFor.scheduledDateTime, dateTime: now, outcome: "Skipped", reason },
        false,
      );
      l.info({ activeRunId: result.runId }, "scheduled run skipped: another run of the connection is active");
      metrics?.scheduleFires.inc({ outcome: "Skipped" });
      return { outcome: "Skipped", runId, activeRunId: result.runId };
    },
  };
}

export type ScheduleActivities = ReturnType<typeof createScheduleActivities>;
