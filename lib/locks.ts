/**
 * Lease locks over the MongoDB wire protocol, for FerretDB 1.x (no transactions, no conditional multi-document
 * writes): mutual exclusion rests on `_id` uniqueness, the one primitive FerretDB enforces reliably, and every write
 * names the lock by `_id`.
 *
 * One document per held lock in the `locks` collection ({@link LockRecord}):
 * - acquire: `insertOne({_id: key, holder, expiresAt})`. A duplicate key error (code 11000) means someone holds it:
 *   wait a short jittered backoff (10 to 200 ms) and look again, reading the lock by `_id` (reads only while it stays
 *   held), and insert again once it is gone. A lock whose `expiresAt` has passed (its holder died or hung) is taken
 *   over: `deleteOne({_id: key, holder: <that stale holder>})` (deletes nothing if it changed hands meanwhile), then
 *   retry the insert, which at most one contender wins.
 * - hold: while `fn` runs, the lease is renewed every `leaseMs / 3` (`updateOne({_id: key, holder}, {$set: {expiresAt}})`),
 *   so a slow but live holder keeps it; a holder that stops (crash, frozen process) loses it `leaseMs` after its last
 *   renewal.
 * - release: `deleteOne({_id: key, holder})` in `finally`; it never removes a lock another holder took over.
 *
 * Expiry compares `expiresAt` (written with the holder's clock) with the waiter's clock: hosts sharing locks need
 * clocks within a small fraction of `leaseMs` of each other.
 */
import { randomUUID } from "node:crypto";
import type { Collection, Db } from "mongodb";
import { ApiError } from "../domain/errors";
import { isDuplicateKey } from "./collections";

/** Name of the collection holding the locks. */
export const LOCKS_COLLECTION = "locks";

/** A held lock. */
export interface LockRecord {
  /** The lock's key (e.g. {@link iModelMappingLockKey}). */
  _id: string;
  /** Random id (UUID) of the `withLock` call holding it. */
  holder: string;
  /** When the holder took it. */
  acquiredAt: Date;
  /** When the lease ends unless renewed; after it, any waiter may take the lock over. */
  expiresAt: Date;
}

export interface LockOptions {
  /** Lease length in ms (default 30 000): how long a lock outlives a holder that stopped renewing it. */
  leaseMs?: number;
  /** Longest wait for the lock in ms (default 15 000); then `withLock` fails with 409 `ConcurrentChange`. */
  waitMs?: number;
  /** Message of the `ConcurrentChange` error (default: another change to this iModel is in progress; retry). */
  busyMessage?: string;
}

/** What `fn` sees of the lock it runs under. */
export interface Lease {
  readonly key: string;
  readonly holder: string;
  /**
   * True once the lease may have been lost: a renewal found the lock gone or held by another, or the last confirmed
   * lease end passed without a successful renewal (e.g. the database was unreachable).
   */
  readonly lost: boolean;
  /**
   * Throws when {@link lost}: call it right before the write the lock protects.
   * @throws ApiError `ConcurrentChange` (409).
   */
  assertHeld(): void;
}

/**
 * Lock key serializing the changes to the connection mapping of one iModel (creating connections, mapping changes), and
 * the changes that must agree on who owns its connections and who is in its team (owner changes, removing a member).
 */
export function iModelMappingLockKey(iModelId: string): string {
  return `imodel-mapping/${iModelId}`;
}

/** Options of one change to an iModel's connection mapping: 409 `ConcurrentChange` after 15 s of waiting. */
export function iModelMappingLockOptions(iModelId: string): LockOptions {
  return {
    leaseMs: 30_000,
    waitMs: 15_000,
    busyMessage: `Another change to iModel '${iModelId}' is in progress; retry.`,
  };
}

