/**
 * Unit tests of the pure parts of run control: the layout and paging of change lists (domain/change-lists.ts), the
 * estimate of a run's duration (domain/run-estimate.ts), the run list filters (domain/schemas.ts) and the events a
 * change records (lib/connection-events.ts `withEvents`). No servers.
 */
import { describe, expect, it } from "vitest";
import {
  CHANGE_CHUNK_SIZE,
  changeChunkId,
  changeChunks,
  changeListSlices,
  storedChanges,
  type ElementChange,
  type TaskChanges,
} from "../domain/change-lists";
import { CHANGE_OPERATIONS } from "../domain/model";
import { estimateRunDuration } from "../domain/run-estimate";
import { listRunsQuery } from "../domain/schemas";
import { connectionEventId, withEvents } from "../lib/connection-events";

const change = (i: number): ElementChange => ({
  identifier: `id-${i}`,
  elementId: `0x${i.toString(16)}`,
  className: "IfcWall",
  category: "IfcWall",
});

describe("change lists: chunks and pages", () => {
  it("cuts each operation's entries into chunks of CHANGE_CHUNK_SIZE, stored by column", () => {
    const inserted = Array.from({ length: CHANGE_CHUNK_SIZE + 3 }, (_, i) => change(i));
    const chunks = changeChunks({ inserted, updated: [], deleted: [change(9)] });
    expect(chunks.map((c) => [c.operation, c.chunk, c.entries.identifiers.length])).toEqual([
      ["inserted", 0, CHANGE_CHUNK_SIZE],
      ["inserted", 1, 3],
      ["deleted", 0, 1],
    ]);
    expect(storedChanges(chunks[1].entries, 0, 10)).toEqual([
      change(CHANGE_CHUNK_SIZE),
      change(CHANGE_CHUNK_SIZE + 1),
      change(CHANGE_CHUNK_SIZE + 2),
    ]);
    expect(storedChanges(chunks[0].entries, 499, 500)).toEqual([change(499)]);
    expect(changeChunkId("r", "f", "deleted", 2)).toBe("r:f:deleted:2");
  });

  const tasks: TaskChanges[] = [
    { sourceFileId: "b", path: "b.ifc", index: 1, counts: { inserted: 2, updated: 0, deleted: 1 } },
    {
      sourceFileId: "a",
      path: "a.ifc",
      index: 0,
      counts: { inserted: CHANGE_CHUNK_SIZE + 10, updated: 1, deleted: 0 },
    },
  ];

  /** The list positions a page covers, as (file, operation, offset) triples, from its slices. */
  const covered = (slices: ReturnType<typeof changeListSlices>["slices"]) =>
    slices.flatMap((s) =>
      Array.from(
        { length: s.end - s.start },
        (_, i) => `${s.sourceFileId}/${s.operation}/${s.chunk * CHANGE_CHUNK_SIZE + s.start + i}`,
      ),
    );

  /** Every entry of the list, in order. */
  const everything = (ops: readonly string[]) =>
    [...tasks]
      .sort((x, y) => x.index - y.index)
      .flatMap((t) =>
        CHANGE_OPERATIONS.filter((op) => ops.includes(op)).flatMap((op) =>
          Array.from({ length: t.counts[op] }, (_, i) => `${t.sourceFileId}/${op}/${i}`),
        ),
      );

  it("pages through tasks by index, then inserted, updated, deleted, across chunk boundaries", () => {
    const all = everything(CHANGE_OPERATIONS);
    for (const [skip, top] of [
      [0, 100],
      [CHANGE_CHUNK_SIZE - 5, 10],
      [CHANGE_CHUNK_SIZE + 8, 5],
      [all.length - 2, 100],
      [all.length, 10],
      [0, 1000],
    ]) {
      const { total, slices } = changeListSlices(tasks, CHANGE_OPERATIONS, skip, top);
      expect(total).toBe(all.length);
      expect(covered(slices), `skip ${skip} top ${top}`).toEqual(all.slice(skip, skip + top));
    }
    // A page within one chunk reads one document; one across a boundary two.
    expect(changeListSlices(tasks, CHANGE_OPERATIONS, 10, 20).slices).toHaveLength(1);
    expect(changeListSlices(tasks, CHANGE_OPERATIONS, CHANGE_CHUNK_SIZE - 5, 10).slices).toHaveLength(2);
  });

  it("keeps only the operations asked for", () => {
    const { total, slices } = changeListSlices(tasks, ["deleted", "updated"], 0, 10);
    expect(total).toBe(2);
    expect(covered(slices)).toEqual(["a/updated/0", "b/deleted/0"]);
  });
});

