/**
 * Workflows (deterministic code only: no I/O, clocks or randomness outside Temporal's APIs).
 *
 * - `imodelWorkflow`: one per iModel, id `imodel/<iModelId>`. It is the iModel's single writer: it queues runs of
 *   all the iModel's connections and executes them one at a time as child workflows, so writes to one `.bim` never
 *   overlap (DESIGN.md: a `.bim` has one writer). It also holds the "one active run per connection" rule.
 * - `syncWorkflow`: one per run, id `sync/<connectionId>/<runId>`: plans the run's tasks, then synchronizes each
 *   mapped file in an activity that commits that file's changes on its own.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from "@temporalio/workflow";
import type * as acts from "../activities/activities";
import type { PlannedTask, TaskOutcome } from "../activities/activities";
import { runWorkflowId, RUN_TRIGGERS, type ErrorInfo } from "../domain/model";
import { SEARCH_ATTRIBUTES } from "../lib/temporal";
import { queueStateQuery, requestRunUpdate, type IModelQueueState, type QueuedRun, type RunRequest } from "./definitions";

export * from "./definitions";
export * from "./owner";
export * from "./scheduled";

type Activities = ReturnType<typeof acts.createActivities>;

/** Bookkeeping activities: short, retried with backoff while MongoDB is unreachable. */
const records = proxyActivities<Activities>({
  startToCloseTimeout: "30 seconds",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
});

/** Planning: hashes every mapped file to decide what changed, so it may take a while on large sources. */
const planning = proxyActivities<Activities>({
  startToCloseTimeout: "10 minutes",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
});

/** The file activity: parse + write one file. Retried a few times for transient faults (a file's own faults are task results, not retries). */
const files = proxyActivities<Activities>({
  startToCloseTimeout: "30 minutes",
  // A worker that dies mid-file is noticed within this time and the file is retried on another attempt (the writer
  // commits per file, so a retry never duplicates). Heartbeats are sent between the read, parse and write steps.
  heartbeatTimeout: "3 minutes",
  // Faults of the service (MongoDB or the iModel unavailable) are retried for about ten minutes; bad element data is not.
  retry: { initialInterval: "2 seconds", backoffCoefficient: 2, maximumInterval: "30 seconds", maximumAttempts: 25, nonRetryableErrorTypes: ["WriterDataError"] },
});

/** History length after which an idle iModel queue continues as new. */
const CONTINUE_AS_NEW_AFTER_EVENTS = 2_000;

