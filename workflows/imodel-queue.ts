/**
 * `imodelWorkflow`: one per iModel, id `imodel/<iModelId>`. It is the iModel's single writer: it queues runs of all
 * the iModel's connections and executes them one at a time as child workflows (`workflows/sync.ts`,
 * `workflows/delete.ts`), so writes to one `.bim` never overlap (docs/architecture.md "One writer per iModel"). It also
 * holds the "one active run per connection" rule (docs/product-rules.md "Connections"). Deterministic code only.
 */
import {
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
import { deleteWorkflow } from "./delete";
import { syncWorkflow, type SyncOutcome } from "./sync";

type RecordActivities = ReturnType<typeof acts.createActivities>;

/** Bookkeeping activities: short, retried with backoff while MongoDB is unreachable. */
const records = proxyActivities<Pick<RecordActivities, "recordRunQueued" | "completeRun">>({
  startToCloseTimeout: "30 seconds",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
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
