import {
  type AnyBulkWriteOperation,
  type Binary,
  type Collection,
  type Db,
  type Document,
  type Filter,
  MongoClient,
  type WithId,
} from "mongodb";
import type { StoredChanges } from "../domain/change-lists";
import type {
  ChangeOperation,
  ConnectionEventRecord,
  ConnectionRecord,
  FileStateRecord,
  IModelRecord,
  RunRecord,
  TaskRecord,
} from "../domain/model";

/**
 * One chunk of a task's change list (domain/change-lists.ts): `_id` = `changeChunkId(runId, sourceFileId, operation,
 * chunk)`; `entries` in the order the writer met the elements.
 */
export interface ChangeChunkRecord {
  _id: string;
  runId: string;
  connectionId: string;
  sourceFileId: string;
  operation: ChangeOperation;
  chunk: number;
  entries: StoredChanges;
}

/**
 * The task records of a Completed run, several per record (lib/run-tasks.ts `writeTaskPages`): `_id` =
 * `taskPageId(runId, page)`, pages 0 … `RunRecord.taskPages` - 1, tasks in the order of `index`.
 */
export interface TaskPageRecord {
  _id: string;
  runId: string;
  page: number;
  /** The number of task records in `data`. */
  count: number;
  /**
   * The task records as gzip-compressed JSON (an array): one binary value instead of hundreds of nested documents,
   * which FerretDB converts field by field (docs/architecture.md "Queries FerretDB serves by _id").
   */
  data: Binary;
}

/** The records the API lists and that outlive workflow histories (MongoDB wire protocol: MongoDB or FerretDB). */
export interface Store {
  client: MongoClient;
  db: Db;
  imodels: Collection<IModelRecord>;
  connections: Collection<ConnectionRecord>;
  runs: Collection<RunRecord>;
  tasks: Collection<TaskRecord>;
  /** A Completed run's task records, together (see {@link TaskPageRecord}). */
  taskPages: Collection<TaskPageRecord>;
  fileStates: Collection<FileStateRecord>;
  /** The timeline of each connection (README "Connection timeline"). */
  connectionEvents: Collection<ConnectionEventRecord>;
  /** The change lists of the last runs of each connection (README "What a run changed"). */
  changeChunks: Collection<ChangeChunkRecord>;
  close(): Promise<void>;
}

/**
 * Every collection the service uses (lib/db.ts, lib/collections.ts, lib/webhooks.ts, lib/locks.ts); a test keeps this
 * list complete. scripts/ferretdb-indexes.ts creates them all before it indexes their `_id` lookups on the embedded
 * FerretDB (docs/architecture.md "Queries FerretDB serves by _id").
 */
export const COLLECTION_NAMES = [
  "imodels",
  "connections",
  "runs",
  "tasks",
  "taskPages",
  "fileStates",
  "connectionEvents",
  "changeChunks",
  "users",
  "apiKeys",
  "teamMembers",
  "scheduleClaims",
  "notices",
  "webhooks",
  "webhookDeliveries",
  "locks",
  "idLists",
] as const;

/**
 * Connects and ensures indexes. Uses no transactions or change streams (FerretDB 1.x has neither).
 * @param uri a `mongodb://` URI; its path names the database (default `imodelsync`).
 * @throws MongoServerSelectionError when the server cannot be reached within `serverSelectionTimeoutMS` (ms).
 */
export async function openStore(uri: string, serverSelectionTimeoutMS = 5000): Promise<Store> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS, retryWrites: false });
  await client.connect();
  const db = client.db();
  const store: Store = {
    client,
    db,
    imodels: db.collection<IModelRecord>("imodels"),
    connections: db.collection<ConnectionRecord>("connections"),
    runs: db.collection<RunRecord>("runs"),
    tasks: db.collection<TaskRecord>("tasks"),
    taskPages: db.collection<TaskPageRecord>("taskPages"),
    fileStates: db.collection<FileStateRecord>("fileStates"),
    connectionEvents: db.collection<ConnectionEventRecord>("connectionEvents"),
    changeChunks: db.collection<ChangeChunkRecord>("changeChunks"),
    close: () => client.close(),
  };
  await Promise.all([
    store.connections.createIndex({ iModelId: 1 }),
    store.runs.createIndex({ connectionId: 1, queuedDateTime: -1 }),
    store.tasks.createIndex({ runId: 1, index: 1 }),
    store.fileStates.createIndex({ connectionId: 1 }),
    store.connectionEvents.createIndex({ connectionId: 1, seq: -1 }),
  ]);
  return store;
}

/** Largest bulk write sent in one command (see {@link bulkWriteInChunks}). */
export const BULK_CHUNK = 25;

/**
 * The document with `_id` = `id` when `belongs(document)` holds, else null. Read by `_id` alone: FerretDB 1.24 on SQLite
 * serves a filter without scanning the whole collection only when it is exactly `{_id: value}` (its SQLite backend
 * pushes nothing else down), so "this run of that connection" is read by the run's `_id` and checked here
 * (docs/architecture.md "Queries FerretDB serves by _id").
 */
export async function findById<T extends Document & { _id: string }>(
  collection: Collection<T>,
  id: string,
  belongs: (document: WithId<T>) => boolean = () => true,
): Promise<WithId<T> | null> {
  const found = await collection.findOne({ _id: id } as Filter<T>);
  return found && belongs(found) ? found : null;
}

/**
 * `bulkWrite` in commands of at most {@link BULK_CHUNK} operations, unordered within a chunk.
 * FerretDB 1.24 on SQLite was seen to hang (and keep its database locked) on one update command carrying about 100
 * statements or more, while chunks of 25 complete; MongoDB accepts either.
 */
export async function bulkWriteInChunks<T extends Document>(
  collection: Collection<T>,
  ops: AnyBulkWriteOperation<T>[],
): Promise<void> {
  for (let i = 0; i < ops.length; i += BULK_CHUNK) {
    await collection.bulkWrite(ops.slice(i, i + BULK_CHUNK), { ordered: false });
  }
}
