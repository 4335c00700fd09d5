/**
 * Read-decide-write of one record under its own lease lock (lib/locks.ts), for records more than one writer changes.
 *
 * FerretDB 1.x applies an update by rewriting the whole document from a copy it read just before, with no transaction
 * spanning the two: concurrent updates of one record, even of different fields, can lose one of them, and a
 * conditional update's filter is not checked atomically with its write. Under the record's lock, {@link withRecord}
 * reads it fresh, the caller decides the change from that copy (or refuses it), and the change is written while no
 * other writer of that record runs. With MongoDB the lock costs a few round trips and changes nothing else.
 */
import type { Collection, Db, Document, Filter, UpdateFilter } from "mongodb";
import { withLock, type LockOptions } from "./locks";

/** A change: fields to set and fields to remove. */
export interface RecordChange<T> {
  $set?: Partial<Omit<T, "_id">>;
  $unset?: (keyof Omit<T, "_id">)[];
}

/** Writes a change to the record whose lock the caller holds; returns the record as written. */
export type RecordWriter<T> = (change: RecordChange<T>) => Promise<T>;

export interface RecordLockOptions extends LockOptions {
  /** The error for a missing record (default: an Error naming the collection and id). */
  notFound?: () => Error;
}

/**
 * Runs `fn` under the lease lock `key` with the record `id` of `collection` read fresh under it, and a `write` that
 * stores a change (checking first that the lease is still held).
 * Lock defaults: lease 30 s, wait 15 s.
 * @returns what `fn` returns.
 * @throws `notFound()` when there is no such record; ApiError ConcurrentChange (409) when the lock stays held by
 *   others for the wait or the lease was lost before a write; whatever `fn` throws.
 */
export async function withRecord<T extends Document & { _id: string }, R>(
  db: Db,
  collection: Collection<T>,
  key: string,
  id: string,
  fn: (current: T, write: RecordWriter<T>) => Promise<R>,
  options: RecordLockOptions = {},
): Promise<R> {
  const { notFound, ...lockOptions } = options;
  return withLock(
    db,
    key,
    async (lease) => {
      let current = (await collection.findOne({ _id: id } as Filter<T>)) as T | null;
      if (!current) throw notFound ? notFound() : new Error(`${collection.collectionName} '${id}' does not exist`);
      const write: RecordWriter<T> = async (change) => {
        lease.assertHeld();
        const update: Record<string, unknown> = {};
        if (change.$set && Object.keys(change.$set).length > 0) update.$set = change.$set;
        if (change.$unset && change.$unset.length > 0)
          update.$unset = Object.fromEntries(change.$unset.map((k) => [k, ""]));
        if (Object.keys(update).length > 0)
          await collection.updateOne({ _id: id } as Filter<T>, update as UpdateFilter<T>);
        const next = { ...current!, ...(change.$set ?? {}) } as T;
        for (const k of change.$unset ?? []) delete (next as Record<string, unknown>)[k as string];
        current = next;
        return next;
      };
      return fn(current, write);
    },
    { leaseMs: 30_000, waitMs: 15_000, ...lockOptions },
  );
}
