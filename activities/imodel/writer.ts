/**
 * The iModel writer: puts the elements of one parsed source file into a local iModel (`StandaloneDb`) with
 * provenance recorded the iTwin way, and finds inserted / updated / deleted / unchanged elements on later runs.
 *
 * Layout written (per connection and source file):
 * - `Subject` (child of the root Subject, code value = connectionId, UserLabel = connection name)
 *   - `PhysicalPartition` + `PhysicalModel` per composite file (code value = source file path), with an
 *     `ExternalSourceAspect` Kind "Model"
 * - `RepositoryLink` per source file in the repository model (code value `${connectionId}/${sourceFileId}`,
 *   Url = source file path, UserLabel = file name, `jsonProperties.imodelSync.lastWrite`), with an
 *   `ExternalSourceAspect` Kind "DocumentWithBeGuid" (Scope = the connection's Subject, Identifier = source file id,
 *   Version and Checksum = the content hash of the file's last write: what the iModel holds of the file, see
 *   `writtenContentHashes`), and an `ExternalSource` whose Repository is the link
 *   (BIS requires `ExternalSourceAspect.Source` to point at an `ExternalSource`)
 * - `SpatialCategory` per source class name in the dictionary model (shared by every file and connection)
 * - one `Generic:PhysicalObject` per source element, each with one `ExternalSourceAspect` Kind "Element"
 *   (Scope = RepositoryLink, Source = ExternalSource, Identifier, Checksum, Version = file content hash,
 *   JsonProperties `{"imodelSync": {"checksumVersion": 2}}`: the version of the checksum algorithm)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ExternalSource,
  ExternalSourceAspect,
  IModelHost,
  InformationPartitionElement,
  LinkElement,
  PhysicalModel,
  type GeometricModel,
  SettingsPriority,
  SpatialCategory,
  StandaloneDb,
  Subject,
} from "@itwin/core-backend";
import { DbResult, type Id64String, OpenMode } from "@itwin/core-bentley";
import {
  Code,
  ColorDef,
  EcefLocation,
  type ExternalSourceAspectProps,
  type ExternalSourceProps,
  GeometryParams,
  GeometryStreamBuilder,
  IModel,
  type PhysicalElementProps,
  Placement3d,
  QueryBinder,
  QueryRowFormat,
  type RepositoryLinkProps,
  SubCategoryAppearance,
} from "@itwin/core-common";
import {
  AngleSweep,
  Arc3d,
  type GeometryQuery,
  IndexedPolyface,
  LineString3d,
  Matrix3d,
  Point3d,
  PointString3d,
  Range3d,
  Vector3d,
} from "@itwin/core-geometry";
import {
  type Georeference,
  type ParsedFile,
  type ReadTally,
  type SourceDefinition,
  type RgbaColor,
  type SourceCurve,
  type SourceElement,
  type TaskWarning,
} from "../connectors/types";
import { deletionHeld, describeDeletionGuard, formatPercent, type DeletionGuard } from "../../domain/deletion-guard";
import type { ElementChange, ElementChanges } from "../../domain/change-lists";
import type { ContentTally, NotWrittenItems, TaskItems } from "../../domain/model";
import { CHECKSUM_VERSION, compareChecksum } from "../connectors/checksum";
import { NotWrittenTally, notWrittenTotal } from "../connectors/common/items";
import { listed, WarningTally } from "../connectors/common/warnings";
import { ensureContentSchema } from "./content-schema";
import {
  AGGREGATES_CLASS,
  CONTAINS_CLASS,
  ContentTallies,
  DEFINITIONS_SUFFIX,
  definitionProps,
  deleteRelationships,
  elementClass,
  ensureDefinitionModel,
  inWriteOrder,
  insertContainment,
  insertMaterialUses,
  insertPropertyValues,
  KIND_DEFINITION,
  replacePropertyValues,
  USES_MATERIAL_CLASS,
} from "./content-writer";
import { crsOf, ecefLocationDifference, ecefLocationFor, georeferenceWarnings, UnsupportedCrsError } from "./georef";

/** Setting that stops IModelHost from reaching the cloud GCS workspace at the first open (≈16 s DNS stall offline). */
const DISABLE_GCS_WORKSPACES = "itwin/core/gcs/disableWorkspaces";
const SETTINGS_DICTIONARY = "imodel-sync/application";
const CONNECTOR_NAME = "imodel-sync";
const CONNECTOR_VERSION = "0.1.0";

/** What {@link writeSourceFile} needs to write one source file of one connection. */
export interface WriteInput {
  /** Absolute path of the iModel (.bim, StandaloneDb). Created when missing (see {@link ensureIModel}). */
  bimPath: string;
  /** Name of the root Subject when the write creates the `.bim`; default: the file's name without `.bim`. */
  iModelName?: string;
  /**
   * Called when the write created the `.bim`, with what {@link ensureIModel} did (the companion files of an earlier
   * database it took away), before anything is written into it: the file task logs it.
   */
  onCreated?: (created: EnsuredIModel) => void;
  connectionId: string;
  /** Display name of the connection (UserLabel of its Subject; renames are applied). */
  connectionName: string;
  /** Stable id of the source file within the connection (provenance identifier of its RepositoryLink). */
  sourceFileId: string;
  /** Path of the file relative to the source root; shown as the RepositoryLink Url and used as model name. */
  sourceFilePath: string;
  /** Hash of the file's bytes; stored as Version of every aspect written in this run. */
  contentHash: string;
  /** Id of the run (idempotency key together with contentHash). */
  runId: string;
  parsed: ParsedFile;
  /**
   * The connection's deletion guard (`domain/deletion-guard.ts`); absent: deletions are applied (guard off, or the run
   * was asked with `confirmDeletions`).
   */
  deletionGuard?: DeletionGuard;
  /**
   * Called once per element written or compared (cheap calls): the file activity records its heartbeats from here,
   * since the write is synchronous on the main thread (docs/architecture.md "Heartbeats").
   */
  heartbeat?: () => void;
  /**
   * Called with the elements the write inserted, updated and deleted (README "What a run changed"), once every element
   * is written and before the transaction is saved: a failure here abandons the write, so a committed write always has
   * its change list (the file task stores it). Not called when nothing changed, nor on a replay.
   */
  recordChanges?: (changes: ElementChanges) => Promise<void>;
  /**
   * Test hook only (test/checksum-migration.test.ts), never set by the service: `true` writes the element aspects
   * without the checksum version, as the releases before checksum version 2 did, to build the iModels an upgrade
   * finds.
   */
  writeAsBeforeChecksumVersion2?: boolean;
  /**
   * Test hook only (test/checksum-migration.test.ts), never set by the service: `true` marks the element aspects with
   * checksum version 2, as the releases before version 3 did (with `parsed` holding their version 2 checksums).
   */
  writeAsChecksumVersion2?: boolean;
}

