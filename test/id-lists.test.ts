/**
 * Lists kept as documents addressed by `_id` (lib/id-lists.ts): a connection's runs and an iModel's connections are
 * read from them, page by page, with the same answers as the queries they replace (which records older than the lists
 * still use).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../lib/db";
import {
  appendId,
  connectionRunsList,
  createIdList,
  iModelConnectionsList,
  ID_LISTS_COLLECTION,
  listIds,
  PAGE_SIZE,
  pageOfList,
} from "../lib/id-lists";
import { allPages, createConnection, createUser, http, httpAs, makeSource, SAMPLE, stack, waitForRun } from "./helpers";

let store: Store;
beforeAll(async () => {
  store = await openStore(stack().mongoUri);
});
afterAll(async () => {
  await store?.close();
});

const collect = async (ids: AsyncIterable<string> | undefined) => {
  const out: string[] = [];
  for await (const id of ids!) out.push(id);
  return out;
};

describe("id lists", () => {
  it("keep appended ids across pages, newest or oldest first, each id once", async () => {
    const list = `test:${randomUUID()}`;
    expect(await appendId(store.db, list, "x")).toBe(false); // not created: not kept
    expect(await listIds(store.db, list, "newest")).toBeUndefined();
    await createIdList(store.db, list);
    const ids = Array.from({ length: PAGE_SIZE * 2 + 10 }, (_, i) => `id-${i}`);
    for (const id of ids) expect(await appendId(store.db, list, id)).toBe(true);
    await appendId(store.db, list, "id-3"); // appended again (a retry): read once
    expect(await collect(await listIds(store.db, list, "oldest"))).toEqual(ids);
    const newest = await collect(await listIds(store.db, list, "newest"));
    expect(newest[0]).toBe("id-3");
    expect(newest.slice(1)).toEqual([...ids].reverse().filter((id) => id !== "id-3"));
  });

  it("pageOfList skips, filters, stops, and reads one beyond the page", async () => {
    const list = `test:${randomUUID()}`;
    await createIdList(store.db, list);
    for (let i = 0; i < 30; i++) await appendId(store.db, list, String(i));
    const read = async (id: string) => (id === "7" ? null : { _id: id, n: Number(id) });
    const page = await pageOfList((await listIds(store.db, list, "oldest"))!, read, (r) => r.n % 2 === 0, 2, 3);
    expect(page.map((r) => r.n)).toEqual([4, 6, 8, 10]);
    const stopped = await pageOfList(
      (await listIds(store.db, list, "oldest"))!,
      read,
      () => true,
      0,
      100,
      (r) => r.n >= 12,
    );
    expect(stopped.map((r) => r.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]);
  });
});

describe("lists of the API read from id lists", () => {
  let iModelId: string;
  const connectionIds: string[] = [];
  const runIds: string[] = [];

  beforeAll(async () => {
    const duct = SAMPLE("ifc4_hvac_air_terminal_duct.ifc");
    const source = makeSource("id-lists", { "a.ifc": duct, "b.ifc": duct, "c.ifc": duct });
    for (const f of ["a.ifc", "b.ifc", "c.ifc"]) {
      const created = await createConnection(source, [f], f, iModelId);
      iModelId = created.iModelId;
      connectionIds.push(created.connection.id);
    }
    const deleted = await http("DELETE", `/connections/${connectionIds[1]}?mode=keepData`);
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    for (let i = 0; i < 3; i++) {
      const r = await http("POST", `/connections/${connectionIds[0]}/run`, i === 2 ? { force: true } : undefined);
      expect(r.status).toBe(202);
      const { run } = await waitForRun(r.location!);
      runIds.push(run.id);
    }
  });

  it("a connection's runs: newest first, paged, filtered, as the query answers", async () => {
    const base = `/connections/${connectionIds[0]}/runs`;
    const first = await http("GET", `${base}?$top=2`);
    expect(first.status).toBe(200);
    expect(first.body.runs.map((r: any) => r.id)).toEqual([runIds[2], runIds[1]]);
    expect(first.body._links.next.href).toContain("$skip=2");
    const second = await http("GET", first.body._links.next.href);
    expect(second.body.runs.map((r: any) => r.id)).toEqual([runIds[0]]);
    expect(second.body._links.next).toBeUndefined();
    const from = (await http("GET", `${base}/${runIds[1]}`)).body.run.queuedDateTime;
    const since = await http("GET", `${base}?from=${encodeURIComponent(from)}`);
    expect(since.body.runs.map((r: any) => r.id)).toEqual([runIds[2], runIds[1]]);
    // Without the list (a connection from before lists were kept), the query gives the same answers.
    const list = connectionRunsList(connectionIds[0]);
    const head = await store.db.collection<{ _id: string }>(ID_LISTS_COLLECTION).findOne({ _id: list });
    await store.db.collection<{ _id: string }>(ID_LISTS_COLLECTION).deleteOne({ _id: list });
    try {
      expect((await http("GET", `${base}?$top=2`)).body).toEqual(first.body);
      expect((await http("GET", `${base}?from=${encodeURIComponent(from)}`)).body).toEqual(since.body);
    } finally {
      await store.db.collection<{ _id: string }>(ID_LISTS_COLLECTION).insertOne(head!);
    }
  });

  it("an iModel's connections: oldest first, paged, without deleted ones, as the query answers", async () => {
    const all = await http("GET", `/connections?iModelId=${iModelId}&$top=1`);
    expect(all.status).toBe(200);
    expect(all.body.connections.map((c: any) => c.id)).toEqual([connectionIds[0]]);
    const next = await http("GET", all.body._links.next.href);
    expect(next.body.connections.map((c: any) => c.id)).toEqual([connectionIds[2]]); // the deleted one left out
    expect(next.body._links.next).toBeUndefined();
    const deleted = await http("GET", `/connections?iModelId=${iModelId}&status=Deleted`);
    expect(deleted.body.connections.map((c: any) => c.id)).toEqual([connectionIds[1]]);
    const list = iModelConnectionsList(iModelId);
    const head = await store.db.collection<{ _id: string }>(ID_LISTS_COLLECTION).findOne({ _id: list });
    expect(head).toMatchObject({ count: connectionIds.length });
    await store.db.collection<{ _id: string }>(ID_LISTS_COLLECTION).deleteOne({ _id: list });
    try {
      expect((await http("GET", `/connections?iModelId=${iModelId}&$top=1`)).body).toEqual(all.body);
      expect((await http("GET", all.body._links.next.href)).body).toEqual(next.body);
      expect((await http("GET", `/connections?iModelId=${iModelId}&status=Deleted`)).body).toEqual(deleted.body);
    } finally {
      await store.db.collection<{ _id: string }>(ID_LISTS_COLLECTION).insertOne(head!);
    }
  });
});

describe("the connections of all the caller's iModels, merged from the iModels' lists", () => {
  /** The ids of every connection of `path` (a list URL with `$top`), page after page. */
  const walk = async (apiKey: string, path: string) =>
    (await allPages(apiKey, path, "connections")).map((c) => c.id as string);

  it("pages in creation order across iModels, filters by status, and answers as the query does", async () => {
    const { apiKey } = await createUser("Merged lists");
    const iModels: string[] = [];
    for (const name of ["merged A", "merged B"]) {
      const m = await httpAs(apiKey, "POST", "/imodels", { name });
      expect(m.status).toBe(201);
      iModels.push(m.body.iModel.id);
    }
    const duct = SAMPLE("ifc4_hvac_air_terminal_duct.ifc");
    const source = makeSource("merged-lists", {
      "a.ifc": duct,
      "b.ifc": duct,
      "c.ifc": duct,
      "d.ifc": duct,
      "e.ifc": duct,
    });
    // Created alternately in the two iModels (and two in a row in the first): the merged order interleaves the lists.
    const created: string[] = [];
    for (const [i, f] of [0, 1, 0, 0, 1].map((m, i) => [m, ["a", "b", "c", "d", "e"][i]] as const)) {
      const c = await httpAs(apiKey, "POST", "/connections", {
        iModelId: iModels[i],
        displayName: f,
        source: { type: "local", path: source },
        sourceFiles: [{ path: `${f}.ifc`, connectorType: "IFC" }],
      });
      expect(c.status, JSON.stringify(c.body)).toBe(201);
      created.push(c.body.connection.id);
    }
    const gone = await httpAs(apiKey, "DELETE", `/connections/${created[2]}?mode=keepData`);
    expect(gone.status, JSON.stringify(gone.body)).toBe(200);
    const active = created.filter((_, i) => i !== 2);

    expect(await walk(apiKey, "/connections?$top=1")).toEqual(active);
    expect(await walk(apiKey, "/connections?$top=2")).toEqual(active);
    expect(await walk(apiKey, "/connections?$top=2&$skip=1")).toEqual(active.slice(1));
    expect(await walk(apiKey, "/connections?status=Deleted")).toEqual([created[2]]);
    // Another user's connections are not merged in; the administrator sees them among all.
    const other = await createConnection(source, ["a.ifc"], "merged other");
    expect(await walk(apiKey, "/connections?$top=3")).toEqual(active);
    const all = await walk(stack().adminApiKey, "/connections?$top=50");
    expect(all).toEqual(expect.arrayContaining([...active, other.connection.id]));

    // Without one iModel's list (an iModel from before lists were kept), the query gives the same answers.
    const list = iModelConnectionsList(iModels[0]);
    const lists = store.db.collection<{ _id: string }>(ID_LISTS_COLLECTION);
    const head = await lists.findOne({ _id: list });
    await lists.deleteOne({ _id: list });
    try {
      expect(await walk(apiKey, "/connections?$top=2")).toEqual(active);
      expect(await walk(apiKey, "/connections?status=Deleted")).toEqual([created[2]]);
      expect(await walk(stack().adminApiKey, "/connections?$top=50")).toEqual(all);
    } finally {
      await lists.insertOne(head!);
    }
  });
});
