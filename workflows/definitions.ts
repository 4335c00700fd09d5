/**
 * Messages of the workflows, shared with the API (which sends them) and the workflows (which handle them).
 * Definitions only: safe to import outside the workflow sandbox.
 */
import { defineQuery, defineUpdate } from "@temporalio/workflow";
import type { RunTrigger } from "../domain/model";
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
}

/** State of an iModel's run queue; also the argument of `imodelWorkflow` (carried over by continue-as-new). */
export interface IModelQueueState {
  iModelId: string;
  /** Waiting runs, oldest first. */
  queue: QueuedRun[];
  /** The run that is writing to the iModel now, if any (query answers only; never carried over). */
  active?: QueuedRun;
}

/**
 * Update: queue a run for a connection unless it already has an active one (DESIGN.md: one active run per
 * connection; the API answers 303 to it).
 */
export const requestRunUpdate = defineUpdate<RunRequestResult, [RunRequest]>("requestRun");

/** Query: the queue of an iModel. */
export const queueStateQuery = defineQuery<IModelQueueState>("queueState");