/** Element counts of one write. */
export interface WriteCounts {
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

/** Outcome of {@link writeSourceFile}. */
export interface WriteResult extends WriteCounts {
  repositoryLinkId: Id64String;
  /** The PhysicalModel (and PhysicalPartition) id of the file. */
  modelId: Id64String;
  /** True when the same runId + contentHash had already been written; nothing was written this time. */
  replayed: boolean;
  warnings: TaskWarning[];
  /** What the file's georeference did to the iModel's location (see {@link applyGeoreference}). */
  georeference: GeoreferenceOutcome;
  /** The projected CRS of the file's georeference (EPSG code and dataset name), when it has one that was used. */
  crs?: { epsg: number; name: string };
  /**
   * The file's items: those the connector read (`parsed.items`), written (`inserted`, `updated`, `unchanged`) or not
   * written (the connector's reasons and the writer's own: `DuplicateIdentifier`, `InvalidElementData`).
   */
  items: TaskItems;
}

/**
 * `set`: the iModel had no EcefLocation and this file's georeference set it; `kept`: the iModel's location agrees with
 * the file's; `conflict`: it does not (warning `GeoreferenceConflict`; the location is kept); `none`: the file has no
 * usable georeference.
 */
export type GeoreferenceOutcome = "set" | "kept" | "conflict" | "none";

/** Stored in the RepositoryLink's jsonProperties as `imodelSync.lastWrite`. */
interface LastWrite {
  runId: string;
  contentHash: string;
  counts: WriteCounts;
  modelId?: Id64String;
  /** Outcome of the georeference, its warnings and CRS, so that a replay answers the same. */
  georeference?: { outcome: GeoreferenceOutcome; warnings: TaskWarning[]; crs?: { epsg: number; name: string } };
  /** The writer's own not-written items and warnings, so that a replay answers the same. */
  notWritten?: NotWrittenItems[];
  warnings?: TaskWarning[];
  /** The writer's property, relationship and definition tallies. */
  content?: ContentRecord;
}

// ---------------------------------------------------------------------------------------------------------
// Host
// ---------------------------------------------------------------------------------------------------------

let hostStartup: Promise<void> | undefined;

function addAppSettings(): void {
  const settings = IModelHost.appWorkspace.settings;
  if (!settings.getBoolean(DISABLE_GCS_WORKSPACES, false)) {
    settings.addDictionary(
      { name: SETTINGS_DICTIONARY, priority: SettingsPriority.application },
      { [DISABLE_GCS_WORKSPACES]: true },
    );
  }
}

/**
 * Starts the iTwin.js backend host once per process (later calls return the same promise) and adds an
 * application settings dictionary with `"itwin/core/gcs/disableWorkspaces": true` before any iModel can be
 * created or opened (registered on `IModelHost.onWorkspaceStartup`, so it is in place as soon as the
 * application workspace exists).
 *
 * @param cacheDir directory for the host's caches; its profile (`<cacheDir>/profiles/<profileName>`) is
 *   locked by the process: two processes must not share cacheDir + profileName (startup then throws
 *   "Profile [...] is already in use by another process").
 * @param opts.profileName profile name inside cacheDir (default "default").
 */
export function startIModelHost(cacheDir: string, opts?: { profileName?: string }): Promise<void> {
  if (!hostStartup) {
    hostStartup = (async () => {
      if (IModelHost.isValid) {
        addAppSettings(); // started elsewhere: still make sure the GCS workspaces are off
        return;
      }
      const remove = IModelHost.onWorkspaceStartup.addListener(addAppSettings);
      try {
        await IModelHost.startup({ cacheDir, profileName: opts?.profileName });
      } finally {
        remove();
      }
      addAppSettings(); // no-op when the listener ran
    })().catch((e: unknown) => {
      hostStartup = undefined;
      throw e;
    });
  }
  return hostStartup;
}

export function requireHost(): void {
  if (!IModelHost.isValid) throw new Error("IModelHost is not started: call startIModelHost(cacheDir) first");
}

// ---------------------------------------------------------------------------------------------------------
// iModel file
// ---------------------------------------------------------------------------------------------------------

/**
 * The files SQLite keeps beside a database at `<db><suffix>`: the write-ahead log (a `.bim` is in WAL mode), its index,
 * and a rollback journal (used before the file is switched to WAL). SQLite finds them by name only. A `-wal` left at
 * the path of a `.bim` that was moved or deleted without it holds that database's commits not yet checkpointed; when
 * SQLite creates a new database there, it deletes a `-wal` or `-journal` it finds (an empty database has no log:
 * pager.c `pagerOpenWalIfPresent`, `hasHotJournal`), so those commits would be lost without a word; and a non-empty
 * database put at the path later (a `.bim` moved back, a copy) would have that `-wal` applied to it.
 */
const SQLITE_COMPANIONS = ["-wal", "-shm", "-journal"] as const;

/** A companion file (see `SQLITE_COMPANIONS`) of an absent `.bim` that {@link ensureIModel} took away. */
export interface StaleCompanion {
  /** Where it lay: `<bim>-wal`, `<bim>-shm` or `<bim>-journal`. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /**
   * Where it was moved: `<path>.orphaned-<UTC time>`, beside it. Absent when it was removed: an `-shm` (an index SQLite
   * rebuilds, never data) or an empty file.
   */
  movedTo?: string;
}

/** What {@link ensureIModel} did. */
export interface EnsuredIModel {
  /** True when the `.bim` was missing and has been created. */
  created: boolean;
  /** Companion files of an earlier database at the path, taken away before the `.bim` was created. */
  stale: StaleCompanion[];
}

/**
 * Takes away the companion files (`-wal`, `-shm`, `-journal`) lying at the path of a `.bim` that does not exist, before
 * a new iModel is created there: they belong to a database that was at this path (moved or deleted without them), see
 * `SQLITE_COMPANIONS`. A non-empty `-wal` or `-journal` may hold that database's last commits, so it is moved aside,
 * never deleted (renamed `<name>.orphaned-<UTC time>`, in the same folder: put back beside the moved `.bim` under its
 * own name, `<moved>.bim-wal`, its commits are read with it); an `-shm` (an index SQLite rebuilds) or an empty file
 * holds nothing and is removed.
 * @throws Error naming the file when one is not a regular file or cannot be moved or removed (nothing is created then).
 */
function setAsideStaleCompanions(bimPath: string): StaleCompanion[] {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const stale: StaleCompanion[] = [];
  for (const suffix of SQLITE_COMPANIONS) {
    const file = bimPath + suffix;
    let size: number;
    try {
      const st = fs.lstatSync(file);
      if (!st.isFile()) throw new Error("it is not a regular file");
      size = st.size;
      if (suffix === "-shm" || size === 0) {
        fs.rmSync(file);
        stale.push({ path: file, size });
      } else {
        const movedTo = `${file}.orphaned-${stamp}`;
        fs.renameSync(file, movedTo);
        // Private like every file of DATA_DIR (docs/architecture.md "Private data"), whoever wrote it.
        fs.chmodSync(movedTo, 0o600);
        stale.push({ path: file, size, movedTo });
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new Error(
        `the iModel ${bimPath} does not exist but ${file}, left by an earlier database at that path, cannot be taken ` +
          `away (${(e as Error).message}); it may hold commits of that database. Move or delete it`,
        { cause: e },
      );
    }
  }
  return stale;
}

/**
 * Creates an empty, editable StandaloneDb (transactions enabled) at `bimPath`, parent folders included, with
 * a root Subject named `name`, unless the file already exists (then nothing happens).
 * Before creating it, what an earlier database left at that path is dealt with, since SQLite would take it as the new
 * file's own: an iModel this process kept open from it (see {@link keepIModelsOpen}; the file was moved or deleted
 * since) is checkpointed into that file and closed, and its companion files removed (see `closeKeptDb`); companion
 * files still lying there (`-wal`, `-shm`, `-journal`: the file was moved or deleted without them, or by a process that
 * had not closed it) are taken away, a `-wal` or `-journal` with content moved aside, not deleted (see
 * `setAsideStaleCompanions`), and reported in `stale` for the caller to log.
 * New iModels from core-backend 5.7 already contain the Generic schema (1.0.5) needed for
 * `Generic:PhysicalObject`; for older files without it, {@link writeSourceFile} imports it before writing
 * (schema import is asynchronous in core-backend 5, so it cannot happen in this synchronous function).
 * Callers that may run beside a write of the same path hold its lock ({@link withPathLock}), as
 * {@link writeSourceFile} does.
 * @throws when the host is not started, a stale companion file cannot be taken away, or the file cannot be created.
 */
export function ensureIModel(bimPath: string, name: string): EnsuredIModel {
  requireHost();
  if (fs.existsSync(bimPath)) return { created: false, stale: [] };
  closeKept(path.resolve(bimPath)); // the iModel kept from the file that was here, which it completes
  const stale = setAsideStaleCompanions(bimPath);
  fs.mkdirSync(path.dirname(bimPath), { recursive: true });
  const db = StandaloneDb.createEmpty(bimPath, { rootSubject: { name }, enableTransactions: true });
  try {
    db.saveChanges("imodel-sync: create iModel");
  } finally {
    db.close();
  }
  return { created: true, stale };
}

/** Imports Generic (own commit, before the write transaction) when the iModel lacks it. */
async function ensureGenericSchema(db: StandaloneDb): Promise<void> {
  if (db.querySchemaVersion("Generic") !== undefined) return;
  await db.importSchemas([findGenericSchemaFile()]);
}

function findGenericSchemaFile(): string {
  const nativeDir = path.dirname(require.resolve("@bentley/imodeljs-native/package.json"));
  for (const sub of fs.readdirSync(nativeDir)) {
    const candidate = path.join(nativeDir, sub, "Assets", "ECSchemas", "Dgn", "Generic.ecschema.xml");
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error("Generic.ecschema.xml not found in @bentley/imodeljs-native");
}

// ---------------------------------------------------------------------------------------------------------
// One writer per iModel path within the process
// ---------------------------------------------------------------------------------------------------------

const pathLocks = new Map<string, Promise<unknown>>();

export async function withPathLock<T>(bimPath: string, work: () => Promise<T>): Promise<T> {
  const key = path.resolve(bimPath);
  const previous = pathLocks.get(key) ?? Promise.resolve();
  const run = previous.then(work, work);
  const tail = run.catch(() => undefined);
  pathLocks.set(key, tail);
  try {
    return await run;
  } finally {
    if (pathLocks.get(key) === tail) pathLocks.delete(key);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Open iModels kept between writes (docs/architecture.md "Open iModels between writes")
// ---------------------------------------------------------------------------------------------------------

interface KeptIModel {
  db: StandaloneDb;
  /**
   * Inode, size and modification time (ms) of the file when it was kept, its WAL checkpointed into it: another file at
   * the path (replaced, re-created, or overwritten in place by a copy) is opened afresh.
   */
  ino: number;
  size: number;
  mtimeMs: number;
  /** SQLite's `PRAGMA data_version` when it was kept: it changes when another connection commits to the file. */
  dataVersion: number;
  timer: NodeJS.Timeout;
}

const keptIModels = new Map<string, KeptIModel>();
let keepOpenMs = 0;

/**
 * Keeps an iModel open read-write for `ms` after each write through {@link writableInLock} (0, the default: close
 * it after each write). Opening a .bim costs tens of ms (schemas, caches); a run writes its files one after another.
 * A kept iModel is reused only when nothing else changed the file meanwhile (same inode, same SQLite data_version:
 * no commit by another connection or process), otherwise it is closed and opened afresh. Every write still commits
 * its own transaction, so what is kept open holds no pending change.
 * @param ms idle time in ms after which a kept iModel is closed.
 */
export function keepIModelsOpen(ms: number): void {
  keepOpenMs = Math.max(0, ms);
}

/** Closes every kept iModel (each under its path lock); for a process that stops. */
export async function closeKeptIModels(): Promise<void> {
  await Promise.all([...keptIModels.keys()].map((key) => withPathLock(key, async () => closeKept(key))));
}

/** Closes the iModel kept at `key` (when `only` is given: only if that is still the one kept). Under the path lock. */
function closeKept(key: string, only?: KeptIModel): void {
  const kept = keptIModels.get(key);
  if (!kept || (only && kept !== only)) return;
  keptIModels.delete(key);
  clearTimeout(kept.timer);
  closeKeptDb(key, kept.db);
}

/**
 * Closes a kept iModel without saving (see {@link discard}). When its file is no longer at its path (moved or deleted
 * while it was kept), its WAL is first checkpointed into that file through the open descriptors (`performCheckpoint`,
 * best effort), and the `-wal` (then empty) and `-shm` it leaves at the path are removed: SQLite does not checkpoint a
 * database that was moved when it closes it, and leaves both at the old path, the moved file's last commits in that
 * `-wal` (a new iModel created there would then read them, see {@link ensureIModel}). A file replaced by another at the
 * path is closed as it is.
 */
function closeKeptDb(key: string, db: StandaloneDb): void {
  let checkpointed = false;
  if (!fs.existsSync(key)) {
    try {
      db.performCheckpoint();
      checkpointed = true;
    } catch {
      // not checkpointed: what is left at the path stays for ensureIModel to move aside
    }
  }
  discard(db);
  if (!checkpointed || fs.existsSync(key)) return;
  try {
    if (fs.statSync(`${key}-wal`).size === 0) fs.rmSync(`${key}-wal`);
    fs.rmSync(`${key}-shm`, { force: true });
  } catch {
    // nothing there, or it cannot be removed: ensureIModel deals with it
  }
}

function dataVersionOf(db: StandaloneDb): number {
  return db.withSqliteStatement("PRAGMA data_version", (stmt) => {
    stmt.step();
    return stmt.getValueInteger(0);
  });
}

/** The kept iModel of `key` when it is still the file at that path unchanged by others; else undefined (closed). */
function takeKept(key: string): StandaloneDb | undefined {
  const kept = keptIModels.get(key);
  if (!kept) return undefined;
  keptIModels.delete(key);
  clearTimeout(kept.timer);
  let same = false;
  try {
    const st = fs.statSync(key);
    same =
      st.ino === kept.ino &&
      st.size === kept.size &&
      st.mtimeMs === kept.mtimeMs &&
      dataVersionOf(kept.db) === kept.dataVersion;
  } catch {
    // the file is gone or unreadable: open afresh (which reports why)
  }
  if (same) return kept.db;
  closeKeptDb(key, kept.db);
  return undefined;
}

/**
 * Abandons what `db` has not saved and closes it without saving; never throws (the caller's own error is the one that
 * matters). `IModelDb.close()` commits before it closes a read-write iModel (core-backend 5.7), and after a commit that
 * failed (e.g. `BE_SQLITE_FULL` on a full disk) every later commit on that connection fails too: close() would throw
 * half-way and leave the file open and locked for good. Here nothing is ever left to commit (every write saves what it
 * wrote before its iModel is kept or closed), so this instance's close() runs with its commit step skipped: SQLite then
 * rolls back whatever the connection still holds.
 */
function discard(db: StandaloneDb): void {
  try {
    db.abandonChanges();
  } catch {
    // the close below rolls back what is left
  }
  try {
    (db as { saveChanges: StandaloneDb["saveChanges"] }).saveChanges = () => undefined;
    db.close();
  } catch {
    // nothing more can be done with this connection
  }
}

/**
 * Runs `work` on the iModel at `bimPath` opened read-write, for a caller that holds the path lock
 * ({@link withPathLock}): the one kept open by the last write when it is still valid, else opened now. After `work`:
 * unsaved changes are saved (as `IModelDb.close()` would), and the iModel is kept open (see {@link keepIModelsOpen}) or
 * closed. When `work` throws, its changes are abandoned and the iModel closed. The file must exist.
 * @throws whatever opening the file (IModelError) or `work` throws.
 */
export async function writableInLock<T>(bimPath: string, work: (db: StandaloneDb) => Promise<T>): Promise<T> {
  const key = path.resolve(bimPath);
  const db = takeKept(key) ?? StandaloneDb.openFile(key, OpenMode.ReadWrite);
  let result: T;
  try {
    result = await work(db);
    db.saveChanges(); // what `work` left unsaved, as IModelDb.close() would; nothing when it saved (the writer does)
  } catch (e) {
    discard(db);
    throw e;
  }
  if (keepOpenMs <= 0) {
    discard(db);
    return result;
  }
  try {
    // The WAL is checkpointed into the .bim before the iModel is kept: while the worker holds it, the file on disk is
    // whole and its -wal empty, so a copy of the .bim taken meanwhile misses nothing, and a file put in its place (a
    // restored copy) finds no commits of this one to read (docs/architecture.md "Open iModels between writes").
    db.performCheckpoint();
    const st = fs.statSync(key);
    const kept: KeptIModel = {
      db,
      ino: st.ino,
      size: st.size,
      mtimeMs: st.mtimeMs,
      dataVersion: dataVersionOf(db),
      timer: setTimeout(() => void withPathLock(key, async () => closeKept(key, kept)), keepOpenMs).unref(),
    };
    keptIModels.set(key, kept);
  } catch {
    discard(db);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------

interface ExistingElement {
  elementId: Id64String;
  aspectId: Id64String;
  checksum?: string;
  /** The aspect's Version (content hash of the file when the element was last written). */
  version?: string;
  /** Version of the checksum algorithm of `checksum`; undefined for aspects written before version 2. */
  checksumVersion?: number;
  /** The element's class (`Generic:PhysicalObject`, `ImodelSync:Space`, …). */
  className?: string;
}

/** The aspect's JsonProperties for checksum version `version`. */
function checksumVersionJson(version: number): string {
  return JSON.stringify({ imodelSync: { checksumVersion: version } });
}

/** The checksum version recorded in an aspect's JsonProperties; undefined when there is none (or it is unreadable). */
function checksumVersionOf(jsonProperties: string | null | undefined): number | undefined {
  if (!jsonProperties) return undefined;
  try {
    const v: unknown = (JSON.parse(jsonProperties) as { imodelSync?: { checksumVersion?: unknown } } | null)?.imodelSync
      ?.checksumVersion;
    return typeof v === "number" ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Replaces the Checksum and JsonProperties of an element's aspect without changing the element. core-backend's
 * `updateAspect` also sets the owning element's LastMod (docs/facts.md "iTwin.js"), so the element's LastMod is read
 * before and put back after, in the same transaction: an unchanged element keeps its LastMod
 * (docs/architecture.md "Element checksums").
 */
function rewriteAspectChecksum(db: StandaloneDb, prior: ExistingElement, aspect: ExternalSourceAspectProps): void {
  const lastMod = db.withPreparedSqliteStatement("SELECT LastMod FROM bis_Element WHERE Id=?", (stmt) => {
    stmt.bindId(1, prior.elementId);
    if (stmt.step() !== DbResult.BE_SQLITE_ROW) throw new Error(`element ${prior.elementId} not found`);
    return stmt.getValueDouble(0);
  });
  db.elements.updateAspect({ ...aspect, id: prior.aspectId } as ExternalSourceAspectProps);
  db.withPreparedSqliteStatement("UPDATE bis_Element SET LastMod=? WHERE Id=?", (stmt) => {
    stmt.bindDouble(1, lastMod);
    stmt.bindId(2, prior.elementId);
    stmt.stepForWrite();
  });
}

/**
 * Thrown when the connection's deletion guard holds a file (`domain/deletion-guard.ts`): writing it would delete too
 * large a share of its elements. Nothing of the file is written (its transaction is abandoned).
 */
export class DeletionGuardError extends Error {
  constructor(
    message: string,
    /** Elements of the file in the iModel before the write. */
    readonly existing: number,
    /** Elements the write would have deleted. */
    readonly deleted: number,
  ) {
    super(message);
    this.name = "DeletionGuardError";
  }
}

/**
 * Why the writer cannot store an element (non-finite coordinates, mesh indices out of range, malformed curves), or
 * undefined when it can.
 */
function elementDataProblem(e: SourceElement): string | undefined {
  if (!e.origin.every(Number.isFinite)) return `origin is not finite (${e.origin.join(",")})`;
  for (const m of e.meshes) {
    for (let i = 0; i < m.positions.length; i++) {
      if (!Number.isFinite(m.positions[i])) return "mesh position is not finite";
    }
    const n = m.positions.length / 3;
    for (let i = 0; i < m.indices.length; i++) {
      if (m.indices[i] >= n) return `mesh index ${m.indices[i]} out of range (${n} points)`;
    }
  }
  for (const c of e.curves ?? []) {
    const numbers =
      c.kind === "linestring" ? [...c.points] : [...c.center, ...c.normal, c.radius, c.startAngle, c.sweepAngle];
    if (!numbers.every(Number.isFinite)) return "curve data is not finite";
    if (c.kind === "linestring" && (c.points.length < 3 || c.points.length % 3 !== 0))
      return `linestring has ${c.points.length} coordinates (needs x,y,z triples)`;
    if (c.kind === "arc" && (c.radius <= 0 || Math.hypot(...c.normal) === 0)) return "arc has no radius or normal";
  }
  return undefined;
}

/** A curve in element-local coordinates: one point → PointString3d (a marker), else LineString3d or Arc3d. */
function curveGeometry(c: SourceCurve, ox: number, oy: number, oz: number): GeometryQuery {
  if (c.kind === "linestring") {
    const pts: Point3d[] = [];
    for (let i = 0; i + 2 < c.points.length; i += 3)
      pts.push(Point3d.create(c.points[i] - ox, c.points[i + 1] - oy, c.points[i + 2] - oz));
    if (pts.length === 1) return PointString3d.create(pts);
    if (c.closed) pts.push(pts[0].clone());
    return LineString3d.create(pts);
  }
  // The arc's plane x axis follows the DXF arbitrary axis algorithm = x column of createRigidHeadsUp (see SourceCurve).
  const frame = Matrix3d.createRigidHeadsUp(Vector3d.create(c.normal[0], c.normal[1], c.normal[2]));
  return Arc3d.create(
    Point3d.create(c.center[0] - ox, c.center[1] - oy, c.center[2] - oz),
    frame.columnX().scale(c.radius),
    frame.columnY().scale(c.radius),
    AngleSweep.createStartSweepRadians(c.startAngle, c.sweepAngle),
  );
}

function sameColor(a?: RgbaColor, b?: RgbaColor): boolean {
  return a === b || (!!a && !!b && a.every((v, i) => v === b[i]));
}

function toByte(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v * 255)));
}

/** Geometry in element-local coordinates (positions minus origin) and the matching local range. */
function buildGeometry(e: SourceElement, categoryId: Id64String): Pick<PhysicalElementProps, "geom" | "placement"> {
  const [ox, oy, oz] = e.origin;
  const placement: PhysicalElementProps["placement"] = { origin: [ox, oy, oz], angles: {} };
  const curves = e.curves ?? [];
  if (e.meshes.length === 0 && curves.length === 0) return { placement };
  const builder = new GeometryStreamBuilder();
  const range = Range3d.createNull();
  const paramsFor = (rgba?: RgbaColor) => {
    const params = new GeometryParams(categoryId);
    if (rgba) {
      const [r, g, b, a] = rgba;
      const color = ColorDef.from(toByte(r), toByte(g), toByte(b));
      params.lineColor = color;
      params.fillColor = color;
      if (a < 1) params.elmTransparency = Math.max(0, Math.min(1, 1 - a));
    }
    return params;
  };
  for (const m of e.meshes) {
    builder.appendGeometryParamsChange(paramsFor(m.color));
    const polyface = IndexedPolyface.create();
    const p = m.positions;
    for (let i = 0; i < p.length; i += 3) {
      const x = p[i] - ox;
      const y = p[i + 1] - oy;
      const z = p[i + 2] - oz;
      polyface.addPointXYZ(x, y, z);
      range.extendXYZ(x, y, z);
    }
    const idx = m.indices;
    for (let t = 0; t + 2 < idx.length; t += 3) {
      polyface.addPointIndex(idx[t]);
      polyface.addPointIndex(idx[t + 1]);
      polyface.addPointIndex(idx[t + 2]);
      polyface.terminateFacet();
    }
    builder.appendGeometry(polyface);
  }
  let lastColor: RgbaColor | undefined | null = null; // null: no params appended for curves yet
  for (const c of curves) {
    if (lastColor === null || !sameColor(lastColor, c.color)) {
      builder.appendGeometryParamsChange(paramsFor(c.color));
      lastColor = c.color;
    }
    const g = curveGeometry(c, ox, oy, oz);
    range.extendRange(g.range());
    builder.appendGeometry(g);
  }
  placement.bbox = range.isNull ? undefined : { low: range.low.toJSON(), high: range.high.toJSON() };
  return { placement, geom: builder.geometryStream };
}

export async function queryRows(db: StandaloneDb, ecsql: string, args: unknown[]): Promise<unknown[][]> {
  const reader = db.createQueryReader(ecsql, QueryBinder.from(args), {
    rowFormat: QueryRowFormat.UseECSqlPropertyIndexes,
    usePrimaryConn: true,
  });
  return (await reader.toArray()) as unknown[][];
}

function ensureSubject(db: StandaloneDb, connectionId: string, connectionName: string): Id64String {
  const code = Subject.createCode(db, IModel.rootSubjectId, connectionId);
  const existing = db.elements.queryElementIdByCode(code);
  if (existing) {
    const props = db.elements.getElementProps(existing);
    if (props.userLabel !== connectionName) db.elements.updateElement({ ...props, userLabel: connectionName });
    return existing;
  }
  const subject = Subject.create(db, IModel.rootSubjectId, connectionId);
  subject.userLabel = connectionName;
  return subject.insert();
}

function ensureCategory(db: StandaloneDb, className: string, cache: Map<string, Id64String>): Id64String {
  const cached = cache.get(className);
  if (cached) return cached;
  const id =
    SpatialCategory.queryCategoryIdByName(db, IModel.dictionaryId, className) ??
    SpatialCategory.insert(db, IModel.dictionaryId, className, new SubCategoryAppearance());
  cache.set(className, id);
  return id;
}

function readLastWrite(props: { jsonProperties?: { [key: string]: unknown } }): LastWrite | undefined {
  const ns = props.jsonProperties?.imodelSync as { lastWrite?: LastWrite } | undefined;
  return ns?.lastWrite;
}

/**
 * Writes the elements of one parsed source file into the iModel in one transaction (one `saveChanges` at
 * the end; on any error `abandonChanges()` leaves the file as it was and the error is rethrown).
 *
 * Element level change detection, by `ExternalSourceAspect` (Scope = the file's RepositoryLink, Kind
 * "Element"): new identifier → insert; same identifier, other checksum → update in place (same ElementId:
 * geometry, category, label, properties; aspect Checksum/Version updated); same checksum → untouched (its
 * LastMod does not change); identifier gone → element (and its aspects) deleted, except the identifiers in
 * `parsed.keep` (items the connector could not convert this time) and elements whose data cannot be stored
 * (non-finite coordinates, mesh indices out of range, malformed curves: not written, warning and not-written reason
 * `InvalidElementData`): their elements stay as they were. A second element with an identifier already written is
 * not written (`DuplicateIdentifier`). Aspects written before checksum
 * version 2 (no `checksumVersion` in their JsonProperties) are compared with the connector's earlier checksum
 * (`compareChecksum`, needs `parsed.connectorType`); when it is equal the element is unchanged and only the aspect's
 * Checksum and JsonProperties are rewritten, its LastMod kept (docs/architecture.md "Element checksums").
 *
 * Deletion guard: with `input.deletionGuard`, a write that would delete a share of the file's elements the guard holds
 * (`deletionHeld`) throws `DeletionGuardError` before any element is written; the transaction is abandoned.
 *
 * Change list: with `input.recordChanges`, the elements inserted, updated and deleted (source identifier, element id,
 * source class, category) are handed to it before the transaction is saved (README "What a run changed").
 *
 * Items: `items` accounts for every item the connector read (`parsed.items`): written (inserted, updated, unchanged)
 * or not written with its reason (the connector's and the writer's own), `read` = written + not written.
 *
 * Idempotent for activity retries: `{runId, contentHash, counts}` is stored in the RepositoryLink's
 * `jsonProperties.imodelSync.lastWrite` in the same transaction; a call with the same runId and contentHash
 * returns the stored counts with `replayed: true` and writes nothing.
 *
 * Geometry: each element's placement origin is `SourceElement.origin` (metres, iModel spatial coordinates,
 * no rotation); meshes become `IndexedPolyface`s in element-local coordinates, one GeometryParams (category
 * + colour, transparency from alpha) per mesh; placement bbox = local range of the mesh points (core-backend
 * stores the bbox it is given, it does not recompute it). When anything changed, the project extents are set
 * to the computed range of all geometric elements (`computeProjectExtents`).
 *
 * Georeference: when `input.parsed.georeference` is present, the iModel's EcefLocation is set from it if the iModel
 * has none yet, else only compared with it (`georeference` in the result: set / kept / conflict / none; a conflict or
 * an unusable georeference is reported in `warnings`). A later file never moves the iModel.
 *
 * `warnings` holds the writer's own warnings only (e.g. `DuplicateIdentifier`, `InvalidElementData`, `GeoreferenceConflict`); the
 * connector's warnings are in `input.parsed.warnings`.
 *
 * Calls for the same `bimPath` are serialised within the process; the iModel is closed on return, or kept open
 * between writes when {@link keepIModelsOpen} says so (its transaction always committed or abandoned).
 * @throws Error when the host is not started; `DeletionGuardError` when the deletion guard holds the file;
 *   IModelError from core-backend (e.g. the file is locked by another process).
 */
export async function writeSourceFile(input: WriteInput): Promise<WriteResult> {
  requireHost();
  return withPathLock(input.bimPath, async () => {
    const created = ensureIModel(
      input.bimPath,
      input.iModelName ?? path.basename(input.bimPath).replace(/\.bim$/i, ""),
    );
    if (created.created) input.onCreated?.(created);
    return writableInLock(input.bimPath, async (db) => {
      await ensureGenericSchema(db);
      await ensureContentSchema(db);
      return writeInOpenDb(db, input);
    });
  });
}

/** The Kind of the provenance aspect on a source file's RepositoryLink (BIS: a document identified by a BeGuid). */
const KIND_DOCUMENT = "DocumentWithBeGuid";

/**
 * What the iModel at `bimPath` holds of the source files of a connection: for each file whose data it holds, the
 * content hash of the bytes that data was last written from. That is the Version of the file's provenance on its
 * RepositoryLink (ExternalSourceAspect Kind "DocumentWithBeGuid", Scope = the connection's Subject, Identifier = the
 * source file id), which every write of the file sets in the transaction that writes its elements (see
 * {@link writeSourceFile}) and which a removal of the file's data removes with them (`./remove.ts`). So a `.bim` created
 * afresh, replaced by an older copy or by another iModel, or from which the file's data was removed, answers another
 * hash for the file, or none. The file task and run planning ask it before they skip a file as unchanged
 * (`activities/file-sync.ts` `fileUnchanged`). Read under the per-path lock: never half a write of this process.
 * @param options.sourceFileId only this file (a file task); absent: every file of the connection (run planning).
 * @param options.readOnly open the `.bim` read-only (a dry run, which writes nothing); otherwise through
 *   {@link writableInLock}: the iModel the last write kept open is reused, and this one is kept for the run's writes.
 * @returns content hashes by source file id (empty when the connection has no data there); undefined when the `.bim`
 *   does not exist.
 * @throws Error when the host is not started; core-backend errors from opening (not an iModel, locked by another
 *   process) or querying.
 */
export async function writtenContentHashes(
  bimPath: string,
  connectionId: string,
  options: { sourceFileId?: string; readOnly?: boolean } = {},
): Promise<Map<string, string> | undefined> {
  requireHost();
  return withPathLock(bimPath, async () => {
    if (!fs.existsSync(bimPath)) return undefined;
    const read = (db: StandaloneDb) => contentHashesIn(db, connectionId, options.sourceFileId);
    if (!options.readOnly) return writableInLock(bimPath, read);
    const db = StandaloneDb.openFile(bimPath, OpenMode.Readonly);
    try {
      return await read(db);
    } finally {
      db.close();
    }
  });
}

/** See {@link writtenContentHashes}: the query, on an open iModel. */
async function contentHashesIn(
  db: StandaloneDb,
  connectionId: string,
  sourceFileId: string | undefined,
): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  const subjectId = db.elements.queryElementIdByCode(Subject.createCode(db, IModel.rootSubjectId, connectionId));
  if (!subjectId) return hashes;
  const one = sourceFileId !== undefined;
  const rows = await queryRows(
    db,
    `SELECT Identifier, Version FROM BisCore.ExternalSourceAspect WHERE Scope.Id=? AND Kind=?${one ? " AND Identifier=?" : ""}`,
    [subjectId, KIND_DOCUMENT, ...(one ? [sourceFileId] : [])],
  );
  for (const [identifier, version] of rows as [string, string | null | undefined][])
    if (version) hashes.set(identifier, version);
  return hashes;
}

async function writeInOpenDb(db: StandaloneDb, input: WriteInput): Promise<WriteResult> {
  const warnings: TaskWarning[] = [];
  const linkCode = LinkElement.createCode(db, IModel.repositoryModelId, `${input.connectionId}/${input.sourceFileId}`);
  const existingLinkId = db.elements.queryElementIdByCode(linkCode);

  // Replay of an already written (runId, contentHash): answer from the stored result, write nothing.
  if (existingLinkId) {
    const last = readLastWrite(db.elements.getElementProps(existingLinkId));
    if (last && last.runId === input.runId && last.contentHash === input.contentHash) {
      const subjectId = db.elements.queryElementIdByCode(
        Subject.createCode(db, IModel.rootSubjectId, input.connectionId),
      );
      const modelId =
        last.modelId ??
        (subjectId &&
          db.elements.queryElementIdByCode(
            InformationPartitionElement.createCode(db, subjectId, input.sourceFilePath),
          )) ??
        "";
      const geo = last.georeference ?? { outcome: "none", warnings: [] };
      return {
        ...last.counts,
        repositoryLinkId: existingLinkId,
        modelId,
        replayed: true,
        warnings: [...(last.warnings ?? []), ...geo.warnings],
        georeference: geo.outcome,
        ...(geo.crs ? { crs: geo.crs } : {}),
        items: itemsOf(input.parsed, last.counts, last.notWritten ?? [], last.content),
      };
    }
  }

  const subjectId = ensureSubject(db, input.connectionId, input.connectionName);

  // RepositoryLink + ExternalSource for the file.
  const fileLabel = path.basename(input.sourceFilePath);
  const format = path.extname(input.sourceFilePath).replace(/^\./, "").toUpperCase() || undefined;
  let linkId: Id64String;
  if (existingLinkId) {
    linkId = existingLinkId;
  } else {
    const linkProps: RepositoryLinkProps = {
      classFullName: "BisCore:RepositoryLink",
      model: IModel.repositoryModelId,
      code: linkCode,
      url: input.sourceFilePath,
      userLabel: fileLabel,
      format,
    };
    linkId = db.elements.insertElement(linkProps);
  }
  const externalSourceId = ensureExternalSource(db, linkId, fileLabel);

  // Provenance of the file on the link.
  const linkAspect: ExternalSourceAspectProps = {
    classFullName: ExternalSourceAspect.classFullName,
    element: { id: linkId, relClassName: "BisCore:ElementOwnsExternalSourceAspects" },
    scope: { id: subjectId },
    source: { id: externalSourceId },
    kind: KIND_DOCUMENT,
    identifier: input.sourceFileId,
    version: input.contentHash,
    checksum: input.contentHash,
  };
  upsertAspect(db, linkId, linkAspect);

  // Partition + PhysicalModel of the composite file: found by its provenance (so that a moved/renamed file keeps
  // its model, whose code follows the new path), else by code, else created.
  const partitionCode = InformationPartitionElement.createCode(db, subjectId, input.sourceFilePath);
  const modelRows = await queryRows(
    db,
    "SELECT Element.Id FROM BisCore.ExternalSourceAspect WHERE Scope.Id=? AND Kind='Model' AND Identifier=? ORDER BY ECInstanceId",
    [linkId, input.sourceFileId],
  );
  let modelId = (modelRows[0]?.[0] as Id64String | undefined) ?? db.elements.queryElementIdByCode(partitionCode);
  if (!modelId) {
    modelId = PhysicalModel.insert(db, subjectId, input.sourceFilePath);
  } else {
    const partition = db.elements.getElementProps(modelId);
    if (partition.code.value !== input.sourceFilePath || partition.parent?.id !== subjectId) {
      db.elements.updateElement({
        ...partition,
        code: partitionCode,
        parent: { id: subjectId, relClassName: "BisCore:SubjectOwnsPartitionElements" },
      });
    }
  }
  upsertAspect(db, modelId, {
    classFullName: ExternalSourceAspect.classFullName,
    element: { id: modelId, relClassName: "BisCore:ElementOwnsExternalSourceAspects" },
    scope: { id: linkId },
    source: { id: externalSourceId },
    kind: "Model",
    identifier: input.sourceFileId,
    version: input.contentHash,
  });

  // Existing element provenance for this file.
  const existing = new Map<string, ExistingElement>();
  const strayElements: { identifier: string; elementId: Id64String }[] = [];
  const rows = await queryRows(
    db,
    `SELECT a.ECInstanceId, a.Element.Id, a.Identifier, a.Checksum, a.Version, a.JsonProperties, ec_classname(e.ECClassId, 's:c')
       FROM BisCore.ExternalSourceAspect a JOIN bis.Element e ON e.ECInstanceId=a.Element.Id
      WHERE a.Scope.Id=? AND a.Kind='Element' ORDER BY a.ECInstanceId`,
    [linkId],
  );
  type AspectRow = [string, string, string, string | undefined, string | undefined, string | undefined, string];
  for (const [aspectId, elementId, identifier, checksum, version, json, className] of rows as AspectRow[]) {
    if (existing.has(identifier)) strayElements.push({ identifier, elementId });
    else
      existing.set(identifier, {
        elementId,
        aspectId,
        checksum: checksum ?? undefined,
        version: version ?? undefined,
        checksumVersion: checksumVersionOf(json),
        className,
      });
  }
  const elementAspect = (e: SourceElement, elementId: Id64String, version: string): ExternalSourceAspectProps => ({
    classFullName: ExternalSourceAspect.classFullName,
    element: { id: elementId, relClassName: "BisCore:ElementOwnsExternalSourceAspects" },
    scope: { id: linkId },
    source: { id: externalSourceId },
    kind: ExternalSourceAspect.Kind.Element,
    identifier: e.identifier,
    checksum: e.checksum,
    version,
    jsonProperties: input.writeAsBeforeChecksumVersion2
      ? undefined
      : checksumVersionJson(input.writeAsChecksumVersion2 ? 2 : CHECKSUM_VERSION),
  });

  // The elements to write: the first of each identifier. Identifiers the connector could not convert this time
  // (`parsed.keep`) keep their elements as they are, like the elements whose data the writer cannot store.
  const notWritten = new NotWrittenTally();
  const tally = new WarningTally();
  const seen = new Set<string>(input.parsed.keep ?? []);
  const toWrite: SourceElement[] = [];
  for (const e of input.parsed.elements) {
    if (seen.has(e.identifier)) {
      warnings.push({
        code: "DuplicateIdentifier",
        message: `${fileLabel}: identifier ${e.identifier} appears more than once; only the first is written`,
        target: e.identifier,
      });
      notWritten.add("DuplicateIdentifier", e.className, e.identifier);
      continue;
    }
    seen.add(e.identifier);
    toWrite.push(e);
  }

  // The deletion guard, before anything of the elements is written (docs: domain/deletion-guard.ts).
  const vanished = [...existing.keys()].filter((identifier) => !seen.has(identifier)).length;
  if (input.deletionGuard && deletionHeld(input.deletionGuard, existing.size, vanished)) {
    throw new DeletionGuardError(
      `${fileLabel}: writing it would delete ${vanished} of the ${existing.size} elements it has in the iModel (${formatPercent(vanished / existing.size)}); ` +
        `the connection's deletion guard holds a file that would lose ${describeDeletionGuard(input.deletionGuard)}. ` +
        `Nothing of the file was written. If the file is right, run again with {"confirmDeletions": true}, or change the connection's deletion guard`,
      existing.size,
      vanished,
    );
  }

  const counts: WriteCounts = { inserted: 0, updated: 0, deleted: 0, unchanged: 0 };
  const changes: ElementChanges = { inserted: [], updated: [], deleted: [] };
  const categories = new Map<string, Id64String>();
  const content = new ContentTallies();

  // Types and materials first (elements refer to them), in the file's definition model.
  const definitions = await writeDefinitions(db, input, { subjectId, linkId, externalSourceId, content });
  const definitionIds = definitions.ids;

  /** Element ids by identifier: the file's elements in the iModel, and those written now. */
  const idOf = new Map<string, Id64String>();
  for (const [identifier, prior] of existing) idOf.set(identifier, prior.elementId);
  let contentAdded = 0;
  const writtenNow: SourceElement[] = [];
  for (const e of inWriteOrder(toWrite)) {
    input.heartbeat?.();
    const prior = existing.get(e.identifier);
    const match = prior
      ? compareChecksum(e, { checksum: prior.checksum, version: prior.checksumVersion }, input.parsed.connectorType)
      : "changed";
    if (match === "unchanged") {
      counts.unchanged++;
      writtenNow.push(e);
      continue;
    }
    if (match === "unchanged-legacy" && prior) {
      // written before checksum version 3 with nothing new to add: keep the element, store the current checksum
      rewriteAspectChecksum(db, prior, elementAspect(e, prior.elementId, prior.version ?? input.contentHash));
      counts.unchanged++;
      writtenNow.push(e);
      continue;
    }
    const problem = elementDataProblem(e);
    if (problem) {
      // Not written; its element already in the iModel (if any) stays as it was: its identifier is in `seen`.
      notWritten.add("InvalidElementData", e.className, e.identifier);
      tally.add(
        "InvalidElementData",
        e.className,
        (n, list) =>
          `${fileLabel}: ${n === 1 ? `the data of ${e.className} ${list[0]} cannot be stored (${problem})` : `the data of ${n} ${e.className} elements cannot be stored (${listed(list, n)}; first: ${problem})`}; not written, ${n === 1 ? "its element" : "their elements"} already in the iModel, if any, kept as ${n === 1 ? "it was" : "they were"}`,
        { example: e.identifier },
      );
      continue;
    }
    if (match === "content-added") contentAdded++;
    const category = e.category ?? e.className;
    const categoryId = ensureCategory(db, category, categories);
    const { placement, geom } = buildGeometry(e, categoryId);
    const classFullName = elementClass(e);
    const spatial = classFullName !== "Generic:PhysicalObject";
    const props: Record<string, unknown> = {
      classFullName,
      model: modelId,
      category: categoryId,
      code: Code.createEmpty(),
      userLabel: e.name,
      placement,
      geom,
      jsonProperties: { imodelSync: { properties: e.properties ?? {} } },
    };
    const containerId = e.container !== undefined ? idOf.get(e.container) : undefined;
    if (spatial) {
      const p = e.properties ?? {};
      for (const key of ["longName", "description", "elevation"]) if (p[key] !== undefined) props[key] = p[key];
      if (containerId) props.parent = { id: containerId, relClassName: AGGREGATES_CLASS };
    } else if (e.type !== undefined) {
      const typeId = definitionIds.get(e.type);
      if (typeId) props.typeDefinition = { id: typeId, relClassName: "BisCore:PhysicalElementIsOfType" };
    }
    let elementId: Id64String;
    if (prior && prior.className !== undefined && prior.className !== classFullName) {
      // Another BIS class (e.g. an IfcBeam that became an IfcSpace): a class cannot change in place, so the element
      // is replaced (a new element id); counted as updated. What it aggregates and contains moves to the new element
      // (deleting it would take its children and its containment relationships with it).
      const children = db.elements.queryChildren(prior.elementId);
      for (const child of children)
        db.elements.updateElement({ ...db.elements.getElementProps(child), parent: undefined });
      const contained = (await queryRows(
        db,
        "SELECT TargetECInstanceId FROM ImodelSync.SpatialStructureElementContainsElements WHERE SourceECInstanceId=?",
        [prior.elementId],
      )) as [Id64String][];
      db.elements.deleteElement(prior.elementId);
      elementId = db.elements.insertElement(props as unknown as PhysicalElementProps);
      db.elements.insertAspect(elementAspect(e, elementId, input.contentHash));
      for (const child of children)
        db.elements.updateElement({
          ...db.elements.getElementProps(child),
          parent: { id: elementId, relClassName: AGGREGATES_CLASS },
        });
      for (const [target] of contained) insertContainment(db, elementId, target);
      counts.updated++;
      changes.updated.push({ identifier: e.identifier, elementId, className: e.className, category });
    } else if (prior) {
      elementId = prior.elementId;
      db.elements.updateElement<PhysicalElementProps>({ ...(props as unknown as PhysicalElementProps), id: elementId }); // userLabel undefined clears it
      db.elements.updateAspect({
        ...elementAspect(e, elementId, input.contentHash),
        id: prior.aspectId,
      } as ExternalSourceAspectProps);
      replacePropertyValues(db, elementId, []);
      deleteRelationships(db, CONTAINS_CLASS, "Target", elementId);
      deleteRelationships(db, USES_MATERIAL_CLASS, "Source", elementId);
      counts.updated++;
      changes.updated.push({ identifier: e.identifier, elementId: prior.elementId, className: e.className, category });
    } else {
      elementId = db.elements.insertElement(props as unknown as PhysicalElementProps);
      db.elements.insertAspect(elementAspect(e, elementId, input.contentHash));
      counts.inserted++;
      changes.inserted.push({ identifier: e.identifier, elementId, className: e.className, category });
    }
    idOf.set(e.identifier, elementId);
    insertPropertyValues(db, elementId, e.propertyValues ?? []);
    if (containerId && !spatial) insertContainment(db, containerId, elementId);
    insertMaterialUses(db, elementId, e.materials ?? [], definitionIds);
    writtenNow.push(e);
  }
  if (contentAdded > 0)
    warnings.push({
      code: "ContentAdded",
      message: `${fileLabel}: ${contentAdded === 1 ? "1 element was" : `${contentAdded} elements were`} synchronized before properties, quantities, types, materials and spatial structure were; ${contentAdded === 1 ? "it is" : "they are"} counted updated this once, to add them`,
      target: fileLabel,
      count: contentAdded,
    });
  tallyElementContent(content, input.parsed.elements, toWrite, new Set(writtenNow.map((e) => e.identifier)), {
    elements: idOf,
    definitions: definitionIds,
  });

  const toDelete = [...strayElements.map((s) => s.elementId)];
  for (const [identifier, prior] of existing) if (!seen.has(identifier)) toDelete.push(prior.elementId);
  if (input.recordChanges) {
    for (const stray of strayElements) changes.deleted.push(deletedElement(db, stray.identifier, stray.elementId));
    for (const [identifier, prior] of existing)
      if (!seen.has(identifier)) changes.deleted.push(deletedElement(db, identifier, prior.elementId));
  }
  const deleting = new Set(toDelete);
  // A spatial structure element's children go with it: deleting them again would throw.
  const topOnly = toDelete.filter((id) => !hasAncestorIn(db, id, deleting));
  if (topOnly.length > 0) db.elements.deleteElement(topOnly);
  counts.deleted = toDelete.length;
  if (definitions.vanished.length > 0) db.elements.deleteElement(definitions.vanished);
  content.definitions.deleted = definitions.vanished.length;

  if (counts.inserted + counts.updated + counts.deleted > 0) {
    // Project extents = range of all geometric elements (viewers hide what lies outside them).
    const { extents } = db.computeProjectExtents();
    if (!extents.isNull && !extents.isAlmostEqual(db.projectExtents)) db.updateProjectExtents(extents);
  }

  warnings.push(...tally.toWarnings());
  const own = { notWritten: notWritten.toList(), warnings: [...warnings], content: contentRecord(content) };
  const geo = applyGeoreference(db, input.parsed.georeference, fileLabel, await modelCentre(db, modelId));
  warnings.push(...geo.warnings);

  // Idempotency record + file label/url refresh, in the same transaction.
  const linkProps = db.elements.getElementProps<RepositoryLinkProps>(linkId);
  const lastWrite: LastWrite = {
    runId: input.runId,
    contentHash: input.contentHash,
    counts,
    modelId,
    georeference: geo,
    ...own,
  };
  const jsonProperties = { ...(linkProps.jsonProperties ?? {}) };
  jsonProperties.imodelSync = { ...((jsonProperties.imodelSync as object | undefined) ?? {}), lastWrite };
  db.elements.updateElement<RepositoryLinkProps>({
    ...linkProps,
    url: input.sourceFilePath,
    userLabel: fileLabel,
    format,
    jsonProperties,
  });

  if (input.recordChanges && counts.inserted + counts.updated + counts.deleted > 0) await input.recordChanges(changes);
  db.saveChanges(
    `imodel-sync run ${input.runId}: ${input.sourceFilePath} (+${counts.inserted} ~${counts.updated} -${counts.deleted})`,
  );
  return {
    ...counts,
    repositoryLinkId: linkId,
    modelId,
    replayed: false,
    warnings,
    georeference: geo.outcome,
    ...(geo.crs ? { crs: geo.crs } : {}),
    items: itemsOf(input.parsed, counts, own.notWritten, own.content),
  };
}

/**
 * A deleted element as its change list names it, read before it is deleted: its category's name, and its source class
 * when the element holds it (IFC elements keep it in their properties as `ifcClass`; DXF elements do not: null).
 */
function deletedElement(db: StandaloneDb, identifier: string, elementId: Id64String): ElementChange {
  const props = db.elements.tryGetElementProps<PhysicalElementProps>(elementId);
  const properties = (props?.jsonProperties?.imodelSync as { properties?: { ifcClass?: unknown } } | undefined)
    ?.properties;
  const category = props?.category ? db.elements.tryGetElementProps(props.category)?.code.value : undefined;
  return {
    identifier,
    elementId,
    className: typeof properties?.ifcClass === "string" ? properties.ifcClass : null,
    category: category ?? null,
  };
}

/** What {@link writeDefinitions} needs of the write. */
interface DefinitionContext {
  subjectId: Id64String;
  linkId: Id64String;
  externalSourceId: Id64String;
  content: ContentTallies;
}

/**
 * Writes the file's definitions (types and materials, `parsed.definitions`) into its definition model, found by its
 * "Model" aspect (identifier `${sourceFileId}#definitions`) or created: by their `Definition` aspects, new ones are
 * inserted, changed ones (checksum) updated with their property values and material uses replaced, equal ones left
 * untouched. Definitions that vanished are returned for deletion after the elements (which may still refer to them
 * until they are updated).
 * @returns ids by identifier of every definition of the file now in the iModel, and the vanished ones' ids.
 */
async function writeDefinitions(
  db: StandaloneDb,
  input: WriteInput,
  ctx: DefinitionContext,
): Promise<{ ids: Map<string, Id64String>; vanished: Id64String[] }> {
  const ids = new Map<string, Id64String>();
  const rows = (await queryRows(
    db,
    "SELECT ECInstanceId, Element.Id, Identifier, Checksum FROM BisCore.ExternalSourceAspect WHERE Scope.Id=? AND Kind=? ORDER BY ECInstanceId",
    [ctx.linkId, KIND_DEFINITION],
  )) as [Id64String, Id64String, string, string | undefined][];
  const existing = new Map<string, { aspectId: Id64String; elementId: Id64String; checksum?: string }>();
  const vanished: Id64String[] = [];
  for (const [aspectId, elementId, identifier, checksum] of rows) {
    if (existing.has(identifier)) vanished.push(elementId);
    else existing.set(identifier, { aspectId, elementId, checksum: checksum ?? undefined });
  }
  const parsed = input.parsed.definitions ?? [];
  if (parsed.length === 0 && existing.size === 0) return { ids, vanished };

  const modelIdentifier = `${input.sourceFileId}${DEFINITIONS_SUFFIX}`;
  const modelRows = await queryRows(
    db,
    "SELECT Element.Id FROM BisCore.ExternalSourceAspect WHERE Scope.Id=? AND Kind='Model' AND Identifier=?",
    [ctx.linkId, modelIdentifier],
  );
  const modelId = ensureDefinitionModel(
    db,
    ctx.subjectId,
    modelRows[0]?.[0] as Id64String | undefined,
    input.sourceFilePath,
    {
      classFullName: ExternalSourceAspect.classFullName,
      scope: { id: ctx.linkId },
      source: { id: ctx.externalSourceId },
      kind: "Model",
      identifier: modelIdentifier,
      version: input.contentHash,
    },
  );
  const aspectOf = (d: SourceDefinition, elementId: Id64String): ExternalSourceAspectProps => ({
    classFullName: ExternalSourceAspect.classFullName,
    element: { id: elementId, relClassName: "BisCore:ElementOwnsExternalSourceAspects" },
    scope: { id: ctx.linkId },
    source: { id: ctx.externalSourceId },
    kind: KIND_DEFINITION,
    identifier: d.identifier,
    checksum: d.checksum,
    version: input.contentHash,
    jsonProperties: checksumVersionJson(CHECKSUM_VERSION),
  });
  const { content } = ctx;
  const seen = new Set<string>();
  for (const d of parsed) {
    input.heartbeat?.();
    if (seen.has(d.identifier)) continue; // the connector gives each identifier once
    seen.add(d.identifier);
    const prior = existing.get(d.identifier);
    if (prior && prior.checksum === d.checksum) {
      ids.set(d.identifier, prior.elementId);
      content.definitions.unchanged++;
      continue;
    }
    const props = definitionProps(d, modelId);
    let elementId: Id64String;
    if (prior) {
      elementId = prior.elementId;
      db.elements.updateElement({ ...props, id: elementId });
      db.elements.updateAspect({ ...aspectOf(d, elementId), id: prior.aspectId } as ExternalSourceAspectProps);
      replacePropertyValues(db, elementId, d.propertyValues ?? []);
      deleteRelationships(db, USES_MATERIAL_CLASS, "Source", elementId);
      content.definitions.updated++;
    } else {
      elementId = db.elements.insertElement(props);
      db.elements.insertAspect(aspectOf(d, elementId));
      insertPropertyValues(db, elementId, d.propertyValues ?? []);
      content.definitions.inserted++;
    }
    ids.set(d.identifier, elementId);
    insertMaterialUses(db, elementId, d.materials ?? [], ids);
  }
  for (const [identifier, prior] of existing) if (!seen.has(identifier)) vanished.push(prior.elementId);
  // Written (or unchanged) definitions: their property values and material uses are in the iModel.
  for (const d of parsed) {
    if (!ids.has(d.identifier)) continue;
    content.propertiesWritten += d.propertyValues?.length ?? 0;
    for (const u of d.materials ?? []) {
      if (ids.has(u.material)) content.relationshipsWritten++;
      else content.relationshipsNotWritten.add("TargetNotWritten", d.className, `${d.identifier} → ${u.material}`);
    }
  }
  return { ids, vanished };
}

/**
 * Counts the property values and relationships of the file's elements: written when the element is in the iModel
 * after the write (written now or unchanged) and the relationship's target is there, else not written
 * (`ElementNotWritten`: the element was not written; `TargetNotWritten`: the container, type or material is not in the
 * iModel).
 */
function tallyElementContent(
  content: ContentTallies,
  all: readonly SourceElement[],
  firsts: readonly SourceElement[],
  written: ReadonlySet<string>,
  ids: { elements: ReadonlyMap<string, Id64String>; definitions: ReadonlyMap<string, Id64String> },
): void {
  const firstSet = new Set(firsts);
  for (const e of all) {
    const values = e.propertyValues?.length ?? 0;
    const relationships =
      (e.container !== undefined ? 1 : 0) + (e.type !== undefined ? 1 : 0) + (e.materials?.length ?? 0);
    if (!firstSet.has(e) || !written.has(e.identifier)) {
      content.propertiesNotWritten.add("ElementNotWritten", e.className, e.identifier, values);
      content.relationshipsNotWritten.add("ElementNotWritten", e.className, e.identifier, relationships);
      continue;
    }
    content.propertiesWritten += values;
    const target = (ok: boolean, what: string) => {
      if (ok) content.relationshipsWritten++;
      else content.relationshipsNotWritten.add("TargetNotWritten", e.className, `${e.identifier} → ${what}`);
    };
    if (e.container !== undefined) target(ids.elements.has(e.container), e.container);
    if (e.type !== undefined) target(ids.definitions.has(e.type), e.type);
    for (const u of e.materials ?? []) target(ids.definitions.has(u.material), u.material);
  }
}

function hasAncestorIn(db: StandaloneDb, elementId: Id64String, ids: ReadonlySet<Id64String>): boolean {
  for (let parent = db.elements.queryParent(elementId); parent !== undefined; parent = db.elements.queryParent(parent))
    if (ids.has(parent)) return true;
  return false;
}

/** The file's items: the connector's, with the writer's counts and its own not-written items. */
function itemsOf(
  parsed: ParsedFile,
  counts: WriteCounts,
  writerNotWritten: NotWrittenItems[],
  content?: ContentRecord,
): TaskItems {
  const notWritten = new NotWrittenTally();
  notWritten.addAll(parsed.items.notWritten);
  notWritten.addAll(writerNotWritten);
  const items: TaskItems = {
    read: parsed.items.read,
    written: { inserted: counts.inserted, updated: counts.updated, unchanged: counts.unchanged },
    notWritten: notWritten.toList(),
  };
  if (!content) return items;
  const tally = (read: ReadTally | undefined, written: number, own: NotWrittenItems[]): ContentTally => {
    const all = new NotWrittenTally();
    all.addAll(read?.notWritten ?? []);
    all.addAll(own);
    return { read: read?.read ?? written + notWrittenTotal(own), written, notWritten: all.toList() };
  };
  items.properties = tally(parsed.items.properties, content.properties.written, content.properties.notWritten);
  items.relationships = tally(
    parsed.items.relationships,
    content.relationships.written,
    content.relationships.notWritten,
  );
  const d = content.definitions;
  items.definitions = {
    read: parsed.definitions?.length ?? 0,
    written: { inserted: d.inserted, updated: d.updated, unchanged: d.unchanged },
    deleted: d.deleted,
    notWritten: [],
  };
  return items;
}

/** The writer's own content tallies, kept in the last write's record so that a replay answers the same. */
interface ContentRecord {
  properties: { written: number; notWritten: NotWrittenItems[] };
  relationships: { written: number; notWritten: NotWrittenItems[] };
  definitions: { inserted: number; updated: number; unchanged: number; deleted: number };
}

function contentRecord(content: ContentTallies): ContentRecord {
  return {
    properties: { written: content.propertiesWritten, notWritten: content.propertiesNotWritten.toList() },
    relationships: { written: content.relationshipsWritten, notWritten: content.relationshipsNotWritten.toList() },
    definitions: { ...content.definitions },
  };
}

/**
 * Centre of the extents of the file's elements with geometry (iModel coordinates, metres), where its georeference is
 * evaluated (./georef module notes: models drawn in grid coordinates). Elements without geometry (spatial structure
 * elements and products without a body: a placement and an empty box) do not count: in a model drawn in grid
 * coordinates they sit at the engineering origin, far from the geometry. Without any geometry: the centre of the
 * model's extents, else the origin.
 */
async function modelCentre(db: StandaloneDb, modelId: Id64String): Promise<Point3d> {
  const rows = await queryRows(
    db,
    "SELECT Origin, Yaw, Pitch, Roll, BBoxLow, BBoxHigh FROM bis.GeometricElement3d WHERE Model.Id=? AND GeometryStream IS NOT NULL",
    [modelId],
  );
  type Xyz = { X: number; Y: number; Z: number };
  const xyz = (p: Xyz): [number, number, number] => [p.X, p.Y, p.Z];
  const range = Range3d.createNull();
  for (const [origin, yaw, pitch, roll, low, high] of rows as [Xyz, number, number, number, Xyz, Xyz][])
    range.extendRange(
      Placement3d.fromJSON({
        origin: xyz(origin),
        angles: { yaw, pitch, roll },
        bbox: { low: xyz(low), high: xyz(high) },
      }).calculateRange(),
    );
  if (!range.isNull) return range.center;
  try {
    const extents = db.models.getModel<GeometricModel>(modelId).queryExtents();
    if (!extents.isNull) return extents.center;
  } catch {
    // no geometric model (nothing written): the origin
  }
  return Point3d.createZero();
}

/** Two georeferences agree when they put the file's centre within this distance and its axes within this angle. */
const GEOREFERENCE_TOLERANCE = { metres: 1, radians: 0.001 };

/**
 * Applies a file's georeference to the iModel's location, inside the caller's transaction: an iModel without an
 * EcefLocation gets the one computed offline from the file at the centre of its elements `at` ({@link ecefLocationFor});
 * an iModel that has one keeps it, and the file's is compared with it at that centre (distance of the centre's ECEF
 * positions and orientation angle, {@link GEOREFERENCE_TOLERANCE}). A CRS whose datum shift is approximate offline
 * gives its warning whatever the outcome. The geographic coordinate system is not stored: with the GCS workspace
 * disabled core-backend cannot resolve one offline (see `gcsFor` in ./georef); its EPSG code and name are returned
 * (`crs`) for the iModel's record.
 */
function applyGeoreference(
  db: StandaloneDb,
  georef: Georeference | undefined,
  fileLabel: string,
  at: Point3d,
): { outcome: GeoreferenceOutcome; warnings: TaskWarning[]; crs?: { epsg: number; name: string } } {
  if (!georef) return { outcome: "none", warnings: [] };
  let location: EcefLocation;
  let warnings: TaskWarning[];
  let crs: { epsg: number; name: string } | undefined;
  try {
    location = new EcefLocation(ecefLocationFor(georef, at));
    warnings = georeferenceWarnings(georef, fileLabel);
    if (georef.kind === "projected") crs = crsOf(georef);
  } catch (e) {
    const code = e instanceof UnsupportedCrsError ? e.code : "GeoreferenceUnreadable";
    const reason = e instanceof Error ? e.message : String(e);
    return {
      outcome: "none",
      warnings: [
        {
          code,
          message: `${fileLabel}: its georeference (${georef.origin}) cannot be used: ${reason}; the iModel's location is not changed`,
          target: fileLabel,
        },
      ],
    };
  }
  const withCrs = crs ? { crs } : {};
  const existing = db.ecefLocation;
  if (!db.isGeoLocated || !existing) {
    db.updateEcefLocation(location);
    return { outcome: "set", warnings, ...withCrs };
  }
  const { distance, angle } = ecefLocationDifference(existing.toJSON(), location.toJSON(), at);
  if (distance <= GEOREFERENCE_TOLERANCE.metres && angle <= GEOREFERENCE_TOLERANCE.radians)
    return { outcome: "kept", warnings, ...withCrs };
  const message =
    `${fileLabel}: its georeference (${georef.origin}) places the file ${distance.toFixed(2)} m away from where the iModel's location puts it` +
    ` (axes ${((angle * 180) / Math.PI).toFixed(4)}° apart); the iModel's location is kept`;
  return {
    outcome: "conflict",
    warnings: [...warnings, { code: "GeoreferenceConflict", message, target: fileLabel }],
    ...withCrs,
  };
}

function ensureExternalSource(db: StandaloneDb, linkId: Id64String, label: string): Id64String {
  for (const id of db.queryEntityIds({
    from: ExternalSource.classFullName,
    where: `Repository.Id=${linkId}`,
    limit: 1,
  }))
    return id;
  const props: ExternalSourceProps = {
    classFullName: ExternalSource.classFullName,
    model: IModel.repositoryModelId,
    code: Code.createEmpty(),
    userLabel: label,
    repository: { id: linkId, relClassName: "BisCore:ExternalSourceIsInRepository" },
    connectorName: CONNECTOR_NAME,
    connectorVersion: CONNECTOR_VERSION,
  };
  return db.elements.insertElement(props);
}

/** Inserts the aspect, or updates the owner's aspect of the same kind and identifier in the same scope. */
function upsertAspect(db: StandaloneDb, ownerId: Id64String, props: ExternalSourceAspectProps): void {
  const existing = db.elements
    .getAspects(ownerId, ExternalSourceAspect.classFullName)
    .filter((a): a is ExternalSourceAspect => a instanceof ExternalSourceAspect)
    .find((a) => a.kind === props.kind && a.scope?.id === props.scope.id && a.identifier === props.identifier);
  if (!existing) {
    db.elements.insertAspect(props);
  } else if (
    existing.version !== props.version ||
    existing.checksum !== props.checksum ||
    existing.source?.id !== props.source?.id
  ) {
    db.elements.updateAspect({ ...props, id: existing.id } as ExternalSourceAspectProps);
  }
}
