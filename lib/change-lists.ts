/**
 * Reading and writing the change lists of runs (README "What a run changed"; layout and paging in
 * domain/change-lists.ts): the file task writes its chunks while the iModel's transaction is still open (so a write
 * that commits always has its list, and a retried attempt overwrites what an attempt that did not commit left), the API
 * reads pages by `_id`, and the completion of a run prunes the lists beyond the newest `CHANGE_LISTS_KEPT` runs of the
 * connection.
 */
import {
  changeChunkId,
  changeChunks,
  changeListSlices,
  chunksFor,
  storedChanges,
  type ElementChange,
  type ElementChanges,
} from "../domain/change-lists";
import { CHANGE_OPERATIONS, taskId, type ChangeOperation, type RunRecord, type TaskRecord } from "../domain/model";
import { bulkWriteInChunks, type Store } from "./db";

/** One entry of a change list page as the API shows it. */
export interface ChangeEntry extends ElementChange {
  operation: ChangeOperation;
  sourceFileId: string;
  path: string;
}

/**
 * Stores what one task's write changed: one document per operation and chunk (replacing the chunks an attempt that did
 * not commit left), and on the task the number of chunks per operation ever written (`changeChunks`, the largest of
 * the attempts, so pruning finds them all). Nothing is written for a write that changed nothing.
 */
export async function writeTaskChanges(
  store: Store,
  task: { runId: string; connectionId: string; sourceFileId: string },
  changes: ElementChanges,
): Promise<void> {
  const chunks = changeChunks(changes);
  if (chunks.length === 0) return;
  await bulkWriteInChunks(
    store.changeChunks,
    chunks.map((c) => {
      const _id = changeChunkId(task.runId, task.sourceFileId, c.operation, c.chunk);
      return {
        replaceOne: {
          filter: { _id },
          replacement: {
            _id,
            runId: task.runId,
            connectionId: task.connectionId,
            sourceFileId: task.sourceFileId,
            operation: c.operation,
            chunk: c.chunk,
            entries: c.entries,
          },
          upsert: true,
        },
      };
    }),
  );
  // `$max` keeps the largest of the attempts in one round trip.
  const written = Object.fromEntries(
    CHANGE_OPERATIONS.map((op) => [`changeChunks.${op}`, chunksFor(changes[op].length)]),
  );
  await store.tasks.updateOne({ _id: taskId(task.runId, task.sourceFileId) }, { $max: written });
}

/**
 * One page of a run's change list: entries `[skip, skip + top)` of the list of `operations` (tasks by index; within a
 * task inserted, updated, deleted). Only tasks that completed with result Success count (their `elements` are the
 * committed write's counts). Reads only the chunk documents the page needs, each by `_id`.
 * @returns the page and the number of entries of the whole (filtered) list.
 */
export async function readChangePage(
  store: Store,
  runId: string,
  tasks: readonly Pick<TaskRecord, "sourceFileId" | "path" | "index" | "result" | "state" | "elements">[],
  operations: readonly ChangeOperation[],
  skip: number,
  top: number,
): Promise<{ total: number; changes: ChangeEntry[] }> {
  const written = tasks
    .filter((t) => t.state === "Completed" && t.result === "Success")
    .map((t) => ({
      sourceFileId: t.sourceFileId,
      path: t.path,
      index: t.index,
      counts: { inserted: t.elements.inserted, updated: t.elements.updated, deleted: t.elements.deleted },
    }));
  const { total, slices } = changeListSlices(written, operations, skip, top);
  const chunks = await Promise.all(
    slices.map((s) => store.changeChunks.findOne({ _id: changeChunkId(runId, s.sourceFileId, s.operation, s.chunk) })),
  );
  const changes = slices.flatMap((s, i) => {
    const stored = chunks[i]?.entries;
    if (!stored) return [];
    return storedChanges(stored, s.start, s.end).map((c): ChangeEntry => ({
      operation: s.operation,
      ...c,
      sourceFileId: s.sourceFileId,
      path: s.path,
    }));
  });
  return { total, changes };
}

/**
 * Keeps the change lists of the connection's newest `keep` runs that have one (by the time they were queued) and
 * removes the others' chunk documents (each by `_id`), marking those runs `changeList: "pruned"`. Idempotent.
 * @returns the ids of the runs pruned now.
 */
export async function pruneChangeLists(store: Store, connectionId: string, keep: number): Promise<string[]> {
  const kept = await store.runs
    .find({ connectionId, changeList: "kept" }, { projection: { _id: 1, queuedDateTime: 1 } })
    .sort({ queuedDateTime: -1, _id: 1 })
    .toArray();
  const beyond = kept.slice(Math.max(keep, 0)) as Pick<RunRecord, "_id">[];
  for (const run of beyond) {
    const tasks = await store.tasks
      .find({ runId: run._id }, { projection: { sourceFileId: 1, changeChunks: 1 } })
      .toArray();
    for (const t of tasks)
      for (const op of CHANGE_OPERATIONS)
        for (let chunk = 0; chunk < (t.changeChunks?.[op] ?? 0); chunk++)
          await store.changeChunks.deleteOne({ _id: changeChunkId(run._id, t.sourceFileId, op, chunk) });
    await store.runs.updateOne({ _id: run._id }, { $set: { changeList: "pruned" } });
  }
  return beyond.map((r) => r._id);
}
