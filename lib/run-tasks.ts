/**
 * Reading the task records of a run by their `_id`s (docs/architecture.md "Queries FerretDB serves by _id").
 *
 * FerretDB on SQLite serves only a filter of exactly `{_id: value}` from an index; `find({runId})` reads and decodes every
 * task record of every run, so its cost grew with the history of the whole service. A run record lists its tasks'
 * source file ids (`RunRecord.taskFileIds`), so the tasks of a run are read one `_id` at a time, and a task that is
 * Completed is never written again (a retried file activity returns the recorded result; `failTask` leaves a Completed
 * task alone), so the API keeps Completed tasks in a bounded cache: a poll of an executing run reads only the tasks
 * that can still change.
 */
import { LRUCache } from "lru-cache";
import { taskId, type RunRecord, type TaskRecord } from "../domain/model";
import type { Store } from "./db";

/** Reads of task records sent at once. */
const READS_AT_ONCE = 32;

/** Completed task records by `_id` (immutable once Completed). */
export type CompletedTasks = LRUCache<string, TaskRecord>;

/**
 * A cache of Completed task records for {@link readRunTasks}.
 * @param max the number of task records kept (each a few KB).
 */
export function completedTaskCache(max = 20_000): CompletedTasks {
  return new LRUCache<string, TaskRecord>({ max });
}

/**
 * The task records of a run, in the order of `index` (plan order).
 * @param run the run record (its `_id`, and `taskFileIds` when recorded; runs recorded before that field are read by
 *   `runId`, a scan of the collection).
 * @param cache Completed tasks already read (see {@link completedTaskCache}); records read Completed are added to it.
 * @returns the records that exist (a task planned but not recorded yet is left out).
 */
export async function readRunTasks(
  store: Pick<Store, "tasks">,
  run: Pick<RunRecord, "_id" | "taskFileIds">,
  cache?: CompletedTasks,
): Promise<TaskRecord[]> {
  if (!run.taskFileIds) return sortByIndex(await store.tasks.find({ runId: run._id }).toArray());
  const ids = [...new Set(run.taskFileIds)].map((id) => taskId(run._id, id));
  const found = new Map<string, TaskRecord>();
  const toRead: string[] = [];
  for (const id of ids) {
    const cached = cache?.get(id);
    if (cached) found.set(id, cached);
    else toRead.push(id);
  }
  for (let i = 0; i < toRead.length; i += READS_AT_ONCE) {
    const records = await Promise.all(toRead.slice(i, i + READS_AT_ONCE).map((_id) => store.tasks.findOne({ _id })));
    for (const r of records) {
      if (!r) continue;
      found.set(r._id, r);
      if (r.state === "Completed") cache?.set(r._id, r);
    }
  }
  return sortByIndex([...found.values()]);
}

const sortByIndex = (tasks: TaskRecord[]) => tasks.sort((a, b) => a.index - b.index);

/**
 * The task records of several runs (a page of a runs list): runs with `taskFileIds` by `_id` (see {@link readRunTasks}),
 * the others (recorded before that field) together in one query by `runId`.
 * @returns each run's tasks by run `_id`, in the order of `index`.
 */
export async function readTasksOfRuns(
  store: Pick<Store, "tasks">,
  runs: Pick<RunRecord, "_id" | "taskFileIds">[],
  cache?: CompletedTasks,
): Promise<Map<string, TaskRecord[]>> {
  const byRun = new Map<string, TaskRecord[]>(runs.map((r) => [r._id, []]));
  const older = runs.filter((r) => !r.taskFileIds).map((r) => r._id);
  if (older.length > 0)
    for (const t of await store.tasks.find({ runId: { $in: older } }).toArray()) byRun.get(t.runId)?.push(t);
  for (const r of runs.filter((x) => x.taskFileIds)) byRun.set(r._id, await readRunTasks(store, r, cache));
  for (const tasks of byRun.values()) sortByIndex(tasks);
  return byRun;
}
