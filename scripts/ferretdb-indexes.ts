/**
 * Indexes the `_id` lookups of the embedded FerretDB (docs/architecture.md "Queries FerretDB serves by _id").
 *
 * FerretDB 1.24 on SQLite stores each collection as a table of JSON documents. It answers a filter of exactly
 * `{_id: <string or ObjectId>}` with `WHERE _ferretdb_sjson->'$._id' = ?`, but its own unique `_id` index is on the
 * expression `_ferretdb_sjson->"_id"`. SQLite uses an expression index only for the very same expression, so every
 * lookup by `_id` scans the whole table: its cost grows with the collection (the same fault on PostgreSQL:
 * FerretDB/FerretDB#4646, where the workaround is also an index on the expression the queries use).
 *
 * This script, run by scripts/stack.sh each time it has started the embedded FerretDB:
 * 1. creates every collection the service uses ({@link COLLECTION_NAMES}) through the MongoDB wire protocol, so that
 *    each has its table before the first document arrives;
 * 2. opens FerretDB's SQLite file and adds, to every collection table it lists in `_ferretdb_collections`, the index
 *    `<table>__id_path` on `_ferretdb_sjson->'$._id'` (`CREATE INDEX IF NOT EXISTS`: idempotent).
 * FerretDB keeps its own indexes and metadata; SQLite maintains the extra index on every write and FerretDB never sees
 * it (listIndexes does not list it). SQLite's locking makes the change safe while FerretDB runs.
 *
 * Usage: `node --import tsx scripts/ferretdb-indexes.ts <MONGODB_URI> <FerretDB's --sqlite-url directory>`.
 * Exit code 0 and one line on stdout with the tables indexed; 1 with the reason on stderr (the database file is
 * missing, the server unreachable).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DbResult, OpenMode } from "@itwin/core-bentley";
import { IModelHost, SQLiteDb } from "@itwin/core-backend";
import { MongoClient, MongoServerError } from "mongodb";
import { COLLECTION_NAMES } from "../lib/db";
import { startIModelHost } from "../activities/imodel/writer";

/** MongoDB's error code for "collection already exists". */
const NAMESPACE_EXISTS = 48;

/**
 * Creates the service's collections that do not exist yet.
 * @returns the database's name (FerretDB's SQLite file is `<name>.sqlite`).
 * @throws MongoServerSelectionError when the server cannot be reached within 5 s.
 */
export async function createCollections(uri: string): Promise<string> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.connect();
    const db = client.db();
    for (const name of COLLECTION_NAMES) {
      try {
        await db.createCollection(name);
      } catch (err) {
        if (!(err instanceof MongoServerError && err.code === NAMESPACE_EXISTS)) throw err;
      }
    }
    return db.databaseName;
  } finally {
    await client.close();
  }
}

/**
 * Adds the `_id` path index to every collection table of one FerretDB SQLite database file.
 * @returns the tables, with whether the index was added now (false: it was there).
 * @throws Error when the file cannot be opened or an index cannot be created (e.g. the database stays locked).
 */
export function indexIdLookups(sqliteFile: string): { table: string; added: boolean }[] {
  const db = new SQLiteDb();
  db.openDb(sqliteFile, { openMode: OpenMode.ReadWrite, rawSQLite: true });
  try {
    const tables: string[] = [];
    db.withSqliteStatement("SELECT table_name FROM _ferretdb_collections ORDER BY table_name", (stmt) => {
      while (stmt.step() === DbResult.BE_SQLITE_ROW) tables.push(stmt.getValue(0).getString());
    });
    const existing = new Set<string>();
    db.withSqliteStatement("SELECT name FROM sqlite_master WHERE type = 'index'", (stmt) => {
      while (stmt.step() === DbResult.BE_SQLITE_ROW) existing.add(stmt.getValue(0).getString());
    });
    const result = tables.map((table) => {
      const index = `${table}__id_path`;
      if (existing.has(index)) return { table, added: false };
      const rc = db.executeSQL(`CREATE INDEX IF NOT EXISTS "${index}" ON "${table}" (_ferretdb_sjson->'$._id')`);
      if (rc !== DbResult.BE_SQLITE_OK && rc !== DbResult.BE_SQLITE_DONE)
        throw new Error(`${sqliteFile}: cannot create index ${index} (rc ${rc})`);
      return { table, added: true };
    });
    db.saveChanges();
    return result;
  } finally {
    db.closeDb();
  }
}

async function main(): Promise<void> {
  const [uri, sqliteDir] = process.argv.slice(2);
  if (!uri || !sqliteDir) throw new Error("usage: ferretdb-indexes.ts <MONGODB_URI> <FerretDB sqlite directory>");
  const dbName = await createCollections(uri);
  const file = path.join(sqliteDir, `${dbName}.sqlite`);
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: is ${uri} the FerretDB started on ${sqliteDir}?`);
  await startIModelHost(path.join(os.tmpdir(), "imodel-sync-ferretdb-indexes"), {
    profileName: `ferretdb-indexes-${process.pid}`,
  });
  try {
    const tables = indexIdLookups(file);
    const added = tables.filter((t) => t.added).length;
    console.log(`${file}: _id lookups indexed in ${tables.length} tables (${added} added now)`);
  } finally {
    await IModelHost.shutdown();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`ferretdb-indexes: ${(err as Error).message}`);
    process.exit(1);
  });
}
