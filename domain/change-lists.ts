/**
 * Change lists of runs (README "What a run changed"): the elements each file task inserted, updated or deleted, stored
 * in chunk documents keyed so that a page is read with `_id` lookups only (the one query FerretDB's SQLite backend
 * serves without a scan, docs/facts.md "FerretDB 1.x"). Pure: the layout and the paging arithmetic; lib/change-lists.ts
 * reads and writes the documents.
 *
 * Layout: one document per task, operation and chunk of {@link CHANGE_CHUNK_SIZE} entries, `_id` =
 * `${runId}:${sourceFileId}:${operation}:${chunk}` (chunk 0, 1, ...), in the order the writer met the elements, stored
 * by column ({@link StoredChanges}). A run's
 * list is its tasks by index, within a task `inserted`, then `updated`, then `deleted`. How many entries each chunk
 * holds follows from the task's element counts, so a page knows which chunks to read before reading any.
 */
import { CHANGE_OPERATIONS, type ChangeCounts, type ChangeOperation } from "./model";

/** Entries per chunk document (about 60 bytes each as stored: README "What a run changed" gives the measured sizes). */
export const CHANGE_CHUNK_SIZE = 500;

/** How many runs per connection keep their change list when `CHANGE_LISTS_KEPT` is not set. */
export const DEFAULT_CHANGE_LISTS_KEPT = 20;

/**
 * One element a write changed, as the writer knows it: its source identifier (IFC GlobalId, DXF handle), its element
 * id in the iModel, its source class (IFC class, DXF entity type; null for a deleted element whose class the iModel does
 * not hold) and its category's name (IFC: the class; DXF: the layer).
 */
export interface ElementChange {
  identifier: string;
  elementId: string;
  className: string | null;
  category: string | null;
}

/** What one write changed, by operation, in the order the writer met the elements. */
export type ElementChanges = Record<ChangeOperation, ElementChange[]>;

/**
 * The entries of a chunk document, stored by column (entry `i` is the `i`-th of each list): FerretDB 1.x refuses
 * arrays inside arrays (docs/facts.md "FerretDB 1.x"), and one list per field repeats no field name per entry.
 */
export interface StoredChanges {
  identifiers: string[];
  elementIds: string[];
  classNames: (string | null)[];
  categories: (string | null)[];
}

/** Entries `[start, end)` of a chunk document's columns, as changes. */
export function storedChanges(stored: StoredChanges, start: number, end: number): ElementChange[] {
  const out: ElementChange[] = [];
  for (let i = start; i < Math.min(end, stored.identifiers.length); i++)
    out.push({
      identifier: stored.identifiers[i],
      elementId: stored.elementIds[i],
      className: stored.classNames[i] ?? null,
      category: stored.categories[i] ?? null,
    });
  return out;
}

/** `_id` of one chunk document. */
export function changeChunkId(runId: string, sourceFileId: string, operation: ChangeOperation, chunk: number): string {
  return `${runId}:${sourceFileId}:${operation}:${chunk}`;
}

/** Number of chunk documents for `count` entries. */
export function chunksFor(count: number): number {
  return Math.ceil(count / CHANGE_CHUNK_SIZE);
}

/** The chunk documents of a write's changes: per operation, entries cut into chunks of {@link CHANGE_CHUNK_SIZE}. */
export function changeChunks(
  changes: ElementChanges,
): { operation: ChangeOperation; chunk: number; entries: StoredChanges }[] {
  return CHANGE_OPERATIONS.flatMap((operation) => {
    const list = changes[operation];
    return Array.from({ length: chunksFor(list.length) }, (_, chunk) => {
      const part = list.slice(chunk * CHANGE_CHUNK_SIZE, (chunk + 1) * CHANGE_CHUNK_SIZE);
      return {
        operation,
        chunk,
        entries: {
          identifiers: part.map((c) => c.identifier),
          elementIds: part.map((c) => c.elementId),
          classNames: part.map((c) => c.className),
          categories: part.map((c) => c.category),
        },
      };
    });
  });
}

/** A task's part of a run's change list: its order in the run and how many elements it changed per operation. */
export interface TaskChanges {
  sourceFileId: string;
  path: string;
  index: number;
  counts: ChangeCounts;
}

/** Entries `[start, end)` of one chunk document. */
export interface ChunkSlice {
  sourceFileId: string;
  path: string;
  operation: ChangeOperation;
  chunk: number;
  start: number;
  end: number;
}

/**
 * Which chunks hold entries `[skip, skip + top)` of a run's change list restricted to `operations` (tasks by index;
 * within a task inserted, updated, deleted; each in write order).
 * @returns the slices to read, in order, and the total number of entries of the (restricted) list.
 */
export function changeListSlices(
  tasks: readonly TaskChanges[],
  operations: readonly ChangeOperation[],
  skip: number,
  top: number,
): { total: number; slices: ChunkSlice[] } {
  const slices: ChunkSlice[] = [];
  const end = skip + top;
  let position = 0;
  for (const task of [...tasks].sort((a, b) => a.index - b.index)) {
    for (const operation of CHANGE_OPERATIONS) {
      if (!operations.includes(operation)) continue;
      const count = task.counts[operation];
      // The part of this task's entries of `operation` that falls into [skip, end), as offsets into them.
      const from = Math.max(skip - position, 0);
      const to = Math.min(end - position, count);
      for (let i = from; i < to;) {
        const chunk = Math.floor(i / CHANGE_CHUNK_SIZE);
        const chunkEnd = Math.min((chunk + 1) * CHANGE_CHUNK_SIZE, to);
        slices.push({
          sourceFileId: task.sourceFileId,
          path: task.path,
          operation,
          chunk,
          start: i - chunk * CHANGE_CHUNK_SIZE,
          end: chunkEnd - chunk * CHANGE_CHUNK_SIZE,
        });
        i = chunkEnd;
      }
      position += count;
    }
  }
  return { total: position, slices };
}
