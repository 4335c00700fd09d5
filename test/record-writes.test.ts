/**
 * lib/record-writes.ts on the real MongoDB-wire server of the test stack (FerretDB 1.x rewrites whole documents on
 * update, so concurrent updates of different fields of one record can lose one another): writers going through
 * `withRecord` never lose a change.
 */
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withRecord } from "../lib/record-writes";
import { stack } from "./helpers";

let mongo: MongoClient;
beforeAll(async () => {
  mongo = new MongoClient(stack().mongoUri, { serverSelectionTimeoutMS: 5000 });
  await mongo.connect();
});
afterAll(async () => {
  await mongo?.close();
});

describe("withRecord", () => {
  it("keeps every change of 20 concurrent writers of different fields of one record", async () => {
    const db = mongo.db();
    const records = db.collection<{ _id: string; [field: string]: unknown }>("recordWritesTest");
    const id = `r-${Date.now()}`;
    await records.insertOne({ _id: id });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        withRecord(db, records, `recordWritesTest/${id}`, id, async (current, write) => {
          await write({ $set: { [`f${i}`]: i, count: ((current.count as number | undefined) ?? 0) + 1 } });
        }),
      ),
    );
    const final = await records.findOne({ _id: id });
    expect(Object.keys(final!).filter((k) => /^f\d+$/.test(k)).length).toBe(20);
    expect(final!.count).toBe(20);
  });

  it("refuses a missing record with the caller's error and writes nothing", async () => {
    const db = mongo.db();
    const records = db.collection<{ _id: string }>("recordWritesTest");
    await expect(
      withRecord(db, records, "recordWritesTest/none", "none", async () => 1, {
        notFound: () => new Error("no such record"),
      }),
    ).rejects.toThrow("no such record");
    expect(await records.findOne({ _id: "none" })).toBeNull();
  });
});
