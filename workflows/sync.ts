/**
 * `syncWorkflow`: one per run, id `sync/<connectionId>/<runId>`, a child of the iModel's queue
 * (`workflows/imodel-queue.ts`). It plans the run's tasks, then synchronizes each mapped file in an activity that
 * commits that file's changes on its own. Cancellable between files. Deterministic code only.
 */
import { CancellationScope, proxyActivities, setCurrentDetails, type ActivityOptions } from "@temporalio/workflow";
import type { FileSyncActivities, TaskOutcome } from "../activities/file-sync";
import type { PlannedTask, RunRecordActivities, RunSummary } from "../activities/run-records";
import type { ErrorInfo, RunTrigger } from "../domain/model";
import { activityError } from "./activity-errors";
import { WorkerPin } from "./worker-pin";

/** Planning: hashes every mapped file to decide what changed, so it may take a while on large sources. */
const planning = proxyActivities<Pick<FileSyncActivities, "beginRun">>({
  startToCloseTimeout: "10 minutes",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
});

/** The file activity: parse + write one file. Retried a few times for transient faults (a file's own faults are task results, not retries). */
const fileOptions: ActivityOptions = {
  startToCloseTimeout: "30 minutes",
  // A worker that dies mid-file is noticed within this time and the file is retried on another attempt (the writer
  // commits per file, so a retry never duplicates). The activity beats every 5 s throughout: the parse runs in a
  // parser thread and the writer beats from its element loop (docs/architecture.md "Heartbeats").
  heartbeatTimeout: "30 seconds",
  // Faults of the service (MongoDB or the iModel unavailable) and a file that changes while it is read
  // (FileChangedDuringRead) are retried for about ten minutes.
  retry: {
    initialInterval: "2 seconds",
    backoffCoefficient: 2,
    maximumInterval: "30 seconds",
    maximumAttempts: 25,
    nonRetryableErrorTypes: ["WriterDataError"],
  },
};
/** The file activity on the run's worker (workflows/worker-pin.ts), or on the shared queue. */
const filesOn = (options: ActivityOptions) =>
  proxyActivities<Pick<FileSyncActivities, "syncSourceFile">>({ ...fileOptions, ...options });

/** Bookkeeping activities: short, retried with backoff while MongoDB is unreachable. */
const records = proxyActivities<Pick<RunRecordActivities, "failTask" | "finalizeRun">>({
  startToCloseTimeout: "30 seconds",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
});

/** What a run workflow hands back to its iModel queue, which then completes the run record. */
export interface SyncOutcome {
  /** Set when the run could not be planned (the run's result becomes Error with this error). */
  error?: ErrorInfo;
  /** Set when the run stopped early (cancelled, or its connection was deleted): the run's result becomes Cancelled. */
  cancelled?: ErrorInfo;
  /**
   * When every file was handled: the result its tasks give, each file with its result and element counts (shown as
   * the workflow's result in the Temporal UI; absent in histories of releases before it).
   */
  summary?: RunSummary;
}

/** Input of one run. */
export interface SyncInput {
  runId: string;
  connectionId: string;
  iModelId: string;
  trigger: RunTrigger;
  /** Apply the deletions the connection's deletion guard would hold (the run was asked with it). Absent: false. */
  confirmDeletions?: boolean;
}

/** The run's own cancellation (requested by its iModel queue) was asked. */
const cancelAsked = () => CancellationScope.current().consideredCancelled;

/**
 * One synchronization (run) of a connection. Phase MasterFile: each composite model, in mapping order. Phase
 * ReferenceFile: each reference file they name, once per run even when several composites share it (and not at all
 * when it is itself a composite of the connection). Each file commits on its own.
 *
 * Cancellation (Temporal's, requested by the iModel queue): the file being written is finished (activities run in
 * non-cancellable scopes, so the iModel only ever holds whole files' work), no further file starts, and the outcome
 * says `cancelled`; the queue then completes the remaining tasks as Cancelled.
 */
