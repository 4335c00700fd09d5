/**
 * Every write to a connection record goes through this module: {@link withRecord} (lib/record-writes.ts, which says
 * why FerretDB 1.x needs it) under the connection's lock. Seen without it: a rename racing a delete brought the
 * deleted connection back to `Active`.
 *
 * Lock order: a caller holding an iModel's mapping lock (lib/locks.ts `iModelMappingLockKey`) may take a connection's
 * lock inside it; never the other way round.
 */
import { ApiError } from "../domain/errors";
import type { ConnectionRecord } from "../domain/model";
import type { Store } from "./db";
import type { LockOptions } from "./locks";
import { withRecord, type RecordChange, type RecordWriter } from "./record-writes";

/** Lock key of one connection record. */
export function connectionLockKey(connectionId: string): string {
  return `connection/${connectionId}`;
}

/** A change to a connection record: fields to set and fields to remove. */
export type ConnectionChange = RecordChange<ConnectionRecord>;

/** Writes a change to the record the caller holds the lock of; returns the record as written. */
export type ConnectionWriter = RecordWriter<ConnectionRecord>;

/**
 * Runs `fn` under the connection's lease lock with the record read fresh under it, and a `write` that stores a change
 * (checking first that the lease is still held).
 * @returns what `fn` returns.
 * @throws ApiError ConnectionNotFound (404) when there is no such record; ConcurrentChange (409) when the lock stays
 *   held by others for 15 s or the lease was lost before a write; whatever `fn` throws (nothing is written by a `fn`
 *   that throws before calling `write`).
 */
export async function withConnection<T>(
  store: Store,
  connectionId: string,
  fn: (current: ConnectionRecord, write: ConnectionWriter) => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  return withRecord(store.db, store.connections, connectionLockKey(connectionId), connectionId, fn, {
    notFound: () => new ApiError("ConnectionNotFound", `Connection '${connectionId}' does not exist.`),
    busyMessage: `Another change to connection '${connectionId}' is in progress; retry.`,
    ...options,
  });
}

/**
 * Reads the record fresh under its lock, asks `decide` for the change (undefined: none) and writes it.
 * @returns the record as written (or as read, when there was no change).
 * @throws as {@link withConnection}; `decide` may throw (e.g. ApiError ConnectionDeleted) to refuse the change.
 */
export async function updateConnection(
  store: Store,
  connectionId: string,
  decide: (current: ConnectionRecord) => ConnectionChange | undefined | Promise<ConnectionChange | undefined>,
  options?: LockOptions,
): Promise<ConnectionRecord> {
  return withConnection(
    store,
    connectionId,
    async (current, write) => {
      const change = await decide(current);
      return change ? write(change) : current;
    },
    options,
  );
}
