/**
 * Asking an iModel's run queue for a run: one function for the API (manual runs) and the schedule activities
 * (scheduled runs), so both honour the same "one active run per connection" rule held by `imodelWorkflow`.
 */
import { randomUUID } from "node:crypto";
import { WithStartWorkflowOperation, WorkflowNotFoundError, type Client } from "@temporalio/client";
import { ApiError } from "../domain/errors";
import { iModelWorkflowId, type ConnectionRecord, type RunTrigger } from "../domain/model";
import { clampForTemporal } from "../domain/temporal-text";
import {
  cancelRunUpdate,
  queueStateQuery,
  requestRunUpdate,
  type CancelRequest,
  type CancelResult,
  type IModelQueueState,
  type RunRequest,
  type RunRequestResult,
  type RunUiTexts,
} from "../workflows/definitions";
import { SEARCH_ATTRIBUTES } from "../domain/search-attributes";

/** How long (ms) to wait for Temporal to accept a run request before giving up (503 in the API). */
export const RUN_REQUEST_DEADLINE_MS = 20_000;

/** True for a Temporal call that failed because Temporal did not answer (cancelled, deadline exceeded, unavailable). */
export const UNAVAILABLE = (err: unknown) => {
  const code = (err as { code?: number }).code ?? (err as { cause?: { code?: number } }).cause?.code;
  return code === 1 /* CANCELLED */ || code === 4 /* DEADLINE_EXCEEDED */ || code === 14; /* UNAVAILABLE */
};

/**
 * One call to Temporal within `deadlineMs`: Temporal or its worker not answering becomes ApiError
 * DependencyUnavailable (503) with `unavailable` as message; a missing iModel queue workflow gives `ifNoQueue()` when
 * given (no queue means no active run).
 */
async function askQueue<T>(
  temporal: Client,
  deadlineMs: number,
  call: () => Promise<T>,
  unavailable: string,
  ifNoQueue?: () => T,
): Promise<T> {
  try {
    return await temporal.connection.withDeadline(Date.now() + deadlineMs, call);
  } catch (err) {
    if (ifNoQueue && err instanceof WorkflowNotFoundError) return ifNoQueue();
    if (UNAVAILABLE(err)) throw new ApiError("DependencyUnavailable", unavailable);
    throw err;
  }
}

const NOT_ANSWERED = "Temporal or its worker did not answer in time; try again.";

/** Largest static details sent to Temporal, in bytes of JSON (a long mapping is cut with a note). */
const DETAILS_MAX_BYTES = 8_000;

/**
 * What the Temporal UI shows for a run's workflow (README.md "Temporal UI"): a one-line summary naming the kind of
 * run, the connection's display name, the trigger and the number of files, and markdown details with the connection,
 * the iModel, the trigger, the run and the files (for a delete job of unmapped files: their ids).
 */
export function runUiTexts(
  connection: Pick<ConnectionRecord, "_id" | "iModelId" | "displayName" | "sourceFiles">,
  trigger: RunTrigger,
  runId: string,
  recorded: Pick<RunRequest, "kind" | "sourceFileIds" | "ownerId" | "confirmDeletions"> = {},
): RunUiTexts {
  const composites = connection.sourceFiles.filter((f) => f.role === "CompositeModel");
  const files = recorded.sourceFileIds
    ? connection.sourceFiles.filter((f) => recorded.sourceFileIds!.includes(f.id))
    : composites;
  const what =
    recorded.kind === "delete" ? (recorded.sourceFileIds ? "Delete job (unmapped files)" : "Delete job") : "Sync";
  const count = recorded.sourceFileIds ? recorded.sourceFileIds.length : composites.length;
  const summary = clampForTemporal(
    `${what} of "${connection.displayName}" (${trigger}): ${count} ${recorded.sourceFileIds ? "file" : "composite model"}${count === 1 ? "" : "s"}`,
  );
  const lines = [
    `**Connection**: ${connection.displayName} (\`${connection._id}\`)`,
    `**iModel**: \`${connection.iModelId}\``,
    `**Trigger**: ${trigger}${recorded.ownerId ? ` (on behalf of \`${recorded.ownerId}\`)` : ""}${recorded.confirmDeletions ? ", deletions confirmed" : ""}`,
    `**Run**: \`${runId}\``,
    `**Files**${recorded.sourceFileIds ? "" : " (composite models; their reference files follow)"}:`,
    ...(files.length
      ? files.map((f) => `- ${f.path} (${f.connectorType})`)
      : (recorded.sourceFileIds ?? []).map((id) => `- \`${id}\``)),
  ];
  return { summary, details: clampForTemporal(lines.join("\n"), DETAILS_MAX_BYTES) };
}

