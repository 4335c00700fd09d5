/**
 * A file task's write that fails for lack of space (docs/architecture.md "Full disks"): the task shows
 * `WaitingToRetry` with the reason, and the activity fails so that Temporal retries it with backoff; the retry that
 * finds space again writes the file and clears the reason.
 */
import { ApplicationFailure } from "@temporalio/activity";
import type { ErrorInfo, TaskRecord } from "../domain/model";
import type { Store } from "../lib/db";
import type { Logger } from "../lib/logger";
import { isOutOfSpaceIn } from "../lib/storage";

/** The reason code on a task waiting for space, and the ApplicationFailure type its attempt fails with. */
export const INSUFFICIENT_STORAGE = "InsufficientStorage";

/**
 * Runs `write` (the step of a task that writes the iModel). When it fails for lack of space (see `isOutOfSpaceIn`), the
 * task record gets `state: "WaitingToRetry"` and `reason: {code: "InsufficientStorage", message, target}` (best effort:
 * the database may be on the same full disk), and a retryable ApplicationFailure of type `InsufficientStorage` is
 * thrown, so Temporal retries the activity (the file activity's retry policy, `workflows/sync.ts`). Any other error is
 * rethrown as it is.
 * @param task the task's `_id`, its `path` (the reason's target), the record as the attempt found it (a reason left by
 *   an earlier attempt is cleared before writing) and `bimFolder`, the folder of the iModel written: an I/O error while
 *   its filesystem is (nearly) full counts as lack of space.
 * @throws ApplicationFailure `InsufficientStorage` (retryable) on a full disk; whatever `write` throws otherwise.
 */
export async function writeOrWaitForSpace<T>(
  store: Store,
  logger: Logger,
  task: { id: string; path: string; record: Pick<TaskRecord, "reason"> | null; bimFolder: string },
  write: () => Promise<T>,
): Promise<T> {
  if (task.record?.reason?.code === INSUFFICIENT_STORAGE)
    await store.tasks.updateOne({ _id: task.id }, { $unset: { reason: "" } });
  try {
    return await write();
  } catch (err) {
    if (!(await isOutOfSpaceIn(err, task.bimFolder))) throw err;
    const reason: ErrorInfo = {
      code: INSUFFICIENT_STORAGE,
      message: `no space left to write the iModel (${errorText(err)}); retried when space returns`,
      target: task.path,
    };
    logger.warn({ reason }, "task waits for disk space");
    await store.tasks
      .updateOne({ _id: task.id }, { $set: { state: "WaitingToRetry", reason } })
      .catch((e: Error) => logger.warn({ err: e }, "could not record the task as waiting for space"));
    throw ApplicationFailure.retryable(reason.message, INSUFFICIENT_STORAGE);
  }
}

/** An error's message, or its name when it has none (core-backend's SQLite errors may carry only a name). */
function errorText(err: unknown): string {
  const e = err as { message?: unknown; name?: unknown };
  return (typeof e?.message === "string" && e.message) || (typeof e?.name === "string" && e.name) || String(err);
}
