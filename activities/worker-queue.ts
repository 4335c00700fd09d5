/**
 * Worker affinity (docs/architecture.md "Several workers"): every worker process polls the shared task queue and a
 * task queue of its own, `<TEMPORAL_TASK_QUEUE>/worker/<host>/<instance>` ({@link workerTaskQueueName}). A run's
 * workflow sends its file activities to the own queue of the worker that planned the run (the worker that already
 * holds the iModel open and parses the next file ahead), and asks {@link WorkerQueueActivities.workerTaskQueue} on
 * the shared queue for another worker when that one stops taking them (the pattern of Temporal's "worker-specific
 * task queues" sample).
 */
import * as os from "node:os";

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

/**
 * The activity a run's workflow calls on the shared task queue to be handed over to a live worker.
 * @param ownTaskQueue this process's own task queue ({@link workerTaskQueueName}).
 */
export function createWorkerQueueActivities(ownTaskQueue: string) {
  return {
    /** The own task queue of the worker that runs this activity (any live worker polling the shared queue). */
    async workerTaskQueue(): Promise<string> {
      return ownTaskQueue;
    },
  };
}

export type WorkerQueueActivities = ReturnType<typeof createWorkerQueueActivities>;
