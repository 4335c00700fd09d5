/**
 * Workflows (deterministic code only: no I/O, clocks or randomness outside Temporal's APIs).
 *
 * - `imodelWorkflow`: one per iModel, id `imodel/<iModelId>`. It is the iModel's single writer: it queues runs of
 *   all the iModel's connections and executes them one at a time as child workflows, so writes to one `.bim` never
 *   overlap (docs/architecture.md "One writer per iModel"). It also holds the "one active run per connection" rule.
 * - `syncWorkflow`: one per run, id `sync/<connectionId>/<runId>`: plans the run's tasks, then synchronizes each
 *   mapped file in an activity that commits that file's changes on its own. Cancellable between files.
 * - `deleteWorkflow`: one per delete job, id `delete/<connectionId>/<runId>`: removes files' data (a connection
 *   deleted with `deleteData`, or composite models unmapped with `deleteData`), one file per transaction.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from "@temporalio/workflow";
import type * as acts from "../activities/activities";
import type * as deletion from "../activities/deletion";
import type { PlannedTask, TaskOutcome } from "../activities/activities";
import { deleteWorkflowId, runWorkflowId, RUN_TRIGGERS, type ErrorInfo } from "../domain/model";
import { SEARCH_ATTRIBUTES } from "../domain/search-attributes";
import {
  cancelRunUpdate,
  queueStateQuery,
  requestRunUpdate,
  type CancelRequest,
  type CancelResult,
  type IModelQueueState,
  type QueuedRun,
  type RunRequest,
} from "./definitions";

export * from "./definitions";
export * from "./owner";
export * from "./scheduled";

type Activities = ReturnType<typeof acts.createActivities> & ReturnType<typeof deletion.createDeletionActivities>;

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
  retry: {
    initialInterval: "2 seconds",
    backoffCoefficient: 2,
    maximumInterval: "30 seconds",
    maximumAttempts: 25,
    nonRetryableErrorTypes: ["WriterDataError"],
  },
});

/** Delete jobs: removing one file's data is one short transaction; a dead worker is noticed within 30 s. */
const removals = proxyActivities<Activities>({
  startToCloseTimeout: "10 minutes",
  heartbeatTimeout: "30 seconds",
  // Retried for about ten minutes (MongoDB or the iModel unavailable); each attempt is idempotent.
  retry: { initialInterval: "2 seconds", backoffCoefficient: 2, maximumInterval: "30 seconds", maximumAttempts: 25 },
});

/** Planning and ending a delete job: bounded retries, so a damaged iModel ends the job (Error) instead of blocking its queue. */
const deletePlanning = proxyActivities<Activities>({
  startToCloseTimeout: "10 minutes",
  retry: { initialInterval: "2 seconds", backoffCoefficient: 2, maximumInterval: "30 seconds", maximumAttempts: 25 },
});

/** History length after which an idle iModel queue continues as new. */
const CONTINUE_AS_NEW_AFTER_EVENTS = 2_000;

const sameFiles = (a?: string[], b?: string[]) =>
  a === undefined || b === undefined
    ? a === b
    : a.length === b.length && [...a].sort().join("\0") === [...b].sort().join("\0");

