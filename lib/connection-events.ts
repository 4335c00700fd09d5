/**
 * The timeline of a connection (README "Connection timeline"): every change to a connection records an event in the
 * same code path that makes the change, under the connection's lock, and in the same document write. The events of a
 * change ride on the connection record (`eventSeq`, `lastEvents`) and are then copied into `connectionEvents` with an
 * `_id` derived from the connection and the sequence number: a copy that fails (the database went away after the
 * change) is made again at the connection's next change, and the timeline shows `lastEvents` meanwhile, so no change
 * ever lacks its event and no event is recorded twice.
 */
import type { ConnectionEventRecord, ConnectionEventType, ConnectionRecord } from "../domain/model";
import type { OwnerSummary } from "../domain/users";
import type { ConnectionChange, ConnectionWriter } from "./connection-writes";
import type { Store } from "./db";

/** An event to record with a change: what changed, who changed it and how (see `CONNECTION_EVENT_TYPES`). */
export interface NewConnectionEvent {
  type: ConnectionEventType;
  by: OwnerSummary;
  details?: Record<string, unknown>;
}

/** `_id` of the connection's `seq`-th event (9 digits, so ids sort like sequence numbers). */
export function connectionEventId(connectionId: string, seq: number): string {
  return `${connectionId}:${String(seq).padStart(9, "0")}`;
}

/**
 * The change with its events added: the next sequence numbers after the record's `eventSeq`, all at `dateTime`.
 * @param current the record as read under the connection's lock.
 * @param dateTime ISO 8601 UTC; default now.
 */
export function withEvents(
  current: Pick<ConnectionRecord, "_id" | "eventSeq">,
  change: ConnectionChange,
  events: readonly NewConnectionEvent[],
  dateTime = new Date().toISOString(),
): ConnectionChange {
  let seq = current.eventSeq ?? 0;
  const lastEvents: ConnectionEventRecord[] = events.map((e) => {
    seq += 1;
    return {
      _id: connectionEventId(current._id, seq),
      connectionId: current._id,
      seq,
      type: e.type,
      dateTime,
      by: e.by,
      details: e.details ?? {},
    };
  });
  return { ...change, $set: { ...(change.$set ?? {}), eventSeq: seq, lastEvents } };
}

/**
 * Copies the events of the record's last change into `connectionEvents` (an insert keyed by `_id`: doing it again
 * changes nothing).
 */
export async function publishEvents(store: Store, record: Pick<ConnectionRecord, "lastEvents">): Promise<void> {
  for (const event of record.lastEvents ?? [])
    await store.connectionEvents.updateOne({ _id: event._id }, { $setOnInsert: event }, { upsert: true });
}

/**
 * Writes a change with its events under the connection's lock (the caller holds it: `write` comes from
 * lib/connection-writes.ts `withConnection`): first the copy of the previous change's events, should it have failed,
 * then the change and its events in one document write, then their copy.
 * @returns the record as written.
 */
export async function writeWithEvents(
  store: Store,
  current: ConnectionRecord,
  write: ConnectionWriter,
  change: ConnectionChange,
  events: readonly NewConnectionEvent[],
): Promise<ConnectionRecord> {
  await publishEvents(store, current);
  const written = await write(withEvents(current, change, events));
  await publishEvents(store, written);
  return written;
}
