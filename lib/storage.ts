/**
 * Disk space: recognising a write that failed for lack of space, and the free space of the service's folders
 * (docs/architecture.md "Full disks").
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";

/** SQLite's "database or disk is full" result code (SQLITE_FULL; core-backend's DbResult.BE_SQLITE_FULL). */
const SQLITE_FULL = 13;

/**
 * SQLite's SQLITE_IOERR_SHMSIZE (10 | 19 << 8): the WAL index (`-shm` file) could not be enlarged. core-backend opening
 * an iModel on a full tmpfs fails with it (`BE_SQLITE_IOERR_SHMSIZE`, measured with core-backend 5.7.3).
 */
const SQLITE_IOERR_SHMSIZE = 4874;

/** SQLite's primary result code for I/O errors (SQLITE_IOERR; extended codes keep it in their low byte). */
const SQLITE_IOERR = 10;

/** MongoDB's out-of-disk-space server error code (`OutOfDiskSpace`). */
const MONGO_OUT_OF_DISK_SPACE = 14031;

const NO_SPACE_MESSAGE =
  /no space left on device|database or disk is full|disk quota exceeded|out of disk space|ENOSPC|SQLITE_FULL/i;

/**
 * True when `err` (or an error in its `cause` chain) says that a write failed for lack of space:
 * - a Node.js system error `ENOSPC` (no space left on device) or `EDQUOT` (disk quota exceeded);
 * - the database's own error: MongoDB `OutOfDiskSpace` (code 14031), or FerretDB on SQLite, which answers
 *   `InternalError` with the message "database or disk is full (13)" (measured with FerretDB 1.24.2 on a full tmpfs);
 * - core-backend writing an iModel (SQLite): `errorNumber` 13 (BE_SQLITE_FULL), 4874 (BE_SQLITE_IOERR_SHMSIZE) or
 *   that message.
 */
export function isOutOfSpace(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== "object" || depth > 5) return false;
  const e = err as { code?: unknown; errorNumber?: unknown; message?: unknown; cause?: unknown };
  if (e.code === "ENOSPC" || e.code === "EDQUOT" || e.code === MONGO_OUT_OF_DISK_SPACE) return true;
  if (e.errorNumber === SQLITE_FULL || e.errorNumber === SQLITE_IOERR_SHMSIZE) return true;
  if (typeof e.message === "string" && NO_SPACE_MESSAGE.test(e.message)) return true;
  return e.cause !== undefined && e.cause !== err && isOutOfSpace(e.cause, depth + 1);
}

/** Free space (MiB) under which an I/O error while writing in a folder is taken for a full disk. */
export const NEARLY_FULL_MB = 8;

/**
 * True when `err` says the disk is full (see {@link isOutOfSpace}), or is an I/O error (`EIO`, SQLite's SQLITE_IOERR
 * family) while the filesystem of `folder` has less than {@link NEARLY_FULL_MB} MiB free: SQLite reports some failed
 * writes on a full disk as plain I/O errors.
 */
export async function isOutOfSpaceIn(err: unknown, folder: string): Promise<boolean> {
  if (isOutOfSpace(err)) return true;
  const e = err as { code?: unknown; errorNumber?: unknown } | null;
  const ioError = e?.code === "EIO" || (typeof e?.errorNumber === "number" && (e.errorNumber & 0xff) === SQLITE_IOERR);
  if (!ioError) return false;
  const [space] = await diskSpace([folder], NEARLY_FULL_MB).catch(() => []);
  return space?.low ?? false;
}

/** Free space of one filesystem. */
export interface DiskSpace {
  /** The folder measured (the first of the given folders on that filesystem). */
  path: string;
  /** Space available to the service's user, in MiB (statfs `bavail` × block size). */
  freeMb: number;
  /** Size of the filesystem, in MiB. */
  totalMb: number;
  /** `freeMb` below the threshold. */
  low: boolean;
}

/**
 * The free space of the filesystems holding `folders` (one entry per filesystem, told apart by device number;
 * folders that do not exist yet are measured at their nearest existing parent).
 * @param minFreeMb the threshold in MiB below which a filesystem is `low`.
 */
export async function diskSpace(folders: string[], minFreeMb: number): Promise<DiskSpace[]> {
  const seen = new Map<number, DiskSpace>();
  for (const folder of folders) {
    const existing = await nearestExisting(folder);
    if (!existing) continue;
    const { dev } = await fs.stat(existing);
    if (seen.has(dev)) continue;
    const s = await fs.statfs(existing);
    const mb = (blocks: number) => Math.floor((blocks * s.bsize) / (1024 * 1024));
    const freeMb = mb(s.bavail);
    seen.set(dev, { path: folder, freeMb, totalMb: mb(s.blocks), low: freeMb < minFreeMb });
  }
  return [...seen.values()];
}

async function nearestExisting(folder: string): Promise<string | undefined> {
  for (let p = folder; ;) {
    if (
      await fs.stat(p).then(
        () => true,
        () => false,
      )
    )
      return p;
    const parent = path.dirname(p);
    if (parent === p) return undefined;
    p = parent;
  }
}

/**
 * Makes every file and folder the process creates from now on private to the service's user (umask 077: folders
 * 0700, files 0600): iModels, logs, mail, keys (docs/architecture.md "Private data"). The embedded stack's launcher
 * sets the same umask for the servers it starts.
 */
export function usePrivateFileModes(): void {
  process.umask(0o077);
}