describe("estimating a run's duration from past runs", () => {
  const runs = [
    { id: "r3", startDateTime: "2024-01-03T00:00:00.000Z", endDateTime: "2024-01-03T00:00:10.000Z" },
    { id: "r2", startDateTime: "2024-01-02T00:00:00.000Z", endDateTime: "2024-01-02T00:00:05.000Z" },
    { id: "r1" }, // never started: ignored
  ];
  const tasks = [
    { runId: "r3", sourceFileId: "a", result: "Success", durationMs: 8000 },
    { runId: "r3", sourceFileId: "b", result: "Skipped", durationMs: 0 },
    { runId: "r2", sourceFileId: "a", result: "Success", durationMs: 1000 },
    { runId: "r2", sourceFileId: "b", result: "Success", durationMs: 3000 },
    { runId: "r2", sourceFileId: "c", result: "Error", durationMs: 50 },
  ];

  it("sums each file's newest written task, the median for files without one, plus the median overhead", () => {
    const e = estimateRunDuration(["a", "b", "z"], runs, tasks)!;
    // overheads: r3 10 s - 8 s = 2 s; r2 5 s - 4 s = 1 s → median 1.5 s. Files: a 8 s (r3), b 3 s (r2), z median 3 s.
    expect(e.overheadMs).toBe(1500);
    expect(e.medianFileMs).toBe(3000);
    expect(e.durationMs).toBe(1500 + 8000 + 3000 + 3000);
    expect([e.filesWithHistory, e.filesWithoutHistory, e.runsConsidered]).toEqual([2, 1, 2]);
    expect(e.method).toContain("median");
  });

  it("is the overhead alone with nothing to synchronize, and null without any past written file", () => {
    expect(estimateRunDuration([], runs, tasks)!.durationMs).toBe(1500);
    expect(estimateRunDuration(["a"], runs, [])).toBeNull();
    expect(estimateRunDuration(["a"], [], tasks)).toBeNull();
  });
});

describe("run list filters", () => {
  const parse = (q: Record<string, unknown>) => listRunsQuery.safeParse(q);

  it("takes results, triggers and ISO 8601 UTC times, normalised to milliseconds", () => {
    const r = parse({
      result: "PartialSuccess",
      trigger: "retry",
      from: "2024-05-01T08:00Z",
      to: "2024-05-02T00:00:00.5Z",
    });
    expect(r.success && r.data).toMatchObject({
      result: "PartialSuccess",
      trigger: "retry",
      from: "2024-05-01T08:00:00.000Z",
      to: "2024-05-02T00:00:00.500Z",
      $top: 100,
      $skip: 0,
    });
  });

  it("refuses unknown values, local or impossible times, repeated parameters, and to not after from", () => {
    for (const q of [
      { result: "Fine" },
      { trigger: "cron" },
      { from: "2024-05-01T08:00:00" },
      { from: "2024-05-01T08:00:00+02:00" },
      { from: "2024-02-30T00:00Z" },
      { from: "yesterday" },
      { trigger: ["manual", "retry"] },
      { from: "2024-05-02T00:00Z", to: "2024-05-01T00:00Z" },
      { from: "2024-05-01T00:00Z", to: "2024-05-01T00:00:00.000Z" },
    ])
      expect(parse(q).success, JSON.stringify(q)).toBe(false);
  });
});

describe("events recorded with a change", () => {
  it("numbers them after the connection's last event and rides them on the same write", () => {
    const by = { id: "u1", email: "u1@x.org", name: "U1" };
    const change = withEvents(
      { _id: "c1", eventSeq: 7 },
      { $set: { displayName: "new" }, $unset: ["schedule"] },
      [
        { type: "ConnectionRenamed", by, details: { from: "old", to: "new" } },
        { type: "DeletionGuardChanged", by },
      ],
      "2024-01-01T00:00:00.000Z",
    );
    expect(change.$unset).toEqual(["schedule"]);
    expect(change.$set!.displayName).toBe("new");
    expect(change.$set!.eventSeq).toBe(9);
    expect(change.$set!.lastEvents!.map((e) => [e._id, e.seq, e.type])).toEqual([
      [connectionEventId("c1", 8), 8, "ConnectionRenamed"],
      ["c1:000000009", 9, "DeletionGuardChanged"],
    ]);
    expect(change.$set!.lastEvents![1].details).toEqual({});
  });
});
