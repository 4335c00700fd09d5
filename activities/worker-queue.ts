/**
 * Worker affinity (docs/architecture.md "Several workers"): every worker process polls the shared task queue and a
 * task queue of its own, `<TEMPORAL_TASK_QUEUE>/worker/<host>/<instance>` ({@link workerTaskQueueName}). A run's
 * workflow sends its file activities to the own queue of the worker that planned the run (the worker that already
 * holds the iModel open and parses the next file ahead), and asks {@link WorkerQueueActivities.workerTaskQueue} on
 * the shared queue for another worker when that one stops taking them (the pattern of Temporal's "worker-specific
 * task queues" sample).
 */
import * as os from "node:os";
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";

/**
 * The name of this process's own task queue: the shared queue's name, the host, and the worker's instance number
 * (`WORKER_INSTANCE`, set by scripts/stack.sh for each worker it starts), so that a worker restarted after a crash
 * polls the same queue at once and takes over the file activities waiting there for the process before it. Without an
 * instance number the pid stands in (unique, but a restarted process then gets its runs back only by hand-over).
 * Two processes given the same instance on one host would share the queue: still correct (one run of an iModel at a
 * time, SQLite's lock on the `.bim`), only slower.
 * @param instance the worker's instance on this host (e.g. "1", "2"); absent or empty: `pid-<pid>`.
 */
export function workerTaskQueueName(sharedTaskQueue: string, instance?: string): string {
  return `${sharedTaskQueue}/worker/${os.hostname()}/${instance || `pid-${process.pid}`}`;
}

/** How many runs a worker takes at once: as many as its own queue has slots for file activities (worker/main.ts). */
export const RUNS_PER_WORKER = 2;

/**
 * Which runs a worker serves now, so that runs spread over the workers: a worker that plans a run while it already
 * serves {@link RUNS_PER_WORKER} others leaves the run to a worker with room (the run's workflow asks the shared queue,
 * and a busy worker declines a few times before it accepts, see {@link createWorkerQueueActivities}). A run counts as
 * served while one of its activities ran on this worker within the last `idleMs`.
 */
export class WorkerAffinity {
  private readonly seen = new Map<string, number>();

  /**
   * @param taskQueue this process's own task queue ({@link workerTaskQueueName}).
   * @param idleMs after how long (ms) without an activity a run no longer counts as served here.
   */
  constructor(
    readonly taskQueue: string,
    private readonly idleMs = 15_000,
  ) {}

  /** Notes that an activity of `runId` runs on this worker now. */
  note(runId: string): void {
    this.seen.set(runId, Date.now());
  }

  /** Whether this worker serves {@link RUNS_PER_WORKER} runs other than `runId`. */
  busy(runId: string): boolean {
    const since = Date.now() - this.idleMs;
    let others = 0;
    for (const [id, at] of this.seen) {
      if (at < since) this.seen.delete(id);
      else if (id !== runId) others++;
    }
    return others >= RUNS_PER_WORKER;
  }

  /** This worker's own queue for a run it planned, when it has room (the run is then served here); else undefined. */
  claim(runId: string): string | undefined {
    if (this.busy(runId)) return undefined;
    this.note(runId);
    return this.taskQueue;
  }
}

/** Times a busy worker declines to take a run before it takes it all the same (every worker may be busy). */
const DECLINES = 3;

/**
 * The activity a run's workflow calls on the shared task queue to find a worker for its files: after planning on a
 * busy worker, and to be handed over to a live worker.
 * @param affinity this process's runs ({@link WorkerAffinity}).
 */
export function createWorkerQueueActivities(affinity: WorkerAffinity) {
  return {
    /**
     * The own task queue of the worker that runs this activity (any live worker polling the shared queue). A worker
     * that serves {@link RUNS_PER_WORKER} other runs declines with a retryable `WorkerBusy` failure (Temporal retries
     * after its backoff, and another worker may take it), at most {@link DECLINES} times.
     * @param input the run to serve (absent in histories before it).
     */
    async workerTaskQueue(input?: { runId: string }): Promise<string> {
      if (!input) return affinity.taskQueue;
      if (affinity.busy(input.runId) && Context.current().info.attempt <= DECLINES)
        throw ApplicationFailure.retryable(`worker ${affinity.taskQueue} serves other runs`, "WorkerBusy");
      affinity.note(input.runId);
      return affinity.taskQueue;
    },
  };
}

export type WorkerQueueActivities = ReturnType<typeof createWorkerQueueActivities>;
