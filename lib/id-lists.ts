/**
 * Lists of record ids kept as documents addressed by `_id` (docs/architecture.md "Queries FerretDB serves by _id").
 *
 * FerretDB on SQLite serves only a filter of exactly `{_id: value}` from an index; a list endpoint that filters on
 * another field (the runs of a connection, the connections of an iModel) decodes every record of its collection, so its
 * cost grows with the whole service. An id list keeps, in the `idLists` collection, a head `{_id: <list>, count}` and
 * pages `{_id: "<list>#<page>", entries: [{id, seq}]}` of {@link PAGE_SIZE} entries in the order they were appended;
 * a list endpoint reads the pages it needs and then the records by `_id`.
 *
 * A list is kept only when it was created with its owner (a connection's runs when the connection is created, an
 * iModel's connections when the iModel is created): records from before have no head, and their readers fall back to
 * the query (`undefined` from {@link listIds}). An id is appended before its record is written, so a crash in between
 * leaves an id without a record (readers skip it), never a record no list names; an id appended twice (a retry) is read
 * once.
 */
import type { Db } from "mongodb";
import type { Store } from "./db";

/** Entries per page document. */
export const PAGE_SIZE = 200;

/** The collection holding the lists. */
export const ID_LISTS_COLLECTION = "idLists";

interface Head {
  _id: string;
  count: number;
}
interface Page {
  _id: string;
  entries: { id: string; seq: number }[];
}

const pageId = (list: string, page: number) => `${list}#${page}`;

/** The list of a connection's runs (newest last). */
export const connectionRunsList = (connectionId: string) => `connection-runs:${connectionId}`;
/** The list of an iModel's connections (oldest first). */
export const iModelConnectionsList = (iModelId: string) => `imodel-connections:${iModelId}`;

/**
 * The documents of a whole list holding `ids` in this order (its head and pages), for writing a list in bulk (the
 * bench's seeded records).
 */
export function idListDocuments(list: string, ids: string[]): (Head | Page)[] {
  const docs: (Head | Page)[] = [{ _id: list, count: ids.length }];
  for (let page = 0; page * PAGE_SIZE < ids.length; page++)
    docs.push({
      _id: pageId(list, page),
      entries: ids.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map((id, i) => ({ id, seq: page * PAGE_SIZE + i })),
    });
  return docs;
}

/** Creates an empty list (idempotent). Call it with the record that owns the list, before that record is written. */
export async function createIdList(db: Db, list: string): Promise<void> {
  await db
    .collection<Head>(ID_LISTS_COLLECTION)
    .updateOne({ _id: list }, { $setOnInsert: { count: 0 } }, { upsert: true });
}

/**
 * Appends an id to a list, if the list is kept (two commands: the head's count, then the page).
 * @returns whether the list is kept (false: it was not created, e.g. its owner predates id lists).
 */
export async function appendId(db: Db, list: string, id: string): Promise<boolean> {
  const head = await db
    .collection<Head>(ID_LISTS_COLLECTION)
    .findOneAndUpdate({ _id: list }, { $inc: { count: 1 } }, { returnDocument: "after" });
  if (!head) return false;
  const seq = head.count - 1;
  await db
    .collection<Page>(ID_LISTS_COLLECTION)
    .updateOne(
      { _id: pageId(list, Math.floor(seq / PAGE_SIZE)) },
      { $push: { entries: { id, seq } } },
      { upsert: true },
    );
  return true;
}

/**
 * The ids of a list, page by page, newest first (`order: "newest"`) or oldest first; each id once (its latest
 * appending for newest first, its first for oldest first).
 * @returns an async iterator of ids, or undefined when the list is not kept (the caller queries instead).
 */
