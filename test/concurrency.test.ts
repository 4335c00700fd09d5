/**
 * Concurrent changes to one iModel's mapping: the rules (a file mapped once, at most 100 connections and 250 composite
 * models) hold under concurrent requests, because lib/locks.ts serializes them per iModel. Also the lock itself,
 * against the test stack's FerretDB, and concurrent run requests, each answered with the run.
 */
import { MongoClient, type Db } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../domain/errors";
import { LIMITS } from "../domain/limits";
import { iModelMappingLockKey, LOCKS_COLLECTION, withLock, type LockRecord } from "../lib/locks";
import { createConnection, createUser, http, httpAs, makeSource, SAMPLE, stack, waitForRun } from "./helpers";

const SMALL = SAMPLE("ifc4x3_georef_mapconversion_utm.ifc"); // 3.5 KB
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const uniqueKey = (name: string) => `test/${name}/${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

describe("withLock (lease lock on FerretDB)", () => {
  let client: MongoClient;
  let db: Db;
  beforeAll(async () => {
    client = new MongoClient(stack().mongoUri, { serverSelectionTimeoutMS: 5000, retryWrites: false });
    await client.connect();
    db = client.db();
  });
  afterAll(async () => client?.close());
  const locks = () => db.collection<LockRecord>(LOCKS_COLLECTION);

  it("lets one holder at a time run, and releases the lock afterwards", async () => {
    const key = uniqueKey("mutex");
    let active = 0;
    let maxActive = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        withLock(
          db,
          key,
          async (lease) => {
            active++;
            maxActive = Math.max(maxActive, active);
            expect(lease.lost).toBe(false);
            const held = await locks().findOne({ _id: key });
            expect(held?.holder).toBe(lease.holder);
            await sleep(30);
            order.push(i);
            active--;
          },
          { leaseMs: 5_000, waitMs: 20_000 },
        ),
      ),
    );
    expect(maxActive).toBe(1);
    expect(order).toHaveLength(8);
    expect(await locks().findOne({ _id: key })).toBeNull();
  });

  it("passes fn's result and error through, releasing the lock in both cases", async () => {
    const key = uniqueKey("result");
    expect(await withLock(db, key, async () => 42)).toBe(42);
    await expect(withLock(db, key, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await locks().findOne({ _id: key })).toBeNull();
  });

  it("takes over a lock whose lease expired", async () => {
    const key = uniqueKey("stale");
    const past = new Date(Date.now() - 1_000);
    await locks().insertOne({
      _id: key,
      holder: "crashed-holder",
      acquiredAt: new Date(Date.now() - 31_000),
      expiresAt: past,
    });
    const started = Date.now();
    const holder = await withLock(db, key, async (lease) => {
      const held = await locks().findOne({ _id: key });
      expect(held?.holder).toBe(lease.holder);
      return lease.holder;
    });
    expect(holder).not.toBe("crashed-holder");
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await locks().findOne({ _id: key })).toBeNull();
  });

  it("waits for a live lock, then fails with 409 ConcurrentChange and leaves it alone", async () => {
    const key = uniqueKey("live");
    await locks().insertOne({
      _id: key,
      holder: "live-holder",
      acquiredAt: new Date(),
      expiresAt: new Date(Date.now() + 60_000),
    });
    let ran = false;
    const started = Date.now();
    const err = await withLock(db, key, async () => (ran = true), { waitMs: 400 }).catch((e: unknown) => e);
    const waited = Date.now() - started;
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("ConcurrentChange");
    expect((err as ApiError).status).toBe(409);
    expect(ran).toBe(false);
    expect(waited).toBeGreaterThanOrEqual(350);
    expect(waited).toBeLessThan(3_000);
    expect((await locks().findOne({ _id: key }))?.holder).toBe("live-holder");
    await locks().deleteOne({ _id: key });
  });

  it("gets a lock as soon as its holder releases it", async () => {
    const key = uniqueKey("handover");
    await locks().insertOne({
      _id: key,
      holder: "other",
      acquiredAt: new Date(),
      expiresAt: new Date(Date.now() + 60_000),
    });
    setTimeout(() => void locks().deleteOne({ _id: key, holder: "other" }), 300);
    const started = Date.now();
    await withLock(db, key, async () => undefined, { waitMs: 5_000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("renews the lease while fn runs, so a slow holder is not taken over", async () => {
    const key = uniqueKey("renew");
    let secondRan = false;
    await withLock(
      db,
      key,
      async (lease) => {
        // More than three lease lengths long: without renewal the lock would be stale and taken over.
        const other = withLock(db, key, async () => (secondRan = true), { waitMs: 1_600 }).catch(
          (e: ApiError) => e.code,
        );
        await sleep(2_000);
        expect(await other).toBe("ConcurrentChange");
        expect(lease.lost).toBe(false);
        expect(() => lease.assertHeld()).not.toThrow();
      },
      { leaseMs: 600 },
    );
    expect(secondRan).toBe(false);
  });

  it("notices a lost lease and never releases another holder's lock", async () => {
    const key = uniqueKey("lost");
    await withLock(
      db,
      key,
      async (lease) => {
        // Someone took the lock over (as if this holder had stalled past its lease).
        await locks().deleteOne({ _id: key });
        await locks().insertOne({
          _id: key,
          holder: "successor",
          acquiredAt: new Date(),
          expiresAt: new Date(Date.now() + 60_000),
        });
        await sleep(700); // renewals (every leaseMs / 3 = 300 ms) find the lock in other hands, before the lease would end
        expect(lease.lost).toBe(true);
        expect(() => lease.assertHeld()).toThrow(ApiError);
      },
      { leaseMs: 900 },
    );
    expect((await locks().findOne({ _id: key }))?.holder).toBe("successor");
    await locks().deleteOne({ _id: key });
  });
});

describe("concurrent connection creation on one iModel", () => {
  const newIModel = async (name: string): Promise<string> => {
    const res = await http("POST", "/imodels", { name });
    expect(res.status).toBe(201);
    // Its creator (the admin here) manages its team.
    return res.body.iModel.id as string;
  };
  const create = (iModelId: string, source: string, files: string[], displayName: string) =>
    http("POST", "/connections", {
      iModelId,
      displayName,
      source: { type: "local", path: source },
      sourceFiles: files.map((p) => ({ path: p, connectorType: "IFC" })),
    });
  const connectionsOf = async (iModelId: string): Promise<any[]> => {
    const res = await http("GET", `/connections?iModelId=${iModelId}&$top=1000`);
    expect(res.status).toBe(200);
    return res.body.connections;
  };
  const tally = (results: { status: number; body: any }[]) => {
    const t: Record<string, number> = {};
    for (const r of results) {
      const k = r.status === 201 ? "201" : `${r.status} ${r.body?.error?.code}`;
      t[k] = (t[k] ?? 0) + 1;
    }
    return t;
  };

  it("maps a file once when 20 requests race for it", async () => {
    const iModelId = await newIModel("race one file");
    const source = makeSource("race-file", { "a.ifc": SMALL });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => create(iModelId, source, ["a.ifc"], `racer ${i}`)),
    );
    expect(tally(results)).toEqual({ "201": 1, "409 SourceFileAlreadyMapped": 19 });
    expect(await connectionsOf(iModelId)).toHaveLength(1);
  });

  it("keeps the 250 composite models limit under concurrent creates", async () => {
    const iModelId = await newIModel("race composites");
    const files: Record<string, string> = {};
    for (let i = 0; i < 260; i++) files[`m${String(i).padStart(3, "0")}.ifc`] = SMALL;
    const source = makeSource("race-composites", files);
    const names = Object.keys(files);
    // 26 connections of 10 files each: 260 composite models asked, 250 allowed.
    const results = await Promise.all(
      Array.from({ length: 26 }, (_, i) => create(iModelId, source, names.slice(i * 10, i * 10 + 10), `batch ${i}`)),
    );
    expect(tally(results)).toEqual({ "201": 25, "409 MaxCompositeModelsPerIModelReached": 1 });
    const connections = await connectionsOf(iModelId);
    const composites = connections.reduce((n, c) => n + c.sourceFiles.length, 0);
    expect(composites).toBe(LIMITS.compositeModelsPerIModel);
  });

  it("keeps the 100 connections limit under concurrent creates", async () => {
    const iModelId = await newIModel("race connections");
    const files: Record<string, string> = {};
    for (let i = 0; i < 105; i++) files[`c${String(i).padStart(3, "0")}.ifc`] = SMALL;
    const source = makeSource("race-connections", files);
    const names = Object.keys(files);
    // 90 connections in concurrent waves of 10, then 15 concurrent requests race for the last 10 places.
    for (let wave = 0; wave < 9; wave++) {
      const results = await Promise.all(
        names.slice(wave * 10, wave * 10 + 10).map((f) => create(iModelId, source, [f], `connection ${f}`)),
      );
      expect(tally(results)).toEqual({ "201": 10 });
    }
    const race = await Promise.all(names.slice(90).map((f) => create(iModelId, source, [f], `connection ${f}`)));
    expect(tally(race)).toEqual({ "201": 10, "409 MaxConnectionsPerIModelReached": 5 });
    expect(await connectionsOf(iModelId)).toHaveLength(LIMITS.connectionsPerIModel);
  });

  it("does not hold up creates on other iModels, and leaves no lock behind", async () => {
    const a = await newIModel("parallel a");
    const b = await newIModel("parallel b");
    const source = makeSource("parallel", { "x.ifc": SMALL });
    const [ra, rb] = await Promise.all([create(a, source, ["x.ifc"], "a"), create(b, source, ["x.ifc"], "b")]);
    expect([ra.status, rb.status]).toEqual([201, 201]);
    const client = new MongoClient(stack().mongoUri, { serverSelectionTimeoutMS: 5000 });
    try {
      await client.connect();
      const left = await client
        .db()
        .collection<LockRecord>(LOCKS_COLLECTION)
        .find({ _id: { $in: [iModelMappingLockKey(a), iModelMappingLockKey(b)] } })
        .toArray();
      expect(left).toEqual([]);
    } finally {
      await client.close();
    }
  });
});

describe("concurrent run requests", () => {
  it("answers each of 20 concurrent POST …/run with the run itself, never an empty body", async () => {
    // The run queue claims a new run before its record is written: the requests answered with that run (303) used to
    // find no record yet and answer `{}` (1 to 3 of 20). Several rounds, on a new iModel and on one whose queue runs.
    const source = makeSource("race-run", { "a.ifc": SMALL, "b.ifc": SMALL, "c.ifc": SMALL });
    const first = await createConnection(source, ["a.ifc"], "run race a");
    const connections = [
      first.connection,
      (await createConnection(source, ["b.ifc"], "run race b", first.iModelId)).connection,
      (await createConnection(source, ["c.ifc"], "run race c")).connection,
    ];
    const empty: string[] = [];
    for (const connection of [...connections, ...connections]) {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => http("POST", `/connections/${connection.id}/run`)),
      );
      for (const r of results) {
        expect([202, 303], JSON.stringify(r.body)).toContain(r.status);
        if (typeof r.body?.run?.id !== "string") {
          empty.push(`${r.status} ${r.location} ${JSON.stringify(r.body)}`);
          continue;
        }
        expect(r.location).toBe(`/connections/${connection.id}/runs/${r.body.run.id}`);
        expect(r.body.run).toMatchObject({ connectionId: connection.id, trigger: "manual" });
      }
      // One run is created, the others answered with it (a later one may find it completed and start another).
      expect(results.filter((r) => r.status === 202).length).toBeGreaterThanOrEqual(1);
      for (const location of new Set(results.map((r) => r.location!))) await waitForRun(location);
    }
    expect(empty).toEqual([]);
  });

  it("answers concurrent bulk runs with each run, for callers who are members too", async () => {
    const source = makeSource("race-bulk", { "a.ifc": SMALL, "b.ifc": SMALL });
    const { iModelId } = await createConnection(source, ["a.ifc"], "bulk race a");
    await createConnection(source, ["b.ifc"], "bulk race b", iModelId);
    const member = await createUser("Bulk Racer");
    expect((await http("POST", `/imodels/${iModelId}/members`, { userId: member.user.id })).status).toBe(201);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        i % 2
          ? http("POST", `/imodels/${iModelId}/run`, {})
          : httpAs(member.apiKey, "POST", `/imodels/${iModelId}/run`, {}),
      ),
    );
    const locations = new Set<string>();
    for (const r of results) {
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expect(r.body.runs).toHaveLength(2);
      for (const entry of r.body.runs) {
        expect(entry.run?.id, JSON.stringify(entry)).toBe(entry.runId);
        expect(entry.run.connectionId).toBe(entry.connectionId);
        locations.add(entry._links.run.href);
      }
    }
    for (const location of locations) await waitForRun(location);
  });
});
