/**
 * The run queue of one iModel: the state `imodelWorkflow` (`workflows/imodel-queue.ts`) keeps between its messages,
 * and the rules that decide what a request for a run gets. Plain deterministic code without Temporal calls: the two
 * side effects it needs (recording a run, completing a run) are given to it, so it can be tested on its own
 * (test/run-queue.test.ts) as well as inside the workflow (test/imodel-queue.test.ts).
 *
 * Rules (docs/product-rules.md "Connections"; docs/architecture.md "One writer per iModel"):
 * - runs of all the iModel's connections wait in one queue and execute one at a time, oldest first;
 * - one active (queued, being recorded or executing) run per connection: asking for another answers that run;
 * - delete jobs are always queued, except that the same delete job already active answers the request (its "twin"),
 *   and they are never cancelled (docs/product-rules.md "Delete, two modes").
 */
import { ApplicationFailure } from "@temporalio/common";
import { RUN_TRIGGERS, type ErrorInfo } from "../domain/model";
import type {
  CancelRequest,
  CancelResult,
  IModelQueueState,
  QueuedRun,
  RunRequest,
  RunRequestResult,
} from "./definitions";
import type { SyncOutcome } from "./sync";

/** How a run record is completed (the input of the `completeRun` activity). */
export interface RunCompletion {
  runId: string;
  /** The run's result becomes Error with this error. */
  error?: ErrorInfo;
  /** The run's result becomes Cancelled with this reason. */
  cancelled?: ErrorInfo;
}

/** The side effects the queue asks for; in the workflow, activities (each returns the activity's promise). */
export interface RunQueueEffects {
  /** Records a newly claimed run as Queued (`recordRunQueued`); rejects when it cannot be recorded. */
  recordQueued(run: QueuedRun, request: RunRequest): Promise<unknown>;
  /** Completes a run record (`completeRun`). */
  complete(completion: RunCompletion): Promise<unknown>;
}

/** Whether two delete jobs remove the same files (both the whole connection, or the same set of files). */
export function sameFiles(a?: string[], b?: string[]): boolean {
  return a === undefined || b === undefined
    ? a === b
    : a.length === b.length && [...a].sort().join("\0") === [...b].sort().join("\0");
}

/**
 * Validator of the `requestRun` Update: refuses (throws an Error, the Update is rejected before it is accepted) a
 * request without `runId` or `connectionId`, with an unknown trigger or kind, with an empty `sourceFileIds`, or with a
 * `force`, `retryOf` or `requestedBy` of the wrong type.
 */
export function validateRunRequest(request: RunRequest): void {
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
  if (request.force !== undefined && typeof request.force !== "boolean") throw new Error("force must be a boolean");
  for (const field of ["retryOf", "requestedBy"] as const)
    if (request[field] !== undefined && typeof request[field] !== "string")
      throw new Error(`${field} must be a string when given`);
}

/** Validator of the `cancelRun` Update: `connectionId` and `reason` are required (else it throws an Error). */
export function validateCancelRequest(request: CancelRequest): void {
  if (!request || typeof request.connectionId !== "string" || !request.reason)
    throw new Error("connectionId and reason are required");
}

/**
 * One iModel's runs: the waiting queue, the executing run, the active runs of each connection and the cancellations
 * asked. Every operation is synchronous up to its first effect, so a concurrent message handler sees its changes
 * (Temporal runs handlers interleaved at `await`s only).
 */
export class RunQueue {
  readonly iModelId: string;
  /** Waiting runs (recorded, not executing yet), oldest first. */
  private readonly waiting: QueuedRun[];
  /** The run executing now (a child workflow), if any. */
  private executing: QueuedRun | undefined;
  /** Stops the executing run (cancels its child workflow's scope); set for the executing run only. */
  private cancelExecuting: (() => void) | undefined;
  /** Runs that are waiting, being recorded or executing, by connection id, oldest first. */
  private readonly active = new Map<string, QueuedRun[]>();
  /** Runs whose cancellation was asked, with the reason to record on them. */
  private readonly cancelRequested = new Map<string, ErrorInfo>();
  /** The ids of the last runs that ended, oldest first (at most `rememberEnded` of them). */
  private readonly ended = new Set<string>();