/**
 * Asks the iModel's run queue for a run of the connection (starting the queue workflow if needed).
 * @param runId the id proposed for a new run (a caller that may retry passes the same id: a retry then finds its own
 *   run active and gets `created: false` with that same id).
 * @param recorded scheduled runs: owner and occurrence; delete jobs: `kind: "delete"`, the files (absent: the whole
 *   connection) and whether to cancel the connection's syncs first; manual runs: `confirmDeletions`, the files
 *   (`sourceFileIds`) and `force`; retries: `retryOf` and the files; any: `requestedBy` (see {@link RunRequest}).
 * @returns the run id and whether it is new (false: the connection's active run).
 * @throws ApiError DependencyUnavailable when Temporal or its worker does not answer within `deadlineMs`.
 */
export async function requestRun(
  temporal: Client,
  taskQueue: string,
  connection: { _id: string; iModelId: string } & Partial<Pick<ConnectionRecord, "displayName" | "sourceFiles">>,
  trigger: RunTrigger,
  runId: string = randomUUID(),
  deadlineMs = RUN_REQUEST_DEADLINE_MS,
  recorded: Pick<
    RunRequest,
    | "ownerId"
    | "scheduledFor"
    | "kind"
    | "sourceFileIds"
    | "cancelSyncs"
    | "confirmDeletions"
    | "force"
    | "retryOf"
    | "requestedBy"
  > = {},
): Promise<RunRequestResult> {
  const startWorkflowOperation = new WithStartWorkflowOperation("imodelWorkflow", {
    workflowId: iModelWorkflowId(connection.iModelId),
    taskQueue,
    args: [{ iModelId: connection.iModelId, queue: [] } satisfies IModelQueueState],
    workflowIdConflictPolicy: "USE_EXISTING",
    typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.iModelId, value: connection.iModelId }],
    staticSummary: `Run queue of iModel ${connection.iModelId}`,
    staticDetails:
      "The iModel's single writer: it queues the runs of all its connections and executes them one at a time as child workflows (sync/…, delete/…).",
  });
  const ui =
    connection.displayName !== undefined && connection.sourceFiles
      ? runUiTexts(
          { ...connection, displayName: connection.displayName, sourceFiles: connection.sourceFiles },
          trigger,
          runId,
          recorded,
        )
      : undefined;
  // The operation's handle promise rejects too when the call fails; nobody else awaits it, so handle it here
  // (an unhandled rejection would end the process).
  void startWorkflowOperation.workflowHandle().catch(() => undefined);
  return askQueue(
    temporal,
    deadlineMs,
    () =>
      temporal.workflow.executeUpdateWithStart(requestRunUpdate, {
        args: [{ runId, connectionId: connection._id, trigger, ...recorded, ...(ui ? { ui } : {}) }],
        startWorkflowOperation,
      }),
    "Temporal or its worker did not accept the run in time; check that the worker is running and try again.",
  );
}

/**
 * The run of a connection that is queued or executing now, if any (asks the iModel's run queue; no queue workflow
 * means no run).
 * @throws ApiError DependencyUnavailable when Temporal or the worker does not answer in time.
 */
export async function activeRunOf(
  temporal: Client,
  connection: { _id: string; iModelId: string },
  deadlineMs = 10_000,
): Promise<string | undefined> {
  const state: IModelQueueState | undefined = await askQueue(
    temporal,
    deadlineMs,
    () => temporal.workflow.getHandle(iModelWorkflowId(connection.iModelId)).query(queueStateQuery),
    NOT_ANSWERED,
    () => undefined,
  );
  if (!state) return undefined;
  if (state.active?.connectionId === connection._id) return state.active.runId;
  return state.queue.find((r) => r.connectionId === connection._id)?.runId;
}

/**
 * Asks the iModel's run queue to cancel sync runs of the connection (see `cancelRunUpdate`). No queue workflow means
 * no active run: nothing is cancelled.
 * @throws ApiError DependencyUnavailable when Temporal or the worker does not answer in time.
 */
export async function cancelRuns(
  temporal: Client,
  connection: { _id: string; iModelId: string },
  request: Omit<CancelRequest, "connectionId">,
  deadlineMs = RUN_REQUEST_DEADLINE_MS,
): Promise<CancelResult> {
  return askQueue(
    temporal,
    deadlineMs,
    () =>
      temporal.workflow
        .getHandle(iModelWorkflowId(connection.iModelId))
        .executeUpdate(cancelRunUpdate, { args: [{ ...request, connectionId: connection._id }] }),
    NOT_ANSWERED,
    () => ({ cancelled: [], notCancellable: [] }),
  );
}
