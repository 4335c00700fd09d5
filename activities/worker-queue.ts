/**
 * Worker affinity (docs/architecture.md "Several workers"): every worker process polls the shared task queue and a
 * task queue of its own, `<TEMPORAL_TASK_QUEUE>/worker/<host>/<pid>/<random>`, named anew at each start. A run's
 * workflow sends its file activities to the own queue of the worker that planned the run (the worker that already
 * holds the iModel open and parses the next file ahead), and asks {@link WorkerQueueActivities.workerTaskQueue} on
 * the shared queue for another worker when that one stops taking them (the pattern of Temporal's "worker-specific
 * task queues" sample).
 */
import { randomBytes } from "node:crypto";
import * as os from "node:os";

/**
 * A new name for this process's own task queue: the shared queue's name, then the host, the pid and 6 random hex
 * digits, so that a restarted process (or a pid reused later) never polls the queue of the process before it.
 */
export function newWorkerTaskQueue(sharedTaskQueue: string): string {
  return `${sharedTaskQueue}/worker/${os.hostname()}/${process.pid}/${randomBytes(3).toString("hex")}`;
}

/**
 * The activity a run's workflow calls on the shared task queue to be handed over to a live worker.
 * @param ownTaskQueue this process's own task queue ({@link newWorkerTaskQueue}).
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
