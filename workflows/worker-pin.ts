/**
 * Worker affinity of a run's file activities (docs/architecture.md "Several workers"). Deterministic code only.
 *
 * A run is pinned to the worker that planned it: its plan names that worker's own task queue
 * (activities/worker-queue.ts). Each file activity is sent there with a schedule-to-start timeout; when the worker does
 * not start it in time (it died, or is busy with another iModel's long file), the workflow asks the shared queue for
 * a live worker and sends the activity to that one. Temporal never retries a schedule-to-start timeout itself
 * (it fails the activity), so the hand-over is the workflow's.
 */
import {
  ActivityFailure,
  log,
  patched,
  proxyActivities,
  TimeoutFailure,
  type ActivityOptions,
} from "@temporalio/workflow";
import type { WorkerQueueActivities } from "../activities/worker-queue";

/** The patch that introduced worker affinity: histories recorded before it keep every activity on the shared queue. */
export const WORKER_AFFINITY_PATCH = "worker-affinity";

/**
 * How long a pinned worker has to start a file activity before the run is handed over to another worker. Long enough
 * for a busy worker to finish a file of ordinary size; a dead worker costs this much on top of the heartbeat timeout.
 */
export const HANDOVER_AFTER = "30 seconds";

/** Asking for a live worker: any worker polling the shared queue answers at once; retried while none does. */
const queues = proxyActivities<WorkerQueueActivities>({
  startToCloseTimeout: "10 seconds",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
});

/** Whether an activity failed because no worker of its task queue started it within its schedule-to-start timeout. */
export function notStartedInTime(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === "SCHEDULE_TO_START"
  );
}

/** The worker a run's file activities go to, handed over when it stops taking them. */
export class WorkerPin {
  private constructor(
    private taskQueue: string | undefined,
    private readonly runId: string,
  ) {}

  /**
   * The pin of a run after its plan: the planning worker's own queue when the plan names it; a worker with room, asked
   * on the shared queue, when the planning worker was busy (`workerBusy`); unpinned (the shared queue) when the history
   * was recorded before worker affinity or the plan says neither. Call it once, right after the plan, in the same
   * place in every execution: it records the patch marker.
   */
  static async afterPlan(plan: { workerTaskQueue?: string; workerBusy?: boolean }, runId: string): Promise<WorkerPin> {
    if (!patched(WORKER_AFFINITY_PATCH)) return new WorkerPin(undefined, runId);
    if (plan.workerTaskQueue) return new WorkerPin(plan.workerTaskQueue, runId);
    if (plan.workerBusy) return new WorkerPin(await queues.workerTaskQueue({ runId }), runId);
    return new WorkerPin(undefined, runId);
  }

  /** The task queue file activities go to now; undefined: the shared one. */
  get current(): string | undefined {
    return this.taskQueue;
  }

  /**
   * Runs `call` with the options that send an activity to the pinned worker; when that worker did not start it within
   * {@link HANDOVER_AFTER}, asks for another worker and calls again (as often as needed: a run is never failed for a
   * worker that went away). Any other failure is thrown as is.
   * @param call schedules one activity with the given options (task queue and schedule-to-start timeout) and awaits it.
   */
  async run<T>(
    call: (options: Pick<ActivityOptions, "taskQueue" | "scheduleToStartTimeout">) => Promise<T>,
  ): Promise<T> {
    for (;;) {
      const taskQueue = this.taskQueue;
      try {
        return await call(taskQueue ? { taskQueue, scheduleToStartTimeout: HANDOVER_AFTER } : {});
      } catch (err) {
        if (!taskQueue || !notStartedInTime(err)) throw err;
        this.taskQueue = await queues.workerTaskQueue({ runId: this.runId });
        log.warn("the run's worker did not start its activity in time; handed over to another worker", {
          from: taskQueue,
          to: this.taskQueue,
        });
      }
    }
  }
}
