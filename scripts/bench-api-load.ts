/**
 * The API under load, a phase of the benchmark (scripts/bench.ts): records seeded straight into the database, cloned
 * from the bench's real iModel, connection and run records (so every field the API reads is there), then
 *
 * - the cost of one connections list page (`$top=5`) at a small and at the full number of connections;
 * - a bounded burst of concurrent GETs (a mix of /users/me, one iModel, lists of iModels, connections and runs) as the
 *   bench user, who sees every seeded iModel through team member records cloned from their own.
 */
import { performance } from "node:perf_hooks";
import { MongoClient, type Document } from "mongodb";
import { teamMemberId } from "../domain/users";
import { bulkWriteInChunks } from "../lib/db";
import { connectionRunsList, iModelConnectionsList, ID_LISTS_COLLECTION, idListDocuments } from "../lib/id-lists";
import { percentile } from "./bench-common";

export interface LoadTemplate {
  /** The bench's iModel, connection and one run, as they are in the database. */
  iModelId: string;
  connectionId: string;
  runId: string;
  userId: string;
}

export interface SeedCounts {
  iModels: number;
  connections: number;
  runs: number;
}

export interface BurstMeasure {
  requests: number;
  wallMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers other than 200. */
  errors: number;
}

const PREFIX = "bench-load";

/**
 * Inserts clones of the template's records up to `target` (counting those seeded before): iModels (with the user's team
 * membership), connections spread evenly over them (two source files each), and runs spread evenly over the
 * connections, queued one minute apart. Ids start with "bench-load".
 * @returns the counts seeded so far and the seconds it took.
 */