const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_WAIT_MS = 15_000;
const DEFAULT_BUSY_MESSAGE = "Another change to this iModel is in progress; retry.";
/** Backoff between acquisition attempts: from 10 ms, ×1.5 per attempt, at most 200 ms, each ±50 % jitter. */
const BACKOFF_FIRST_MS = 10;
const BACKOFF_MAX_MS = 200;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` while holding the lease lock `key`, so that calls with the same key (from any process sharing the
 * database) never run their `fn` at the same time.
 *
 * @param db the database holding the `locks` collection.
 * @param key the lock's name (any string; `_id` of its record).
 * @param fn the work; it gets the {@link Lease} (call `lease.assertHeld()` right before the write the lock protects).
 *   Its result or error is passed through.
 * @param options `leaseMs` (default 30 000 ms), `waitMs` (default 15 000 ms), `busyMessage`.
 * @returns what `fn` returns.
 * @throws ApiError `ConcurrentChange` (409) when the lock stays held by others for `waitMs` ms.
 * @throws RangeError when `leaseMs` is not positive or `waitMs` is negative.
 * @throws the database's errors while acquiring (e.g. MongoServerSelectionError: the API answers 503); errors while
 *   releasing are swallowed (the lease then ends by itself after `leaseMs`).
 */
export async function withLock<T>(
  db: Db,
  key: string,
  fn: (lease: Lease) => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  if (!(leaseMs > 0) || !(waitMs >= 0))
    throw new RangeError(`withLock: leaseMs must be > 0 and waitMs >= 0 (got ${leaseMs}, ${waitMs})`);
  const locks: Collection<LockRecord> = db.collection<LockRecord>(LOCKS_COLLECTION);
  const holder = randomUUID();
  const busy = () => new ApiError("ConcurrentChange", options.busyMessage ?? DEFAULT_BUSY_MESSAGE);

  // ---- acquire ----
  const deadline = Date.now() + waitMs;
  let expiresAt = 0;
  // While the lock is held, waiters poll it by reading only (a failed insert is a write); they try to insert when
  // a read finds it free or stale.
  let mayBeFree = true;
  for (let attempt = 0; ; attempt++) {
    if (mayBeFree) {
      const now = Date.now();
      try {
        await locks.insertOne({ _id: key, holder, acquiredAt: new Date(now), expiresAt: new Date(now + leaseMs) });
        expiresAt = now + leaseMs;
        break;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
    }
    const current = await locks.findOne({ _id: key });
    mayBeFree = true;
    if (!current) continue; // released meanwhile: try again at once
    if (current.expiresAt.getTime() <= Date.now()) {
      // Stale lease: remove exactly that holder's record (a no-op if it was renewed or taken over meanwhile).
      await locks.deleteOne({ _id: key, holder: current.holder });
      continue;
    }
    mayBeFree = false;
    const left = deadline - Date.now();
    if (left <= 0) throw busy();
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 1.5 ** attempt) * (0.5 + Math.random());
    await sleep(Math.min(backoff, left));
  }

  // ---- hold (renew) ----
  let lost = false;
  let renewing: Promise<void> = Promise.resolve();
  const renew = async () => {
    const now = Date.now();
    try {
      const r = await locks.updateOne({ _id: key, holder }, { $set: { expiresAt: new Date(now + leaseMs) } });
      if (r.matchedCount === 0) lost = true;
      else expiresAt = now + leaseMs;
    } catch {
      // The database did not answer: the lease still holds until `expiresAt`; the next renewal tries again.
    }
  };
  const timer = setInterval(
    () => {
      renewing = renewing.then(renew);
    },
    Math.max(1, Math.floor(leaseMs / 3)),
  );
  timer.unref();
  const isLost = () => lost || Date.now() >= expiresAt;
  const lease: Lease = {
    key,
    holder,
    get lost() {
      return isLost();
    },
    assertHeld() {
      if (isLost()) throw busy();
    },
  };

  // ---- run, release ----
  try {
    return await fn(lease);
  } finally {
    clearInterval(timer);
    await renewing;
    await locks.deleteOne({ _id: key, holder }).catch(() => undefined);
  }
}
