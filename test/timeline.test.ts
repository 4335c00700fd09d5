/**
 * The connection timeline on the real stack (README "Connection timeline"): every change to a connection is an event
 * with who made it and when, newest first, alongside its runs; a change that changes nothing leaves none; an event
 * whose copy was lost is still shown and copied again at the next change, never twice.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../lib/db";
import { createUser, http, httpAs, makeSource, SAMPLE, stack, waitForRun } from "./helpers";

const HVAC = SAMPLE("ifc4_hvac_air_terminal_duct.ifc");

let store: Store;
beforeAll(async () => {
  store = await openStore(stack().mongoUri);
});
afterAll(async () => {
  await store?.close();
});

describe("the connection timeline", () => {
  it("records every change with who and when, newest first, merged with the runs", async () => {
    const source = makeSource("timeline", { "a.ifc": HVAC, "b.ifc": HVAC });
    const m = await http("POST", "/imodels", { name: "timeline" });
    const iModelId = m.body.iModel.id;
    const member = await createUser("Timeline Member");
    expect((await http("POST", `/imodels/${iModelId}/members`, { userId: member.user.id })).status).toBe(201);
    expect((await httpAs(member.apiKey, "GET", `/imodels/${iModelId}`)).status).toBe(200); // interacted
    const created = await http("POST", "/connections", {
      iModelId,
      displayName: "timeline",
      source: { type: "local", path: source },
      sourceFiles: [{ path: "a.ifc", connectorType: "IFC" }],
    });
    const c = `/connections/${created.body.connection.id}`;
    const ok = async (method: string, url: string, body?: unknown) => {
      const r = await http(method, url, body);
      expect(r.status, `${method} ${url}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
      return r;
    };
    await ok("PATCH", c, { displayName: "timeline (renamed)" });
    await ok("PATCH", c, { displayName: "timeline (renamed)" }); // the same name: no event
    await ok("PATCH", c, { deletionGuard: { minElements: 5 } });
    await ok("PUT", `${c}/schedule`, { type: "daily", time: "03:00", timeZone: "Europe/Berlin" });
    await ok("PUT", `${c}/schedule`, { type: "daily", time: "03:00", timeZone: "Europe/Berlin" }); // no change
    await ok("POST", `${c}/schedule/pause`, { note: "holidays" });
    await ok("POST", `${c}/schedule/resume`);
    const run = await ok("POST", `${c}/run`);
    await waitForRun(run.location!);
    const mapped = await ok("POST", `${c}/sourceFiles`, { sourceFiles: [{ path: "b.ifc", connectorType: "IFC" }] });
    const b = mapped.body.connection.sourceFiles.find((f: any) => f.path === "b.ifc").id;
    await ok("DELETE", `${c}/sourceFiles/${b}?mode=keepData`);
    await ok("POST", `${c}/owner`, { userId: member.user.id });

    // The copy of the owner change's event is lost (as if the database went away right after the change): the
    // timeline shows it from the connection, and the next change copies it again.
    const ownerEvent = `${created.body.connection.id}:000000009`;
    expect((await store.connectionEvents.deleteOne({ _id: ownerEvent })).deletedCount).toBe(1);
    const shown = await http("GET", `${c}/events?kind=change&$top=1`);
    expect(shown.body.events.map((e: any) => [e.id, e.type])).toEqual([[ownerEvent, "OwnerChanged"]]);
    await ok("DELETE", `${c}?mode=keepData`);
    expect(await store.connectionEvents.findOne({ _id: ownerEvent })).not.toBeNull();

    const all = await http("GET", `${c}/events`);
    expect(all.status).toBe(200);
    const events = all.body.events;
    expect(events.map((e: any) => e.type)).toEqual([
      "ConnectionDeleted",
      "OwnerChanged",
      "SourceFileUnmapped",
      "SourceFilesMapped",
      "Run",
      "ScheduleResumed",
      "SchedulePaused",
      "ScheduleSet",
      "DeletionGuardChanged",
      "ConnectionRenamed",
      "ConnectionCreated",
    ]);
    const dates = events.map((e: any) => e.dateTime);
    expect([...dates].sort().reverse()).toEqual(dates);
    const admin = { id: "admin", email: expect.any(String), name: expect.any(String) };
    for (const e of events) expect(e.by, e.type).toEqual(admin);
    const byType = (t: string) => events.find((e: any) => e.type === t);
    expect(byType("ConnectionRenamed").details).toEqual({ from: "timeline", to: "timeline (renamed)" });
    expect(byType("DeletionGuardChanged").details).toEqual({
      from: { enabled: true, fraction: 0.5, minElements: 10 },
      to: { enabled: true, fraction: 0.5, minElements: 5 },
    });
    expect(byType("ScheduleSet").details).toMatchObject({
      schedule: { type: "daily", time: "03:00", timeZone: "Europe/Berlin" },
      revision: 1,
    });
    expect(byType("SchedulePaused").details).toEqual({ note: "holidays" });
    expect(byType("SourceFileUnmapped").details).toEqual({
      mode: "keepData",
      sourceFileId: b,
      path: "b.ifc",
      sourceFileIds: [b],
    });
    expect(byType("OwnerChanged").details).toMatchObject({
      from: { id: "admin" },
      to: { id: member.user.id },
      taken: false,
    });
    expect(byType("ConnectionDeleted").details).toEqual({ mode: "keepData" });
    expect(byType("ConnectionCreated").details.sourceFiles.map((f: any) => f.path)).toEqual(["a.ifc"]);
    expect(byType("Run")).toMatchObject({
      kind: "run",
      id: run.body.run.id,
      details: { trigger: "manual", kind: "sync", state: "Completed", result: "Success" },
      _links: { run: { href: `${c}/runs/${run.body.run.id}` } },
    });

    // Filters and paging, with the filter kept in the next link.
    const changes = await http("GET", `${c}/events?kind=change`);
    expect(changes.body.events.map((e: any) => e.type)).toEqual(
      events.map((e: any) => e.type).filter((t: string) => t !== "Run"),
    );
    const runs = await http("GET", `${c}/events?kind=run`);
    expect(runs.body.events.map((e: any) => e.id)).toEqual([run.body.run.id]);
    const page = await http("GET", `${c}/events?$top=4&$skip=4`);
    expect(page.body.events).toEqual(events.slice(4, 8));
    expect(page.body._links.next.href).toBe(`${c}/events?$top=4&$skip=8`);
    // Every event is stored once.
    expect(await store.connectionEvents.countDocuments({ connectionId: created.body.connection.id })).toBe(10);
    const bad = await http("GET", `${c}/events?kind=everything`);
    expect([bad.status, bad.body.error.code]).toEqual([400, "InvalidRequest"]);
  });
});