export async function listIds(
  db: Db,
  list: string,
  order: "newest" | "oldest",
): Promise<AsyncIterable<string> | undefined> {
  const lists = db.collection<Head | Page>(ID_LISTS_COLLECTION);
  const head = (await lists.findOne({ _id: list })) as Head | null;
  if (!head) return undefined;
  const pages = Math.ceil(head.count / PAGE_SIZE);
  return {
    async *[Symbol.asyncIterator]() {
      const seen = new Set<string>();
      for (let i = 0; i < pages; i++) {
        const n = order === "newest" ? pages - 1 - i : i;
        const page = (await lists.findOne({ _id: pageId(list, n) })) as Page | null;
        const entries = [...(page?.entries ?? [])].sort((a, b) => (order === "newest" ? b.seq - a.seq : a.seq - b.seq));
        for (const e of entries) {
          if (seen.has(e.id)) continue;
          seen.add(e.id);
          yield e.id;
        }
      }
    },
  };
}

/** The most records read by `_id` at once when walking a list. */
const MAX_BATCH = 50;

/**
 * The records of an id list in list order, read by `_id` with `read` in batches: `firstBatch` ids (at least 1), then
 * twice as many each time, up to {@link MAX_BATCH}; ids without a record (see the module comment) are skipped.
 */
export async function* recordsOfList<T>(
  ids: AsyncIterable<string>,
  read: (id: string) => Promise<T | null>,
  firstBatch = 1,
): AsyncGenerator<T> {
  let size = Math.min(MAX_BATCH, Math.max(1, firstBatch));
  let batch: string[] = [];
  for await (const id of ids) {
    batch.push(id);
    if (batch.length < size) continue;
    const records = await Promise.all(batch.map(read));
    batch = [];
    size = Math.min(MAX_BATCH, size * 2);
    for (const r of records) if (r) yield r;
  }
  for (const r of await Promise.all(batch.map(read))) if (r) yield r;
}

/**
 * Merges streams that are each in `compare` order into one stream in that order (a k-way merge: one record ahead
 * per stream, so a page of n records reads about n + k of them).
 */
export async function* mergeOrdered<T>(
  streams: AsyncIterable<T>[],
  compare: (a: T, b: T) => number,
): AsyncGenerator<T> {
  const iterators = streams.map((s) => s[Symbol.asyncIterator]());
  try {
    const heads = await Promise.all(iterators.map((it) => it.next()));
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++)
        if (!heads[i].done && (best < 0 || compare(heads[i].value, heads[best].value) < 0)) best = i;
      if (best < 0) return;
      yield heads[best].value;
      heads[best] = await iterators[best].next();
    }
  } finally {
    await Promise.all(iterators.map((it) => it.return?.()));
  }
}

/**
 * A page of records from a stream in list order: keeps those `accept` takes, skips `skip` of them and returns up to
 * `top + 1` (the one beyond `top` tells that more follow).
 * @param stop ends the walk at the first record for which it is true (e.g. older than a `from` filter, newest first).
 */
export async function pageOfRecords<T>(
  records: AsyncIterable<T>,
  accept: (record: T) => boolean,
  skip: number,
  top: number,
  stop: (record: T) => boolean = () => false,
): Promise<T[]> {
  const out: T[] = [];
  let skipped = 0;
  for await (const r of records) {
    if (stop(r)) break;
    if (!accept(r)) continue;
    if (skipped < skip) skipped++;
    else if (out.push(r) > top) break;
  }
  return out;
}

/**
 * A page of records from an id list: reads ids in list order and their records by `_id` ({@link recordsOfList}, a
 * first batch of the page's size), then as {@link pageOfRecords}.
 */
export async function pageOfList<T extends { _id: string }>(
  ids: AsyncIterable<string>,
  read: (id: string) => Promise<T | null>,
  accept: (record: T) => boolean,
  skip: number,
  top: number,
  stop: (record: T) => boolean = () => false,
): Promise<T[]> {
  return pageOfRecords(recordsOfList(ids, read, top + 1 + skip), accept, skip, top, stop);
}

/**
 * Lists a run in its connection's list before its record is first written (see the module comment), unless the record
 * exists already (a retried activity): one read, then the list's two commands.
 */
export async function listNewRun(
  store: Pick<Store, "db" | "runs">,
  connectionId: string,
  runId: string,
): Promise<void> {
  if (await store.runs.findOne({ _id: runId }, { projection: { _id: 1 } })) return;
  await appendId(store.db, connectionRunsList(connectionId), runId);
}