/** See the module comment. `state` is the carried-over queue (empty on first start). */
export async function imodelWorkflow(state: IModelQueueState): Promise<void> {
  const queue: QueuedRun[] = [...state.queue];
  let active: QueuedRun | undefined;
  /** Runs that are queued or executing, by connection id. */
  const activeByConnection = new Map<string, string>(queue.map((r) => [r.connectionId, r.runId]));

  setHandler(queueStateQuery, () => ({ iModelId: state.iModelId, queue: [...queue], active }));

  setHandler(
    requestRunUpdate,
    async (request: RunRequest) => {
      const existing = activeByConnection.get(request.connectionId);
      if (existing) return { runId: existing, created: false };
      // Claim the connection before the first await, so a concurrent request sees it.
      activeByConnection.set(request.connectionId, request.runId);
      try {
        await records.recordRunQueued({
          runId: request.runId,
          connectionId: request.connectionId,
          iModelId: state.iModelId,
          trigger: request.trigger,
          workflowId: runWorkflowId(request.connectionId, request.runId),
          ...(request.ownerId ? { ownerId: request.ownerId } : {}),
          ...(request.scheduledFor ? { scheduledFor: request.scheduledFor } : {}),
        });
      } catch (err) {
        activeByConnection.delete(request.connectionId);
        throw ApplicationFailure.nonRetryable(`could not record the run: ${String(err)}`, "RunNotRecorded");
      }
      queue.push({ runId: request.runId, connectionId: request.connectionId, trigger: request.trigger });
      return { runId: request.runId, created: true };
    },
    {
      validator: (request: RunRequest) => {
        if (!request || typeof request.runId !== "string" || typeof request.connectionId !== "string") {
          throw new Error("runId and connectionId are required");
        }
        if (!(RUN_TRIGGERS as readonly string[]).includes(request.trigger)) throw new Error(`unknown trigger ${request.trigger}`);
      },
    },
  );

  for (;;) {
    await condition(() => queue.length > 0 || workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > CONTINUE_AS_NEW_AFTER_EVENTS);
    const next = queue.shift();
    if (!next) {
      // Idle and the history is long: start afresh once no update handler is mid-way.
      await condition(allHandlersFinished);
      if (queue.length === 0) await continueAsNew<typeof imodelWorkflow>({ iModelId: state.iModelId, queue: [] });
      continue;
    }
    active = next;
    let error: ErrorInfo | undefined;
    try {
      ({ error } = await executeChild(syncWorkflow, {
        workflowId: runWorkflowId(next.connectionId, next.runId),
        args: [{ runId: next.runId, connectionId: next.connectionId, iModelId: state.iModelId, trigger: next.trigger }],
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTES.connectionId, value: next.connectionId },
          { key: SEARCH_ATTRIBUTES.iModelId, value: state.iModelId },
          { key: SEARCH_ATTRIBUTES.runTrigger, value: next.trigger },
        ],
      }));
    } catch (err) {
      log.error("run workflow failed", { runId: next.runId, error: String(err) });
      error = { code: "RunFailed", message: String(err) };
    } finally {
      active = undefined;
      activeByConnection.delete(next.connectionId);
    }
    // Completed only once the connection is free again: a request that sees the run Completed starts a new run
    // (never a 303 to a finished run).
    await records.completeRun({ runId: next.runId, error });
  }
}

/** What a run workflow hands back to its iModel queue, which then completes the run record. */
export interface SyncOutcome {
  /** Set when the run could not be planned (the run's result becomes Error with this error). */
  error?: ErrorInfo;
}

/** Input of one run. */
export interface SyncInput {
  runId: string;
  connectionId: string;
  iModelId: string;
  trigger: (typeof RUN_TRIGGERS)[number];
}

/**
 * One synchronization (run) of a connection. Phase MasterFile: each composite model, in mapping order. Phase
 * ReferenceFile: each reference file they name, once per run even when several composites share it (and not at all
 * when it is itself a composite of the connection). Each file commits on its own.
 */
export async function syncWorkflow(input: SyncInput): Promise<SyncOutcome> {
  const plan = await planning.beginRun({ runId: input.runId });
  if (!plan.ok) return { error: plan.error };
  const queue: PlannedTask[] = [...plan.tasks];
  const planned = new Map<string, PlannedTask | undefined>(queue.map((t) => [t.sourceFileId, t]));
  for (const id of plan.skipped) planned.set(id, undefined); // unchanged: done, never run again in this run
  let nextIndex = plan.tasks.length + plan.skipped.length;
  while (queue.length > 0) {
    const task = queue.shift()!;
    const outcome = await runTask(input, task);
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
  await records.finalizeRun({ runId: input.runId });
  return {};
}

async function runTask(input: SyncInput, task: PlannedTask): Promise<TaskOutcome> {
  try {
    return await files.syncSourceFile({ runId: input.runId, connectionId: input.connectionId, iModelId: input.iModelId, task });
  } catch (err) {
    const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
    const type = cause instanceof ApplicationFailure ? cause.type : undefined;
    const error: ErrorInfo = {
      // WriterDataError: the file's data cannot be written (e.g. non-finite coordinates); anything else: retries ran out.
      code: type === "WriterDataError" ? "InvalidElementData" : "TaskFailed",
      message: cause instanceof Error ? cause.message : String(cause),
      target: task.path,
    };
    await records.failTask({ runId: input.runId, connectionId: input.connectionId, task, error });
    return { result: "Error", references: [] };
  }
}