  /**
   * @param carried the iModel and the waiting runs carried over by continue-as-new (an empty queue on first start).
   * @param effects recording and completing run records (see {@link RunQueueEffects}).
   * @param rememberEnded how many ended runs' ids to remember (0: none, as histories recorded before it): a request
   *   carrying the id of a run that ended (a retried request, e.g. a schedule fire's activity retried after its first
   *   attempt's request was answered) is answered with that run, never executed a second time under the same record.
   */
  constructor(
    carried: Pick<IModelQueueState, "iModelId" | "queue">,
    private readonly effects: RunQueueEffects,
    private readonly rememberEnded = 0,
  ) {
    this.iModelId = carried.iModelId;
    this.waiting = [...carried.queue];
    for (const run of this.waiting) this.track(run);
  }

  /** The queue as the `queueState` query answers it: the waiting runs and the executing one. */
  view(): IModelQueueState {
    return { iModelId: this.iModelId, queue: [...this.waiting], active: this.executing };
  }

  /** What continue-as-new carries over: the iModel and its waiting runs. */
  carryOver(): Pick<IModelQueueState, "iModelId" | "queue"> {
    return { iModelId: this.iModelId, queue: [...this.waiting] };
  }

  /** Whether a run waits to execute. */
  hasWaiting(): boolean {
    return this.waiting.length > 0;
  }

  /**
   * The active run a request is answered with instead of a new run, if any:
   * - a run with the same id (a retried request);
   * - a delete job: the connection's same delete job (same files, or both the whole connection; see
   *   {@link sameFiles}); an active sync does not stop a delete job from being queued;
   * - a sync run: the connection's newest active run, sync or delete (docs/product-rules.md "Connections": one active
   *   run per connection; the API answers 303 to it).
   */
  activeRunFor(request: Pick<RunRequest, "runId" | "connectionId" | "kind" | "sourceFileIds">): QueuedRun | undefined {
    const mine = this.active.get(request.connectionId) ?? [];
    const same = mine.find((r) => r.runId === request.runId);
    if (same) return same;
    if (request.kind === "delete")
      return mine.find((r) => r.kind === "delete" && sameFiles(r.sourceFileIds, request.sourceFileIds));
    return mine.length > 0 ? mine[mine.length - 1] : undefined;
  }

  /**
   * Answers a request for a run (the `requestRun` Update): the run of the same id when it ended lately (`created:
   * false`, see the constructor's `rememberEnded`), the active run it gets (`created: false`, see
   * {@link activeRunFor}), or a new run, claimed at once (so a concurrent request sees it), then recorded as Queued
   * and put at the end of the queue (`created: true`). A delete job with `cancelSyncs` first cancels the connection's
   * sync runs (docs/product-rules.md "Delete, two modes"). A run cancelled while it was being recorded is completed
   * as Cancelled at once and never queued.
   * @throws ApplicationFailure `RunNotRecorded` (non-retryable) when the run could not be recorded; it is not claimed.
   */
  async request(request: RunRequest): Promise<RunRequestResult> {
    if (this.ended.has(request.runId)) return { runId: request.runId, created: false };
    const existing = this.activeRunFor(request);
    if (existing) return { runId: existing.runId, created: false };
    const run: QueuedRun = {
      runId: request.runId,
      connectionId: request.connectionId,
      trigger: request.trigger,
      ...(request.kind === "delete" ? { kind: "delete" as const } : {}),
      ...(request.sourceFileIds ? { sourceFileIds: request.sourceFileIds } : {}),
      ...(request.confirmDeletions === true && request.kind !== "delete" ? { confirmDeletions: true } : {}),
      ...(request.ui ? { ui: request.ui } : {}),
    };
    // Claim before the first await, so a concurrent request sees it.
    this.track(run);
    if (request.kind === "delete" && request.cancelSyncs) {
      await this.cancel({
        connectionId: request.connectionId,
        reason: { code: "ConnectionDeleted", message: "the connection was deleted while the run was active" },
      });
    }
    try {
      await this.effects.recordQueued(run, request);
    } catch (err) {
      this.untrack(run);
      throw ApplicationFailure.nonRetryable(`could not record the run: ${String(err)}`, "RunNotRecorded");
    }
    const cancelled = this.cancelRequested.get(run.runId);
    if (cancelled) {
      // Cancelled while it was being recorded.
      this.untrack(run);
      await this.effects.complete({ runId: run.runId, cancelled });
      return { runId: run.runId, created: true };
    }
    this.waiting.push(run);
    return { runId: request.runId, created: true };
  }

