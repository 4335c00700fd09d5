/**
 * Messages of the workflows, shared with the API (which sends them) and the workflows (which handle them).
 * Definitions only: safe to import outside the workflow sandbox.
 */
import { defineQuery, defineUpdate } from "@temporalio/workflow";
import type { RunKind, RunTrigger } from "../domain/model";
import type { ScheduledFor } from "../domain/schedule";

/** Asks an iModel's run queue for a run of one connection. */
export interface RunRequest {
  /** Id the caller proposes for the new run (UUID); used only if a new run is queued. */
  runId: string;
  connectionId: string;
  trigger: RunTrigger;
  /** Scheduled runs: the owner on whose behalf it runs and the occurrence it is for (recorded with the run). */
  ownerId?: string;
  scheduledFor?: ScheduledFor;
  /**
   * `delete`: a delete job. It is always queued (an active sync of the connection does not stop it), except that the
   * same delete (same `sourceFileIds`, or both absent) already queued or executing is answered with that run.
   * Absent: `sync`.
   */
  kind?: RunKind;
  /**
   * Delete jobs: the files whose data to remove (absent: every file of the connection, then the connection itself).
   * Sync runs: the files to synchronize, with the reference files they name (absent: every mapped composite model);
   * recorded on the run, which reads them when it starts.
   */
  sourceFileIds?: string[];
  /** Sync runs: parse and write files whose content hash is unchanged too (recorded on the run). Absent: false. */
  force?: boolean;
  /** Runs with trigger `retry`: the run whose failed files it synchronizes (recorded on the run). */
  retryOf?: string;
  /** The user who asked for the run (recorded on the run). */
  requestedBy?: string;
  /**
   * Sync runs: apply the deletions the connection's deletion guard would hold (`POST /connections/{id}/run
   * {"confirmDeletions": true}`; recorded on the run). Absent: the guard holds.
   */
  confirmDeletions?: boolean;
  /**
   * Delete jobs: cancel the connection's queued and executing syncs first (a connection deleted with its data never
   * synchronizes again; docs/product-rules.md "Delete, two modes": an active run is cancelled first, cleanly).
   */
  cancelSyncs?: boolean;
  /**
   * What the Temporal UI shows for the run's workflow (its static summary, one line, and details, markdown), written
   * by the requester, who has the connection's record (`lib/runs.ts` `runUiTexts`). Absent: none.
   */
  ui?: RunUiTexts;
}

/** The static summary and details of a run's workflow in the Temporal UI. */
export interface RunUiTexts {
  summary: string;
  details?: string;
}

/** `created` false means the connection already had an active (queued or executing) run: `runId` is that run. */
export interface RunRequestResult {
  runId: string;
  created: boolean;
}

/** One entry of an iModel's run queue. */
export interface QueuedRun {
  runId: string;
  connectionId: string;
  trigger: RunTrigger;
  /** Absent: `sync`. */
  kind?: RunKind;
  sourceFileIds?: string[];
  /** See {@link RunRequest.confirmDeletions}; absent: false. */
  confirmDeletions?: boolean;
  /** See {@link RunRequest.ui}. */
  ui?: RunUiTexts;
}

/** Asks an iModel's run queue to cancel runs of a connection. */
export interface CancelRequest {
  connectionId: string;
  /** Only this run (absent: every sync run of the connection, queued or executing). */
  runId?: string;
  /** Why (recorded as the cancelled run's `reason`). */
  reason: { code: string; message: string };
}

/**
 * `cancelled`: runs that were queued (now completed as Cancelled) or executing (cancellation requested: the file
 * being written is finished, the rest are Cancelled). `notCancellable`: the named run is a delete job (a delete job
 * is never stopped half way). Both empty: no such active run.
 */
export interface CancelResult {
  cancelled: string[];
  notCancellable: string[];
}

/** State of an iModel's run queue (the `queueState` query's answer; its first two fields start `imodelWorkflow`). */
export interface IModelQueueState {
  iModelId: string;
  /** Waiting runs, oldest first. */
  queue: QueuedRun[];
  /** The run that is writing to the iModel now, if any (query answers only; never carried over). */
  active?: QueuedRun;
}

/** The argument of `imodelWorkflow`, carried over by continue-as-new (the queue is empty on first start). */
export interface IModelQueueInput extends Pick<IModelQueueState, "iModelId" | "queue"> {
  /**
   * History length (events) after which an idle queue continues as new; absent: 2,000. Carried over. Tests set a
   * small value to see continue-as-new with few runs.
   */
  continueAsNewAfterEvents?: number;
}

/**
 * Update: queue a run for a connection unless it already has an active one (docs/product-rules.md "Connections": one active run per
 * connection; the API answers 303 to it).
 */
export const requestRunUpdate = defineUpdate<RunRequestResult, [RunRequest]>("requestRun");

/**
 * Update: cancel a connection's sync runs (all of them, or one by id). Queued runs are completed as Cancelled at once;
 * the executing run gets a Temporal cancellation request and ends, Cancelled, after the file being written.
 */
export const cancelRunUpdate = defineUpdate<CancelResult, [CancelRequest]>("cancelRun");

/** Query: the queue of an iModel. */
export const queueStateQuery = defineQuery<IModelQueueState>("queueState");
