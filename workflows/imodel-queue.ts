/**
 * `imodelWorkflow`: one per iModel, id `imodel/<iModelId>`. It is the iModel's single writer: it queues runs of all
 * the iModel's connections and executes them one at a time as child workflows (`workflows/sync.ts`,
 * `workflows/delete.ts`), so writes to one `.bim` never overlap (docs/architecture.md "One writer per iModel"). Its
 * state and rules, "one active run per connection" among them (docs/product-rules.md "Connections"), are the
 * `RunQueue` of `workflows/run-queue.ts`. Deterministic code only.
 */
import {
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from "@temporalio/workflow";
import type { RunRecordActivities } from "../activities/run-records";
import { deleteWorkflowId, runWorkflowId } from "../domain/model";
import { SEARCH_ATTRIBUTES } from "../domain/search-attributes";
import {
  cancelRunUpdate,
  queueStateQuery,
  requestRunUpdate,
  type IModelQueueInput,
  type QueuedRun,
  type RunRequest,
} from "./definitions";
import { deleteWorkflow } from "./delete";
import { RunQueue, validateCancelRequest, validateRunRequest } from "./run-queue";
import { syncWorkflow, type SyncOutcome } from "./sync";

/** Bookkeeping activities: short, retried with backoff while MongoDB is unreachable. */
const records = proxyActivities<Pick<RunRecordActivities, "recordRunQueued" | "completeRun">>({
  startToCloseTimeout: "30 seconds",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
});

/**
 * How many ended runs an iModel queue remembers, so that a retried request for one of them is answered with it instead
 * of executing it again (`RunQueue`'s `rememberEnded`); behind a patch, since it changes the answers of recorded
 * histories.
 */
const ENDED_RUNS_REMEMBERED = 1_000;

/** History length after which an idle iModel queue continues as new (unless the input sets another). */
const CONTINUE_AS_NEW_AFTER_EVENTS = 2_000;

/**
 * See the module comment. Answers the `requestRun` and `cancelRun` Updates and the `queueState` query; executes the
 * waiting runs one at a time, oldest first; when idle with a long history, continues as new with the queue.
 */
export async function imodelWorkflow(input: IModelQueueInput): Promise<void> {
  const runs = new RunQueue(
    input,
    {
      recordQueued: (run: QueuedRun, request: RunRequest) =>
        records.recordRunQueued({
          runId: request.runId,
          connectionId: request.connectionId,
          iModelId: input.iModelId,
          trigger: request.trigger,
          workflowId: (request.kind === "delete" ? deleteWorkflowId : runWorkflowId)(
            request.connectionId,
            request.runId,
          ),
          ...(request.ownerId ? { ownerId: request.ownerId } : {}),
          ...(request.scheduledFor ? { scheduledFor: request.scheduledFor } : {}),
          ...(request.kind ? { kind: request.kind } : {}),
          ...(request.sourceFileIds ? { sourceFileIds: request.sourceFileIds } : {}),
          ...(run.confirmDeletions ? { confirmDeletions: true } : {}),
          ...(request.force === true && request.kind !== "delete" ? { force: true } : {}),
          ...(request.retryOf ? { retryOf: request.retryOf } : {}),
          ...(request.requestedBy ? { requestedBy: request.requestedBy } : {}),
        }),
      complete: (completion) => records.completeRun(completion),
    },
    patched("remember-ended-runs") ? ENDED_RUNS_REMEMBERED : 0,
  );
  const continueAsNewAfter = input.continueAsNewAfterEvents ?? CONTINUE_AS_NEW_AFTER_EVENTS;

  setHandler(queueStateQuery, () => runs.view());
  setHandler(requestRunUpdate, (request) => runs.request(request), { validator: validateRunRequest });
  setHandler(cancelRunUpdate, (request) => runs.cancel(request), { validator: validateCancelRequest });

  for (;;) {
    await condition(
      () =>
        runs.hasWaiting() || workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > continueAsNewAfter,
    );
    const next = runs.takeNext();
    if (!next) {
      // Idle and the history is long: start afresh once no update handler is mid-way.
      await condition(allHandlersFinished);
      if (!runs.hasWaiting())
        await continueAsNew<typeof imodelWorkflow>({
          ...runs.carryOver(),
          ...(input.continueAsNewAfterEvents !== undefined
            ? { continueAsNewAfterEvents: input.continueAsNewAfterEvents }
            : {}),
        });
      continue;
    }
    const scope = new CancellationScope();
    runs.onCancel(() => scope.cancel());
    let outcome: SyncOutcome;
    try {
      outcome = await scope.run(() => executeRun(input.iModelId, next));
    } catch (err) {
      if (isCancellation(err)) {
        outcome = { cancelled: runs.cancelReason(next.runId) };
      } else {
        log.error("run workflow failed", { runId: next.runId, error: String(err) });
        outcome = { error: { code: "RunFailed", message: String(err) } };
      }
    }
    await records.completeRun(runs.release(next, outcome));
  }
}

/** Starts a run's child workflow (a delete job's or a sync run's) and resolves to its outcome. */
function executeRun(iModelId: string, run: QueuedRun): Promise<SyncOutcome> {
  const typedSearchAttributes = [
    { key: SEARCH_ATTRIBUTES.connectionId, value: run.connectionId },
    { key: SEARCH_ATTRIBUTES.iModelId, value: iModelId },
    { key: SEARCH_ATTRIBUTES.runTrigger, value: run.trigger },
  ];
  const input = { runId: run.runId, connectionId: run.connectionId, iModelId, trigger: run.trigger };
  // What the Temporal UI shows for the run (README.md "Temporal UI"); user metadata, not part of the commands.
  const ui = run.ui
    ? { staticSummary: run.ui.summary, ...(run.ui.details ? { staticDetails: run.ui.details } : {}) }
    : {};
  return run.kind === "delete"
    ? executeChild(deleteWorkflow, {
        workflowId: deleteWorkflowId(run.connectionId, run.runId),
        args: [{ ...input, ...(run.sourceFileIds ? { sourceFileIds: run.sourceFileIds } : {}) }],
        typedSearchAttributes,
        ...ui,
      })
    : executeChild(syncWorkflow, {
        workflowId: runWorkflowId(run.connectionId, run.runId),
        args: [{ ...input, ...(run.confirmDeletions ? { confirmDeletions: true } : {}) }],
        typedSearchAttributes,
        ...ui,
      });
}