export async function syncWorkflow(input: SyncInput): Promise<SyncOutcome> {
  const cancelled: ErrorInfo = { code: "RunCancelled", message: "the run was cancelled" };
  const plan = await CancellationScope.nonCancellable(() => planning.beginRun({ runId: input.runId }));
  if (!plan.ok) return plan.cancelled ? { cancelled: plan.cancelled } : { error: plan.error };
  // The files go to the worker that planned the run (it holds the iModel open), handed over when it goes away.
  const pin = await WorkerPin.afterPlan(plan, input.runId);
  const queue: PlannedTask[] = [...plan.tasks];
  const planned = new Map<string, PlannedTask | undefined>(queue.map((t) => [t.sourceFileId, t]));
  for (const id of plan.skipped) planned.set(id, undefined); // unchanged: done, never run again in this run
  let nextIndex = plan.tasks.length + plan.skipped.length;
  let done = 0;
  while (queue.length > 0) {
    if (cancelAsked()) return { cancelled };
    const task = queue.shift()!;
    // The Temporal UI's "current details" (a query, not a command): the file being synchronized.
    setCurrentDetails(
      `Synchronizing ${task.path} (${task.phase}), file ${++done} of ${done + queue.length} to synchronize; ${plan.skipped.length} unchanged`,
    );
    const outcome = await CancellationScope.nonCancellable(() => runTask(input, pin, task, queue[0]));
    // The worker found the connection deleted (its cancellation request may not have arrived, e.g. Temporal was down).
    if (outcome.result === "Cancelled")
      return { cancelled: { code: "ConnectionDeleted", message: "the connection was deleted during the run" } };
    for (const ref of outcome.references) {
      if (planned.has(ref.sourceFileId)) {
        const known = planned.get(ref.sourceFileId);
        if (known?.phase === "ReferenceFile" && !known.referencedBy?.includes(task.sourceFileId)) {
          known.referencedBy = [...(known.referencedBy ?? []), task.sourceFileId];
        }
        continue;
      }
      const next: PlannedTask = { ...ref, index: nextIndex++ };
      planned.set(next.sourceFileId, next);
      queue.push(next);
    }
  }
  if (cancelAsked()) return { cancelled };
  const summary = await CancellationScope.nonCancellable(() => records.finalizeRun({ runId: input.runId }));
  setCurrentDetails(summary ? `Done: ${summary.result}, ${summary.files.length} files` : "Done");
  return summary ? { summary } : {};
}

/**
 * Synchronizes one file; a file activity whose retries ran out completes its task as Error here. `next` (the task after
 * it as planned now) only lets the worker parse that file ahead; it changes no command.
 */
async function runTask(
  input: SyncInput,
  pin: WorkerPin,
  task: PlannedTask,
  next: PlannedTask | undefined,
): Promise<TaskOutcome> {
  try {
    // The activity's summary in the Temporal UI is the file's path (user metadata, not part of the commands).
    return await pin.run((options) =>
      filesOn(options).syncSourceFile.executeWithOptions({ summary: `${task.phase}: ${task.path}` }, [
        {
          runId: input.runId,
          connectionId: input.connectionId,
          iModelId: input.iModelId,
          task,
          ...(input.confirmDeletions ? { confirmDeletions: true } : {}),
          ...(next ? { next } : {}),
        },
      ]),
    );
  } catch (err) {
    const { type, message } = activityError(err);
    const error: ErrorInfo = {
      // FileChangedDuringRead: the file kept changing while it was read, on every attempt. WriterDataError: the
      // whole file's data could not be written (releases before element-level InvalidElementData; kept for their
      // histories). Anything else: retries ran out.
      code:
        type === "FileChangedDuringRead"
          ? "FileChangedDuringRead"
          : type === "WriterDataError"
            ? "InvalidElementData"
            : "TaskFailed",
      message,
      target: task.path,
    };
    await records.failTask({ runId: input.runId, connectionId: input.connectionId, task, error });
    return { result: "Error", references: [] };
  }
}
