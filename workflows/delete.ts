/**
 * `deleteWorkflow`: one per delete job, id `delete/<connectionId>/<runId>`, a child of the iModel's queue
 * (`workflows/imodel-queue.ts`). It removes files' data (a connection deleted with `deleteData`, or composite models
 * unmapped with `deleteData`), one file per transaction. Deterministic code only.
 */
import { proxyActivities, type ActivityOptions } from "@temporalio/workflow";
import type * as deletion from "../activities/deletion";
import type { RunRecordActivities } from "../activities/run-records";
import type { ErrorInfo } from "../domain/model";
import { activityError } from "./activity-errors";
import { WorkerPin } from "./worker-pin";
import type { SyncInput, SyncOutcome } from "./sync";

type DeleteActivities = ReturnType<typeof deletion.createDeletionActivities>;

/** Planning and ending a delete job: bounded retries, so a damaged iModel ends the job (Error) instead of blocking its queue. */
const deletePlanning = proxyActivities<Pick<DeleteActivities, "beginDeleteJob" | "finishDeleteJob">>({
  startToCloseTimeout: "10 minutes",
  retry: { initialInterval: "2 seconds", backoffCoefficient: 2, maximumInterval: "30 seconds", maximumAttempts: 25 },
});

/** Delete jobs: removing one file's data is one short transaction; a dead worker is noticed within 30 s. */
const removalOptions: ActivityOptions = {
  startToCloseTimeout: "10 minutes",
  heartbeatTimeout: "30 seconds",
  // Retried for about ten minutes (MongoDB or the iModel unavailable); each attempt is idempotent.
  retry: { initialInterval: "2 seconds", backoffCoefficient: 2, maximumInterval: "30 seconds", maximumAttempts: 25 },
};
/** Removing a file's data on the job's worker (workflows/worker-pin.ts), or on the shared queue. */
const removalsOn = (options: ActivityOptions) =>
  proxyActivities<Pick<DeleteActivities, "removeFileData">>({ ...removalOptions, ...options });

/** Bookkeeping activities: short, retried with backoff while MongoDB is unreachable. */
const records = proxyActivities<Pick<RunRecordActivities, "failTask" | "finalizeRun">>({
  startToCloseTimeout: "30 seconds",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
});

/** Input of a delete job. */
export interface DeleteInput extends SyncInput {
  /** The files whose data to remove (an unmapped composite model and its references); absent: the whole connection. */
  sourceFileIds?: string[];
}

/**
 * A delete job (a run with kind `delete`): removes the data of the given files, or of every file of the connection
 * and then the connection itself, one file per transaction. It is not cancellable (its queue never asks), and every
 * step is idempotent: after a worker crash the retried step finishes what the crashed one began
 * (docs/product-rules.md "Delete, two modes": a delete job is never cancelled half way).
 */
export async function deleteWorkflow(input: DeleteInput): Promise<SyncOutcome> {
  const failed = (step: string, err: unknown): SyncOutcome => ({
    error: { code: "DeleteJobFailed", message: `${step}: ${activityError(err).message}; delete again to resume` },
  });
  let plan;
  try {
    plan = await deletePlanning.beginDeleteJob({ runId: input.runId });
  } catch (err) {
    return failed("planning the delete job", err);
  }
  if (!plan.ok) return { error: plan.error };
  // Each file's removal goes to the worker that planned the job, handed over when it goes away.
  const pin = await WorkerPin.afterPlan(plan, input.runId);
  for (const task of plan.tasks) {
    try {
      // The activity's summary in the Temporal UI is the file's path (user metadata, not part of the commands).
      await pin.run((options) =>
        removalsOn(options).removeFileData.executeWithOptions({ summary: `remove ${task.path}` }, [
          {
            runId: input.runId,
            connectionId: input.connectionId,
            iModelId: input.iModelId,
            task,
          },
        ]),
      );
    } catch (err) {
      const error: ErrorInfo = { code: "TaskFailed", message: activityError(err).message, target: task.path };
      await records.failTask({ runId: input.runId, connectionId: input.connectionId, task, error });
    }
  }
  try {
    await deletePlanning.finishDeleteJob({ runId: input.runId });
  } catch (err) {
    return failed("removing the connection's Subject", err);
  }
  const summary = await records.finalizeRun({ runId: input.runId });
  return summary ? { summary } : {};
}
