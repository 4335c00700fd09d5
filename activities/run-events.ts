/**
 * What follows the end of a run, wherever it ends (the iModel queue's `completeRun`, or a scheduled fire recorded as
 * Refused or Skipped without reaching the queue): the metrics of completed runs, the webhook events `run.completed`
 * and `run.failed` (README.md "Webhooks"), and, for scheduled runs, the failure notices: the owner's email (at most one
 * per connection per UTC day) and the pause after consecutive failures (docs/product-rules.md "Failure notices").
 * Every step is idempotent, so a retried activity repeats none of them.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from "@temporalio/client";
import {
  failureNoticesOf,
  nextStreak,
  noticeDay,
  streakEffect,
  type ScheduledFailureStreak,
} from "../domain/failure-notices";
import type { RunRecord } from "../domain/model";
import { runEventData, runFailed } from "../domain/webhooks";
import { updateConnection } from "../lib/connection-writes";
import type { Store } from "../lib/db";
import type { Logger } from "../lib/logger";
import type { WorkerMetrics } from "../lib/metrics";
import { readRunTasks } from "../lib/run-tasks";
import { pauseSchedule } from "../lib/schedules";
import type { WebhookEmitter } from "../lib/webhooks";

export interface RunEventDeps {
  store: Store;
  logger: Logger;
  temporal: Client;
  taskQueue: string;
  metrics?: WorkerMetrics;
  emitter?: WebhookEmitter;
}

/** Input of the notice workflows about failed scheduled runs (workflows/notices.ts). */
export interface RunFailureNotice {
  /** The notice's `_id` in `notices` (claimed once). */
  noticeId: string;
  connectionId: string;
  runId: string;
}

/** Who pauses a schedule after failed scheduled runs (the schedule's `updatedBy`). */
export const FAILURE_PAUSER = "failure-notices";

export interface RunEvents {
  /**
   * Everything that follows the end of run `runId` (see the module comment).
   * @param firstTime false when the run was already Completed before (a retried completion): not counted again.
   * @throws MongoDB's and Temporal's errors (the caller's activity retries; every step is idempotent).
   */
  runEnded(runId: string, firstTime: boolean): Promise<void>;
}

/**
 * What follows the end of a run (see {@link RunEvents} and the module comment): called by `completeRun` and by the
 * schedule activities for runs they record Completed themselves.
 */
export function createRunEvents({ store, logger, temporal, taskQueue, metrics, emitter }: RunEventDeps): RunEvents {
  /** Starts a notice workflow once (its id names the notice: a second start of the same id does nothing). */
  async function startNotice(workflowType: string, workflowId: string, input: RunFailureNotice, summary: string) {
    try {
      await temporal.workflow.start(workflowType, {
        workflowId,
        taskQueue,
        args: [input],
        workflowIdReusePolicy: "REJECT_DUPLICATE",
        staticSummary: summary,
      });
      return true;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
      throw err;
    }
  }

  /** The streak of failed scheduled runs, the failure email and the pause (docs/product-rules.md "Failure notices"). */
  async function scheduledFailures(run: RunRecord): Promise<void> {
    const effect = streakEffect(run);
    if (effect === "none") return;
    if (!(await store.connections.findOne({ _id: run.connectionId }, { projection: { _id: 1 } }))) return;
    const at = run.endDateTime ?? new Date().toISOString();
    let streak: ScheduledFailureStreak | undefined;
    const connection = await updateConnection(store, run.connectionId, (c) => {
      const next = nextStreak(c.scheduledFailures, run._id, effect, at);
      streak = next ?? c.scheduledFailures;
      return next ? { $set: { scheduledFailures: next } } : undefined;
    });
    if (effect !== "failure" || !streak || streak.lastRunId !== run._id) return;
    const settings = failureNoticesOf(connection);
    const l = logger.child({ connectionId: connection._id, runId: run._id });
    if (settings.enabled) {
      const noticeId = `run-failure:${connection._id}:${noticeDay(at)}`;
      const started = await startNotice(
        "runFailureNoticeWorkflow",
        `notice/${noticeId}`,
        { noticeId, connectionId: connection._id, runId: run._id },
        `Failure notice: scheduled run of "${connection.displayName}" ended ${run.result}`,
      );
      l.info({ noticeId, started }, started ? "failure notice queued" : "failure notice already sent today");
    }
    if (settings.pauseAfter > 0 && streak.consecutive >= settings.pauseAfter) {
      const note = `paused after ${streak.consecutive} failed scheduled runs in a row (the last: run ${run._id}, ${run.result}); resume it once the files are fixed`;
      const paused = await pauseSchedule(store, temporal, taskQueue, connection._id, note, FAILURE_PAUSER);
      if (paused) {
        l.warn({ consecutive: streak.consecutive }, "schedule paused after failed scheduled runs");
        if (settings.enabled) {
          const noticeId = `schedule-paused:${connection._id}:${run._id}`;
          await startNotice(
            "schedulePausedNoticeWorkflow",
            `notice/${noticeId}`,
            { noticeId, connectionId: connection._id, runId: run._id },
            `Schedule paused notice: "${connection.displayName}" after ${streak.consecutive} failed scheduled runs`,
          );
        }
      }
    }
  }

  return {
    async runEnded(runId: string, firstTime: boolean): Promise<void> {
      const run = await store.runs.findOne({ _id: runId });
      if (!run || run.state !== "Completed") return;
      if (firstTime) metrics?.runsCompleted.inc({ trigger: run.trigger, kind: run.kind ?? "sync", result: run.result });
      if (emitter) {
        const [tasks, connection, iModel] = await Promise.all([
          readRunTasks(store, run),
          store.connections.findOne({ _id: run.connectionId }),
          store.imodels.findOne({ _id: run.iModelId }),
        ]);
        const data = runEventData(run, tasks, connection, iModel);
        const base = { iModelIds: [run.iModelId], data: () => data, dateTime: run.endDateTime };
        await emitter.emit({ ...base, type: "run.completed", eventId: `run.completed:${run._id}` });
        if (runFailed(run.result))
          await emitter.emit({ ...base, type: "run.failed", eventId: `run.failed:${run._id}` });
      }
      await scheduledFailures(run);
    },
  };
}