  /**
   * Cancels sync runs of a connection (the `cancelRun` Update), all of them or the one named: a waiting one is taken
   * off the queue and completed as Cancelled at once; the executing one gets a cancellation request (it stops after
   * the file being written, and is completed as Cancelled when it ends, see {@link release}); one still being
   * recorded is completed as Cancelled once recorded. Delete jobs are never cancelled: a named one is answered in
   * `notCancellable` (docs/product-rules.md "Delete, two modes").
   */
  async cancel(request: CancelRequest): Promise<CancelResult> {
    const result: CancelResult = { cancelled: [], notCancellable: [] };
    for (const r of [...(this.active.get(request.connectionId) ?? [])]) {
      if (request.runId !== undefined && r.runId !== request.runId) continue;
      if (r.kind === "delete") {
        if (request.runId !== undefined) result.notCancellable.push(r.runId);
        continue;
      }
      result.cancelled.push(r.runId);
      if (this.cancelRequested.has(r.runId)) continue;
      this.cancelRequested.set(r.runId, request.reason);
      if (this.executing?.runId === r.runId) {
        this.cancelExecuting?.();
        continue;
      }
      const at = this.waiting.findIndex((q) => q.runId === r.runId);
      if (at >= 0) {
        this.waiting.splice(at, 1);
        this.untrack(r);
        await this.effects.complete({ runId: r.runId, cancelled: request.reason });
      }
    }
    return result;
  }

  /** Takes the oldest waiting run off the queue; it is the executing run until {@link release}. */
  takeNext(): QueuedRun | undefined {
    const next = this.waiting.shift();
    this.executing = next;
    return next;
  }

  /** How to stop the executing run when its cancellation is asked (its child workflow's cancellation scope). */
  onCancel(cancel: () => void): void {
    this.cancelExecuting = cancel;
  }

  /** The reason given when the run's cancellation was asked, if it was. */
  cancelReason(runId: string): ErrorInfo | undefined {
    return this.cancelRequested.get(runId);
  }

  /**
   * Ends the executing run: its connection is free again. The reason given with a cancellation request wins over
   * the run's own (`RunCancelled`); an error wins over both.
   * @returns how to complete its run record. The run is released before its record is completed, so a request that
   *   sees the run Completed gets a new run (never a 303 to a finished run).
   */
  release(run: QueuedRun, outcome: SyncOutcome): RunCompletion {
    this.executing = undefined;
    this.cancelExecuting = undefined;
    this.untrack(run);
    if (this.rememberEnded > 0) {
      this.ended.add(run.runId);
      for (const id of this.ended) {
        if (this.ended.size <= this.rememberEnded) break;
        this.ended.delete(id);
      }
    }
    const cancelled = outcome.error ? undefined : (this.cancelRequested.get(run.runId) ?? outcome.cancelled);
    this.cancelRequested.delete(run.runId);
    return {
      runId: run.runId,
      ...(outcome.error ? { error: outcome.error } : {}),
      ...(cancelled ? { cancelled } : {}),
    };
  }

  private track(run: QueuedRun): void {
    this.active.set(run.connectionId, [...(this.active.get(run.connectionId) ?? []), run]);
  }

  private untrack(run: QueuedRun): void {
    const rest = (this.active.get(run.connectionId) ?? []).filter((x) => x.runId !== run.runId);
    if (rest.length > 0) this.active.set(run.connectionId, rest);
    else this.active.delete(run.connectionId);
  }
}
