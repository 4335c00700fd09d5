/**
 * The embedded FerretDB serves lookups by `_id` from an index (scripts/ferretdb-indexes.ts, run by scripts/stack.sh
 * when it starts FerretDB; docs/architecture.md "Queries FerretDB serves by _id"): FerretDB's own `_id` index is on
 * another expression than its queries, so without ours every lookup scans its collection.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COLLECTION_NAMES } from "../lib/db";
import { ID_LISTS_COLLECTION } from "../lib/id-lists";
import { LOCKS_COLLECTION } from "../lib/locks";
import { ROOT, stack } from "./helpers";

/** Every `collection<…>("name")` in the service's code. */
function collectionsInSource(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts"))
        for (const m of fs.readFileSync(p, "utf8").matchAll(/\.collection(?:<[^>]*>)?\(\s*"([^"]+)"/g)) names.add(m[1]);
    }
  };
  for (const dir of ["api", "lib", "activities", "worker"]) walk(path.join(ROOT, dir));
  names.add(LOCKS_COLLECTION);
  names.add(ID_LISTS_COLLECTION);
  return names;
}

describe("FerretDB _id lookups", () => {
  let client: MongoClient;
  beforeAll(async () => {
    client = new MongoClient(stack().mongoUri, { serverSelectionTimeoutMS: 5000 });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
  });

  it("COLLECTION_NAMES lists every collection the code uses", () => {
    const used = collectionsInSource();
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !(COLLECTION_NAMES as readonly string[]).includes(n))).toEqual([]);
  });

  it("every collection answers a lookup by _id from an index, not a scan", async () => {
    const db = client.db();
    const plans: Record<string, string> = {};
    for (const name of COLLECTION_NAMES) {
      const explained = await db.command({ explain: { find: name, filter: { _id: "no-such-id" } } });
      plans[name] = JSON.stringify(explained.queryPlanner?.Plan ?? explained.queryPlanner);
    }
    for (const name of COLLECTION_NAMES) expect(plans[name], name).toMatch(/SEARCH \S+ USING INDEX \S+__id_path/);
  });
});