/** See the module comment. `state` is the carried-over queue (empty on first start). */
export async function imodelWorkflow(state: IModelQueueState): Promise<void> {
  const queue: QueuedRun[] = [...state.queue];
  let active: QueuedRun | undefined;
  /** Cancels the executing child workflow (only ever a sync run's). */
  let activeScope: CancellationScope | undefined;
  /** Runs that are queued, being recorded or executing, by connection id, oldest first. */
  const pending = new Map<string, QueuedRun[]>();
  const track = (r: QueuedRun) => pending.set(r.connectionId, [...(pending.get(r.connectionId) ?? []), r]);
  const untrack = (r: QueuedRun) => {
    const rest = (pending.get(r.connectionId) ?? []).filter((x) => x.runId !== r.runId);
    if (rest.length > 0) pending.set(r.connectionId, rest);
    else pending.delete(r.connectionId);
  };
  for (const r of queue) track(r);
  /** Runs whose cancellation was asked, with the reason recorded on them. */
  const cancelRequested = new Map<string, ErrorInfo>();

  /**
   * Cancels sync runs of a connection: a queued one is taken off the queue and completed as Cancelled; the executing
   * one gets a cancellation request (it stops after the file being written); one still being recorded is completed as
   * Cancelled once recorded. Delete jobs are never cancelled.
   */
  async function cancel(request: CancelRequest): Promise<CancelResult> {
    const result: CancelResult = { cancelled: [], notCancellable: [] };
    for (const r of [...(pending.get(request.connectionId) ?? [])]) {
      if (request.runId !== undefined && r.runId !== request.runId) continue;
      if (r.kind === "delete") {
        if (request.runId !== undefined) result.notCancellable.push(r.runId);
        continue;
      }
      result.cancelled.push(r.runId);
      if (cancelRequested.has(r.runId)) continue;
      cancelRequested.set(r.runId, request.reason);
      if (active?.runId === r.runId) {
        activeScope?.cancel();
        continue;
      }
      const at = queue.findIndex((q) => q.runId === r.runId);
      if (at >= 0) {
        queue.splice(at, 1);
        untrack(r);
        await records.completeRun({ runId: r.runId, cancelled: request.reason });
      }
    }
    return result;
  }

  setHandler(queueStateQuery, () => ({ iModelId: state.iModelId, queue: [...queue], active }));

  setHandler(
    requestRunUpdate,
    async (request: RunRequest) => {
      const mine = pending.get(request.connectionId) ?? [];
      const same = mine.find((r) => r.runId === request.runId);
      if (same) return { runId: same.runId, created: false };
      if (request.kind === "delete") {
        const twin = mine.find((r) => r.kind === "delete" && sameFiles(r.sourceFileIds, request.sourceFileIds));
        if (twin) return { runId: twin.runId, created: false };
      } else if (mine.length > 0) {
        // One active run per connection (docs/product-rules.md "Connections"): the API answers 303 to it.
        return { runId: mine[mine.length - 1].runId, created: false };
      }
      const entry: QueuedRun = {
        runId: request.runId,
        connectionId: request.connectionId,
        trigger: request.trigger,
        ...(request.kind === "delete" ? { kind: "delete" as const } : {}),
        ...(request.sourceFileIds ? { sourceFileIds: request.sourceFileIds } : {}),
      };
      // Claim before the first await, so a concurrent request sees it.
      track(entry);
      if (request.kind === "delete" && request.cancelSyncs) {
        await cancel({
          connectionId: request.connectionId,
          reason: { code: "ConnectionDeleted", message: "the connection was deleted while the run was active" },
        });
      }
      try {
        await records.recordRunQueued({
          runId: request.runId,
          connectionId: request.connectionId,
          iModelId: state.iModelId,
          trigger: request.trigger,
          workflowId: (request.kind === "delete" ? deleteWorkflowId : runWorkflowId)(
            request.connectionId,
            request.runId,
          ),
          ...(request.ownerId ? { ownerId: request.ownerId } : {}),
          ...(request.scheduledFor ? { scheduledFor: request.scheduledFor } : {}),
          ...(request.kind ? { kind: request.kind } : {}),
          ...(request.sourceFileIds ? { sourceFileIds: request.sourceFileIds } : {}),
        });
      } catch (err) {
        untrack(entry);
        throw ApplicationFailure.nonRetryable(`could not record the run: ${String(err)}`, "RunNotRecorded");
      }
      const cancelled = cancelRequested.get(entry.runId);
      if (cancelled) {
        // Cancelled while it was being recorded.
        untrack(entry);
        await records.completeRun({ runId: entry.runId, cancelled });
        return { runId: entry.runId, created: true };
      }
      queue.push(entry);
      return { runId: request.runId, created: true };
    },
    {
      validator: (request: RunRequest) => {
        if (!request || typeof request.runId !== "string" || typeof request.connectionId !== "string") {
          throw new Error("runId and connectionId are required");
        }
        if (!(RUN_TRIGGERS as readonly string[]).includes(request.trigger))
          throw new Error(`unknown trigger ${request.trigger}`);
        if (request.kind !== undefined && request.kind !== "sync" && request.kind !== "delete")
          throw new Error(`unknown kind ${request.kind}`);
        if (
          request.sourceFileIds !== undefined &&
          (!Array.isArray(request.sourceFileIds) || request.sourceFileIds.length === 0)
        ) {
          throw new Error("sourceFileIds must be a non-empty list when given");
        }
      },
    },
  );

  setHandler(cancelRunUpdate, cancel, {
    validator: (request: CancelRequest) => {
      if (!request || typeof request.connectionId !== "string" || !request.reason)
        throw new Error("connectionId and reason are required");
    },
  });

  for (;;) {
    await condition(
      () =>
        queue.length > 0 ||
        workflowInfo().continueAsNewSuggested ||
        workflowInfo().historyLength > CONTINUE_AS_NEW_AFTER_EVENTS,
    );
    const next = queue.shift();
    if (!next) {
      // Idle and the history is long: start afresh once no update handler is mid-way.
      await condition(allHandlersFinished);
      if (queue.length === 0) await continueAsNew<typeof imodelWorkflow>({ iModelId: state.iModelId, queue: [] });
      continue;
    }
    active = next;
    const scope = new CancellationScope();
    activeScope = next.kind === "delete" ? undefined : scope;
    let outcome: SyncOutcome;
    try {
      const searchAttributes = [
        { key: SEARCH_ATTRIBUTES.connectionId, value: next.connectionId },
        { key: SEARCH_ATTRIBUTES.iModelId, value: state.iModelId },
        { key: SEARCH_ATTRIBUTES.runTrigger, value: next.trigger },
      ];
      const input = {
        runId: next.runId,
        connectionId: next.connectionId,
        iModelId: state.iModelId,
        trigger: next.trigger,
      };
      outcome = await scope.run(() =>
        next.kind === "delete"
          ? executeChild(deleteWorkflow, {
              workflowId: deleteWorkflowId(next.connectionId, next.runId),
              args: [{ ...input, ...(next.sourceFileIds ? { sourceFileIds: next.sourceFileIds } : {}) }],
              typedSearchAttributes: searchAttributes,
            })
          : executeChild(syncWorkflow, {
              workflowId: runWorkflowId(next.connectionId, next.runId),
              args: [input],
              typedSearchAttributes: searchAttributes,
            }),
      );
    } catch (err) {
      if (isCancellation(err)) {
        outcome = { cancelled: cancelRequested.get(next.runId) };
      } else {
        log.error("run workflow failed", { runId: next.runId, error: String(err) });
        outcome = { error: { code: "RunFailed", message: String(err) } };
      }
    } finally {
      active = undefined;
      activeScope = undefined;
      untrack(next);
    }
    // The reason given with the cancellation request wins over the run's own (`RunCancelled`).
    const cancelled = outcome.error ? undefined : (cancelRequested.get(next.runId) ?? outcome.cancelled);
    cancelRequested.delete(next.runId);
    // Completed only once the connection is free again: a request that sees the run Completed starts a new run
    // (never a 303 to a finished run).
    await records.completeRun({
      runId: next.runId,
      ...(outcome.error ? { error: outcome.error } : {}),
      ...(cancelled ? { cancelled } : {}),
    });
  }
}

