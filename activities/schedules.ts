/**
 * Activities of `scheduledRunWorkflow`: decide which occurrence a fire is for (and drop duplicates of a local day),
 * then start the run on behalf of the connection's owner, or record why it did not run.
 */
import type { Client } from "@temporalio/client";
import type { ConnectionRecord, ErrorInfo, RunRecord } from "../domain/model";
import {
  classifyFire,
  occurrenceKey,
  type LastScheduledRun,
  type ScheduledFor,
  type ScheduledRunInput,
} from "../domain/schedule";
import { tokenIsValid } from "../domain/token";
import { isDuplicateKey, peopleCollections } from "../lib/collections";
import { updateConnection } from "../lib/connection-writes";
import type { Store } from "../lib/db";
import { activityLogger, type Logger } from "../lib/logger";
import { requestRun } from "../lib/runs";
import { removeSchedule } from "../lib/schedules";

export interface ScheduleActivityDeps {
  store: Store;
  logger: Logger;
  temporal: Client;
  taskQueue: string;
}

export type FireDecision =
  | { decision: "run"; scheduledFor: ScheduledFor }
  | { decision: "duplicate"; scheduledFor: ScheduledFor; claimedBy: string };

export type ScheduledRunOutcome =
  | { outcome: "Queued"; runId: string }
  | { outcome: "Skipped"; runId: string; activeRunId: string }
  | { outcome: "Refused"; runId: string; error: ErrorInfo }
  | { outcome: "ConnectionGone" };

export function createScheduleActivities({ store, logger, temporal, taskQueue }: ScheduleActivityDeps) {
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
    await store.runs.updateOne({ _id: runId }, { $setOnInsert: record }, { upsert: true });
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

  return {
    /**
     * Which occurrence a fire belongs to (see `classifyFire`); for a daily/weekly occurrence, claims it: the first fire
     * of a local day runs, later ones (DST catcher on ordinary days, a second pass through a fall-back overlap) are
     * duplicates. Idempotent for retries of the same workflow.
     */
    async classifyScheduledFire(
      input: ScheduledRunInput & { scheduledDateTime: string; workflowId: string },
    ): Promise<FireDecision> {
      const fire = classifyFire(input.schedule, new Date(input.scheduledDateTime));
      const base = { scheduledDateTime: input.scheduledDateTime, revision: input.revision };
      if (fire.kind !== "calendar") return { decision: "run", scheduledFor: { ...base, kind: fire.kind } };
      const timeZone =
        input.schedule.type === "daily" || input.schedule.type === "weekly" ? input.schedule.timeZone : undefined;
      const scheduledFor: ScheduledFor = {
        ...base,
        kind: "calendar",
        localDate: fire.localDate,
        ...(timeZone ? { timeZone } : {}),
      };
      const key = occurrenceKey(input.connectionId, input.revision, fire.localDate);
      try {
        await people.scheduleClaims.insertOne({
          _id: key,
          connectionId: input.connectionId,
          revision: input.revision,
          localDate: fire.localDate,
          scheduledDateTime: input.scheduledDateTime,
          workflowId: input.workflowId,
          claimedDateTime: new Date().toISOString(),
        });
        return { decision: "run", scheduledFor };
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        const claim = await people.scheduleClaims.findOne({ _id: key });
        if (claim?.workflowId === input.workflowId) return { decision: "run", scheduledFor }; // our own claim, retried
        log({ connectionId: input.connectionId }).info(
          { localDate: fire.localDate, scheduledDateTime: input.scheduledDateTime, claimedBy: claim?.workflowId },
          "schedule fire dropped: the occurrence of its local day already ran (DST catcher or repeated wall time)",
        );
        return { decision: "duplicate", scheduledFor, claimedBy: claim?.workflowId ?? "?" };
      }
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
      return { outcome: "Skipped", runId, activeRunId: result.runId };
    },
  };
}

export type ScheduleActivities = ReturnType<typeof createScheduleActivities>;