export async function seed(
  mongoUri: string,
  template: LoadTemplate,
  target: SeedCounts,
  done: SeedCounts,
): Promise<{ seeded: SeedCounts; seconds: number }> {
  const client = new MongoClient(mongoUri, { serverSelectionTimeoutMS: 10_000 });
  const t0 = performance.now();
  try {
    const db = client.db();
    const one = async (name: string, _id: string) => {
      const doc = await db.collection(name).findOne({ _id: _id as never });
      if (!doc) throw new Error(`no ${name} record ${_id} to clone`);
      return doc;
    };
    const iModel = await one("imodels", template.iModelId);
    const connection = await one("connections", template.connectionId);
    // The clones have no task records or task pages of their own.
    const { taskPages: _taskPages, ...run } = await one("runs", template.runId);
    const member = await db.collection("teamMembers").findOne({ iModelId: template.iModelId, userId: template.userId });
    if (!member) throw new Error(`no team member record of ${template.userId} in ${template.iModelId}`);
    const insert = async (name: string, docs: Document[]) => {
      for (let i = 0; i < docs.length; i += 1000)
        await db.collection(name).insertMany(docs.slice(i, i + 1000), { ordered: false });
    };
    const iModelId = (i: number) => `${PREFIX}-imodel-${i}`;
    const connectionId = (i: number) => `${PREFIX}-connection-${i}`;
    const base = Date.parse("2026-01-01T00:00:00Z");
    const iso = (minutes: number) => new Date(base + minutes * 60_000).toISOString();

    const iModels: Document[] = [];
    const members: Document[] = [];
    for (let i = done.iModels; i < target.iModels; i++) {
      iModels.push({ ...iModel, _id: iModelId(i), name: `Load ${i}`, createdDateTime: iso(i) });
      members.push({ ...member, _id: teamMemberId(iModelId(i), template.userId), iModelId: iModelId(i) });
    }
    await insert("imodels", iModels);
    await insert("teamMembers", members);

    const connections: Document[] = [];
    for (let i = done.connections; i < target.connections; i++)
      connections.push({
        ...connection,
        _id: connectionId(i),
        iModelId: iModelId(i % target.iModels),
        displayName: `Load connection ${i}`,
        status: "Active",
        sourceFiles: (connection.sourceFiles as Document[]).slice(0, 2),
        createdDateTime: iso(i),
      });
    await insert("connections", connections);

    const runs: Document[] = [];
    for (let i = done.runs; i < target.runs; i++) {
      const c = i % target.connections;
      runs.push({
        ...run,
        _id: `${PREFIX}-run-${i}`,
        connectionId: connectionId(c),
        iModelId: iModelId(c % target.iModels),
        queuedDateTime: iso(i),
        startDateTime: iso(i),
        endDateTime: iso(i + 1),
        taskFileIds: [],
      });
      if (runs.length === 10_000) await insert("runs", runs.splice(0));
    }
    await insert("runs", runs);

    // The id lists the service keeps for records it creates (lib/id-lists.ts): each iModel's connections and each
    // connection's runs, written whole (a second seeding rewrites them). The first seeding spread its records over its
    // own counts, the second over the target's.
    const iModelOf = (c: number) => (c < done.connections ? c % done.iModels : c % target.iModels);
    const connectionOf = (r: number) => (r < done.runs ? r % done.connections : r % target.connections);
    const connectionsOf = new Map<number, string[]>();
    for (let c = 0; c < target.connections; c++)
      connectionsOf.set(iModelOf(c), [...(connectionsOf.get(iModelOf(c)) ?? []), connectionId(c)]);
    const runsOf = new Map<number, string[]>();
    for (let r = 0; r < target.runs; r++) {
      const list = runsOf.get(connectionOf(r)) ?? [];
      list.push(`${PREFIX}-run-${r}`);
      runsOf.set(connectionOf(r), list);
    }
    const lists = [
      ...[...Array(target.iModels).keys()].flatMap((m) =>
        idListDocuments(iModelConnectionsList(iModelId(m)), connectionsOf.get(m) ?? []),
      ),
      ...[...Array(target.connections).keys()].flatMap((c) =>
        idListDocuments(connectionRunsList(connectionId(c)), runsOf.get(c) ?? []),
      ),
    ];
    // In chunks (bulkWriteInChunks, lib/db.ts): FerretDB hangs on one update command of about 100 statements or more.
    await bulkWriteInChunks(
      db.collection<Document & { _id: string }>(ID_LISTS_COLLECTION),
      lists.map((d) => ({ replaceOne: { filter: { _id: d._id }, replacement: d, upsert: true } })),
    );
    return { seeded: { ...target }, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await client.close();
  }
}

/** The GETs of the burst, in turn: what a portal page and a poller ask for. */
export function burstPaths(counts: SeedCounts): string[] {
  const paths: string[] = [];
  for (let i = 0; paths.length < 200; i++) {
    const c = (i * 37) % counts.connections;
    const m = c % counts.iModels;
    paths.push(
      "/users/me",
      `/imodels/${PREFIX}-imodel-${m}`,
      "/imodels?$top=10",
      `/connections?iModelId=${PREFIX}-imodel-${m}&$top=5`,
      `/connections/${PREFIX}-connection-${c}/runs?$top=5`,
    );
  }
  return paths;
}

/** Sends every path at once (bounded: one request per path) and measures each answer. */
export async function burst(apiUrl: string, apiKey: string, paths: string[]): Promise<BurstMeasure> {
  const t0 = performance.now();
  const results = await Promise.all(
    paths.map(async (p) => {
      const t = performance.now();
      try {
        const res = await fetch(`${apiUrl}${p}`, { headers: { authorization: `Bearer ${apiKey}` } });
        await res.arrayBuffer();
        return { ms: performance.now() - t, ok: res.status === 200 };
      } catch {
        return { ms: performance.now() - t, ok: false };
      }
    }),
  );
  const wallMs = performance.now() - t0;
  const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
  return {
    requests: paths.length,
    wallMs,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors: results.filter((r) => !r.ok).length,
  };
}

/** The median time (ms) of `n` sequential GETs of `urlPath`. */
export async function medianGet(apiUrl: string, apiKey: string, urlPath: string, n = 9): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await fetch(`${apiUrl}${urlPath}`, { headers: { authorization: `Bearer ${apiKey}` } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET ${urlPath}: HTTP ${res.status}`);
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(n / 2)];
}