/** What a run workflow hands back to its iModel queue, which then completes the run record. */
export interface SyncOutcome {
  /** Set when the run could not be planned (the run's result becomes Error with this error). */
  error?: ErrorInfo;
  /** Set when the run stopped early (cancelled, or its connection was deleted): the run's result becomes Cancelled. */
  cancelled?: ErrorInfo;
}

/** Input of one run. */
export interface SyncInput {
  runId: string;
  connectionId: string;
  iModelId: string;
  trigger: (typeof RUN_TRIGGERS)[number];
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
  const queue: PlannedTask[] = [...plan.tasks];
  const planned = new Map<string, PlannedTask | undefined>(queue.map((t) => [t.sourceFileId, t]));
  for (const id of plan.skipped) planned.set(id, undefined); // unchanged: done, never run again in this run
  let nextIndex = plan.tasks.length + plan.skipped.length;
  while (queue.length > 0) {
    if (cancelAsked()) return { cancelled };
    const task = queue.shift()!;
    const outcome = await CancellationScope.nonCancellable(() => runTask(input, task));
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
  await CancellationScope.nonCancellable(() => records.finalizeRun({ runId: input.runId }));
  return {};
}

/** Input of a delete job. */
export interface DeleteInput extends SyncInput {
  /** The files whose data to remove (an unmapped composite model and its references); absent: the whole connection. */
  sourceFileIds?: string[];
}

/**
 * A delete job (a run with kind `delete`): removes the data of the given files, or of every file of the connection
 * and then the connection itself, one file per transaction. It is not cancellable (its queue never asks), and every
 * step is idempotent: after a worker crash the retried step finishes what the crashed one began.
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
  for (const task of plan.tasks) {
    try {
      await removals.removeFileData({
        runId: input.runId,
        connectionId: input.connectionId,
        iModelId: input.iModelId,
        task,
      });
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
  await records.finalizeRun({ runId: input.runId });
  return {};
}

async function runTask(input: SyncInput, task: PlannedTask): Promise<TaskOutcome> {
  try {
    return await files.syncSourceFile({
      runId: input.runId,
      connectionId: input.connectionId,
      iModelId: input.iModelId,
      task,
    });
  } catch (err) {
    const { type, message } = activityError(err);
    const error: ErrorInfo = {
      // WriterDataError: the file's data cannot be written (e.g. non-finite coordinates); anything else: retries ran out.
      code: type === "WriterDataError" ? "InvalidElementData" : "TaskFailed",
      message,
      target: task.path,
    };
    await records.failTask({ runId: input.runId, connectionId: input.connectionId, task, error });
    return { result: "Error", references: [] };
  }
}

/** The error an activity ended with (its failure's cause): the ApplicationFailure type, if any, and the message. */
function activityError(err: unknown): { type?: string; message: string } {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return {
    type: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined,
    message: cause instanceof Error ? cause.message : String(cause),
  };
}
