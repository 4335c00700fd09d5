/**
 * What a run changed (README "What a run changed") on the real stack: the change list names the elements a run
 * inserted, updated and deleted by source identifier, file, class and element id; it pages across chunk documents;
 * lists beyond the newest CHANGE_LISTS_KEPT runs of a connection are pruned. Also measures the space the lists take.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BSON } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHANGE_CHUNK_SIZE, changeChunkId } from "../domain/change-lists";
import { pruneChangeLists } from "../lib/change-lists";
import { openStore, type Store } from "../lib/db";
import { allPages, createConnection, ecsql, FIXTURE, http, makeSource, stack, tasksOf, waitForRun } from "./helpers";

const MODEL = FIXTURE("integrity/model_rev1.ifc");
const DOOR = FIXTURE("dxf/dxf_r2000_ceco_door_frame_detail.dxf");
const WALL = "1YueHYcBxEa0eY6z3s_Zyv";
const SLAB = "3Mow9YJfDbMq6sOj$GgZe8";
const COLUMN = "0k920sdWUpJUKcqZZBZVvI";
/** The spatial structure containing them (README "What an iModel contains"). */
const SITE = "3KAJXYr6$SN02GET5om766";
const BUILDING = "2ZliDgwAdtBUPmbdeqern$";
const STOREY = "2LaUdwdwGM9HIzcHgXhx5G";

let store: Store;
beforeAll(async () => {
  store = await openStore(stack().mongoUri);
});
afterAll(async () => {
  await store?.close();
});

