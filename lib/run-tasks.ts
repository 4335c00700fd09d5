/**
 * Reading the task records of a run by their `_id`s (docs/architecture.md "Queries FerretDB serves by _id").
 *
 * FerretDB on SQLite serves only a filter of exactly `{_id: value}` from an index; `find({runId})` reads and decodes every
 * task record of every run, so its cost grew with the history of the whole service. A run record lists its tasks'
 * source file ids (`RunRecord.taskFileIds`), so the tasks of a run are read one `_id` at a time, and a task that is
 * Completed is never written again (a retried file activity returns the recorded result; `failTask` and `finishTask`
 * leave a Completed task alone), so the API keeps Completed tasks in a bounded cache: a poll of an executing run reads only the tasks
 * that can still change.
 *
 * When a run completes, its task records are also written together, a few hundred per record (task pages, written by
 * `completeRun`, see {@link writeTaskPages}): a Completed run's tasks are then read with one `_id` lookup per page, so
 * `GET` of a run of 2,000 tasks costs a handful of lookups instead of 2,000 (README "Performance").
 */
import { LRUCache } from "lru-cache";
import { gunzipSync, gzipSync } from "node:zlib";
import { Binary } from "mongodb";
import { taskId, type RunRecord, type TaskRecord } from "../domain/model";
import type { Store, TaskPageRecord } from "./db";

/** `_id` of the task page record `page` of a run. */
export const taskPageId = (runId: string, page: number) => `${runId}#${page}`;

/** At most this many task records per page. */
export const TASK_PAGE_MAX_TASKS = 250;
/** At most this many bytes of task records (as JSON, before compression) per page, well below MongoDB's 16 MiB document limit. */
export const TASK_PAGE_MAX_BYTES = 4 * 1024 * 1024;

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
 * @param run the run record: a Completed run with `taskPages` is read from its task pages ({@link writeTaskPages}; one
 *   missing page and the tasks are read one by one instead); otherwise its `taskFileIds` name the task records (runs
 *   recorded before that field are read by `runId`, a scan of the collection).
 * @param cache Completed tasks already read (see {@link completedTaskCache}); records read Completed are added to it.
 * @returns the records that exist (a task planned but not recorded yet is left out).
 */
export async function readRunTasks(
  store: Pick<Store, "tasks" | "taskPages">,
  run: Pick<RunRecord, "_id" | "taskFileIds"> & Partial<Pick<RunRecord, "state" | "taskPages">>,
  cache?: CompletedTasks,
): Promise<TaskRecord[]> {
  if (hasTaskPages(run)) {
    const paged = await readTaskPages(store, run._id, run.taskPages);
    if (paged) return paged;
  }
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

/** Whether a run is read from its task pages: Completed, with their number recorded ({@link writeTaskPages}). */
function hasTaskPages<R extends Partial<Pick<RunRecord, "state" | "taskPages">>>(
  run: R,
): run is R & { taskPages: number } {
  return run.state === "Completed" && run.taskPages !== undefined;
}

/**
 * Writes a Completed run's task records as task pages (`taskPages` collection, `_id` = {@link taskPageId}; the records
 * as gzip-compressed JSON, which holds every field of a task record: strings, numbers, arrays and objects): in the
 * order of `index`, at most {@link TASK_PAGE_MAX_TASKS} records and {@link TASK_PAGE_MAX_BYTES} bytes per page (a
 * single larger record gets a page of its own). Each page is replaced whole, so writing again (a retried completion)
 * gives the same pages. The caller records the count on the run (`RunRecord.taskPages`) after this returns; readers
 * use the pages only then.
 * @param tasks every task record of the run, each Completed (Completed records never change: see the file's header).
 * @returns the number of pages written.
 */
export async function writeTaskPages(
  store: Pick<Store, "taskPages">,
  runId: string,
  tasks: TaskRecord[],
): Promise<number> {
  const pages: TaskRecord[][] = [];
  let bytes = 0;
  for (const t of [...tasks].sort((a, b) => a.index - b.index)) {
    const size = Buffer.byteLength(JSON.stringify(t));
    const last = pages[pages.length - 1];
    if (!last || last.length >= TASK_PAGE_MAX_TASKS || bytes + size > TASK_PAGE_MAX_BYTES) {
      pages.push([t]);
      bytes = size;
    } else {
      last.push(t);
      bytes += size;
    }
  }
  for (let page = 0; page < pages.length; page++) {
    const record: TaskPageRecord = {
      _id: taskPageId(runId, page),
      runId,
      page,
      count: pages[page].length,
      data: new Binary(gzipSync(JSON.stringify(pages[page]))),
    };
    await store.taskPages.replaceOne({ _id: record._id }, record, { upsert: true });
  }
  return pages.length;
}

/**
 * A Completed run's task records from its `count` task pages, each read by `_id`.
 * @returns undefined when a page is missing (the caller reads the task records instead).
 */
async function readTaskPages(
  store: Pick<Store, "taskPages">,
  runId: string,
  count: number,
): Promise<TaskRecord[] | undefined> {
  const pages = await Promise.all(
    Array.from({ length: count }, (_, page) => store.taskPages.findOne({ _id: taskPageId(runId, page) })),
  );
  if (pages.some((p) => !p)) return undefined;
  return pages.flatMap((p) => tasksOfPage(p!));
}

/** The task records a task page holds (see {@link writeTaskPages}). */
export function tasksOfPage(page: TaskPageRecord): TaskRecord[] {
  return JSON.parse(gunzipSync(page.data.buffer).toString("utf8")) as TaskRecord[];
}

/**
 * The task records of several runs (a page of a runs list): runs with `taskFileIds` by `_id` (see {@link readRunTasks}),
 * the others (recorded before that field) together in one query by `runId`.
 * @returns each run's tasks by run `_id`, in the order of `index`.
 */
export async function readTasksOfRuns(
  store: Pick<Store, "tasks" | "taskPages">,
  runs: (Pick<RunRecord, "_id" | "taskFileIds"> & Partial<Pick<RunRecord, "state" | "taskPages">>)[],
  cache?: CompletedTasks,
): Promise<Map<string, TaskRecord[]>> {
  const byRun = new Map<string, TaskRecord[]>(runs.map((r) => [r._id, []]));
  const older = runs.filter((r) => !r.taskFileIds && !hasTaskPages(r)).map((r) => r._id);
  if (older.length > 0)
    for (const t of await store.tasks.find({ runId: { $in: older } }).toArray()) byRun.get(t.runId)?.push(t);
  for (const r of runs.filter((x) => x.taskFileIds || hasTaskPages(x)))
    byRun.set(r._id, await readRunTasks(store, r, cache));
  for (const tasks of byRun.values()) sortByIndex(tasks);
  return byRun;
}