async function runOnce(connectionId: string, body?: unknown) {
  const r = await http("POST", `/connections/${connectionId}/run`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return (await waitForRun(r.location!)).run;
}

/** Every entry of a run's change list, page by page (following `_links.next`). */
async function allChanges(location: string): Promise<any[]> {
  return allPages(stack().adminApiKey, location, "changes");
}

/** Element id by source identifier (ExternalSourceAspect) in the iModel. */
async function elementIds(bim: string): Promise<Record<string, string>> {
  const rows = await ecsql(
    bim,
    "SELECT Identifier identifier, Element.Id id FROM BisCore.ExternalSourceAspect WHERE Kind = 'Element'",
  );
  return Object.fromEntries(rows.map((r) => [r.identifier, r.id]));
}

describe("what a run changed", () => {
  let source: string;
  let connection: any;
  let bim: string;
  let first: any;

  beforeAll(async () => {
    source = makeSource("changes", { "model.ifc": MODEL });
    const created = await createConnection(source, ["model.ifc"], "changes");
    connection = created.connection;
    bim = (await http("GET", `/imodels/${created.iModelId}`)).body.iModel.location.path;
    first = await runOnce(connection.id);
  });

  it("lists what the first run inserted, by identifier, file, class, category and element id", async () => {
    expect(first.changeList).toBe("kept");
    expect(first._links.changes).toEqual({ href: `/connections/${connection.id}/runs/${first.id}/changes` });
    const r = await http("GET", first._links.changes.href);
    const ids = await elementIds(bim);
    const fileId = connection.sourceFiles[0].id;
    expect(r.body.counts).toEqual({ inserted: 6, updated: 0, deleted: 0 });
    // In the order written: the spatial structure from the top (containers first), then the products.
    expect(r.body.changes).toEqual(
      [
        [SITE, "IfcSite"],
        [BUILDING, "IfcBuilding"],
        [STOREY, "IfcBuildingStorey"],
        [WALL, "IfcWall"],
        [SLAB, "IfcSlab"],
        [COLUMN, "IfcColumn"],
      ].map(([identifier, className]) => ({
        operation: "inserted",
        identifier,
        elementId: ids[identifier],
        className,
        category: className,
        sourceFileId: fileId,
        path: "model.ifc",
      })),
    );
    // Space of an IFC entry (README "What a run changed" quotes it): the BSON of the chunk's columns, per entry.
    const chunk = await store.changeChunks.findOne({ _id: changeChunkId(first.id, fileId, "inserted", 0) });
    const empty = { identifiers: [], elementIds: [], classNames: [], categories: [] };
    const perEntry = (BSON.calculateObjectSize(chunk!.entries) - BSON.calculateObjectSize(empty)) / 6;
    console.log(`change list of an IFC file: ${perEntry.toFixed(1)} bytes of BSON per element (columns only)`);
    expect(perEntry).toBeLessThan(150);
  });

  it("names exactly the two identifiers of a run that moved one element and deleted another", async () => {
    const before = await elementIds(bim);
    const rev1 = fs.readFileSync(MODEL, "utf8");
    const moved = rev1.replace("#103=IFCCARTESIANPOINT((0.0,0.0,0.0));", "#103=IFCCARTESIANPOINT((0.0,2.0,0.0));");
    const edited = moved.replace(/^#12\d=.*\n/gm, "").replace("(#100,#110,#120)", "(#100,#110)");
    expect(moved).not.toBe(rev1); // the wall moved
    expect(edited).not.toContain("IFCCOLUMN"); // the column is gone
    fs.writeFileSync(path.join(source, "model.ifc"), edited);

    const run = await runOnce(connection.id);
    // Unchanged: the slab, and the site, building and storey.
    expect(tasksOf(run)[0].elements).toEqual({ inserted: 0, updated: 1, deleted: 1, unchanged: 4 });
    const changes = await allChanges(`/connections/${connection.id}/runs/${run.id}/changes`);
    expect(changes).toEqual([
      expect.objectContaining({
        operation: "updated",
        identifier: WALL,
        elementId: before[WALL],
        className: "IfcWall",
      }),
      expect.objectContaining({
        operation: "deleted",
        identifier: COLUMN,
        elementId: before[COLUMN],
        className: "IfcColumn",
        category: "IfcColumn",
      }),
    ]);
    // Filter by operation; page one at a time.
    const deleted = await http("GET", `/connections/${connection.id}/runs/${run.id}/changes?operation=deleted`);
    expect(deleted.body.changes.map((c: any) => c.identifier)).toEqual([COLUMN]);
    const page = await http("GET", `/connections/${connection.id}/runs/${run.id}/changes?$top=1`);
    expect(page.body.changes.map((c: any) => c.identifier)).toEqual([WALL]);
    expect(page.body._links.next.href).toBe(`/connections/${connection.id}/runs/${run.id}/changes?$top=1&$skip=1`);
    const bad = await http("GET", `/connections/${connection.id}/runs/${run.id}/changes?operation=moved`);
    expect([bad.status, bad.body.error.code]).toEqual([400, "InvalidRequest"]);
    const unknown = await http("GET", `/connections/${connection.id}/runs/nope/changes`);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, "RunNotFound"]);
  });

  it("pages a list held in several chunks (707 DXF entities) and measures its space", async () => {
    const src = makeSource("changes-dxf", { "door.dxf": DOOR });
    const m = await http("POST", "/imodels", { name: "changes dxf" });
    const c = await http("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: "door",
      source: { type: "local", path: src },
      sourceFiles: [{ path: "door.dxf", connectorType: "DXF" }],
    });
    const run = await runOnce(c.body.connection.id);
    const inserted = tasksOf(run)[0].elements.inserted;
    expect(inserted).toBeGreaterThan(CHANGE_CHUNK_SIZE);
    const location = `/connections/${c.body.connection.id}/runs/${run.id}/changes`;
    const all = await allChanges(`${location}?$top=1000`);
    expect(all).toHaveLength(inserted);
    const ids = await elementIds(m.body.iModel.location.path);
    expect(Object.fromEntries(all.map((x) => [x.identifier, x.elementId]))).toEqual(ids);
    expect(all.every((x) => x.operation === "inserted" && typeof x.className === "string")).toBe(true);
    // A page across the boundary of the first two chunks.
    const across = await http("GET", `${location}?$skip=${CHANGE_CHUNK_SIZE - 5}&$top=10`);
    expect(across.body.changes).toEqual(all.slice(CHANGE_CHUNK_SIZE - 5, CHANGE_CHUNK_SIZE + 5));

    // Space: the BSON size of the run's chunk documents, per entry (README "What a run changed" quotes it).
    const fileId = c.body.connection.sourceFiles[0].id;
    const docs = await Promise.all(
      [0, 1].map((n) => store.changeChunks.findOne({ _id: changeChunkId(run.id, fileId, "inserted", n) })),
    );
    const bytes = docs.reduce((n, d) => n + BSON.calculateObjectSize(d!), 0);
    const perEntry = bytes / inserted;
    console.log(
      `change list of ${inserted} DXF entities: ${bytes} bytes of BSON in 2 chunks, ${perEntry.toFixed(1)} bytes per element`,
    );
    expect(perEntry).toBeLessThan(150);
  });

  it("keeps the lists of the newest runs only: older ones are pruned, their chunks removed (409 ChangeListNotKept)", async () => {
    // Three more runs of the connection above (forced, so each is a run that wrote its file).
    const runs = [first];
    for (let i = 0; i < 2; i++) runs.push(await runOnce(connection.id, { force: true }));
    const fileId = connection.sourceFiles[0].id;
    const firstChunk = () => store.changeChunks.findOne({ _id: changeChunkId(first.id, fileId, "inserted", 0) });
    expect(await firstChunk()).not.toBeNull();
    // CHANGE_LISTS_KEPT is 20 in the test stack: prune as a completion would with a smaller setting.
    const pruned = await pruneChangeLists(store, connection.id, 2);
    expect(pruned).toContain(first.id);
    expect(pruned).toHaveLength((await http("GET", `/connections/${connection.id}/runs`)).body.runs.length - 2);
    expect(await firstChunk()).toBeNull();
    const gone = await http("GET", `/connections/${connection.id}/runs/${first.id}/changes`);
    expect([gone.status, gone.body.error.code]).toEqual([409, "ChangeListNotKept"]);
    expect(gone.body.error.message).toContain("last 20 runs");
    expect((await http("GET", `/connections/${connection.id}/runs/${first.id}`)).body.run.changeList).toBe("pruned");
    // The newest two still answer; pruning again changes nothing.
    const newest = runs[runs.length - 1];
    expect((await http("GET", `/connections/${connection.id}/runs/${newest.id}/changes`)).status).toBe(200);
    expect(await pruneChangeLists(store, connection.id, 2)).toEqual([]);
    // A run's completion prunes beyond CHANGE_LISTS_KEPT by itself: with 20 kept, nothing more goes.
    await runOnce(connection.id);
    expect((await http("GET", `/connections/${connection.id}/runs/${newest.id}/changes`)).status).toBe(200);
  });
});
