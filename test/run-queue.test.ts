/**
 * Unit tests of the iModel run queue's rules (`RunQueue`, workflows/run-queue.ts) without Temporal: the two effects
 * (recording and completing a run) are plain functions that record their calls and can be held open. The same class
 * inside the real workflow on a Temporal server: test/imodel-queue.test.ts.
 */
import { describe, expect, it } from "vitest";
import type { QueuedRun, RunRequest } from "../workflows/definitions";
import {
  RunQueue,
  sameFiles,
  validateCancelRequest,
  validateRunRequest,
  type RunCompletion,
} from "../workflows/run-queue";

/** A promise the test settles by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A queue whose effects record what they were asked, in order; `hold` keeps a run's recording open. */
function queueWith(carried: QueuedRun[] = [], rememberEnded = 0) {
  const effects: string[] = [];
  const completions: RunCompletion[] = [];
  const held = new Map<string, Promise<void>>();
  const queue = new RunQueue(
    { iModelId: "m1", queue: carried },
    {
      recordQueued: async (run) => {
        effects.push(`record ${run.runId}`);
        await held.get(run.runId);
      },
      complete: async (completion) => {
        effects.push(`complete ${completion.runId}`);
        completions.push(completion);
      },
    },
    rememberEnded,
  );
  return { queue, effects, completions, held };
}

const sync = (runId: string, connectionId: string): RunRequest => ({ runId, connectionId, trigger: "manual" });
const del = (runId: string, connectionId: string, sourceFileIds?: string[], cancelSyncs = false): RunRequest => ({
  runId,
  connectionId,
  trigger: "delete",
  kind: "delete",
  ...(sourceFileIds ? { sourceFileIds } : {}),
  ...(cancelSyncs ? { cancelSyncs } : {}),
});
const reason = { code: "RunCancelledByUser", message: "cancelled by the test" };

describe("RunQueue", () => {
  it("executes the runs of all connections one at a time, oldest first", async () => {
    const { queue, effects } = queueWith();
    expect(await queue.request(sync("a", "c1"))).toEqual({ runId: "a", created: true });
    expect(await queue.request(sync("b", "c2"))).toEqual({ runId: "b", created: true });
    expect(await queue.request(sync("c", "c3"))).toEqual({ runId: "c", created: true });
    expect(effects).toEqual(["record a", "record b", "record c"]);
    expect(queue.view().queue.map((r) => r.runId)).toEqual(["a", "b", "c"]);
    const a = queue.takeNext()!;
    expect(a.runId).toBe("a");
    expect(queue.view()).toMatchObject({ iModelId: "m1", active: { runId: "a" } });
    expect(queue.release(a, {})).toEqual({ runId: "a" });
    expect(queue.view().active).toBeUndefined();
    expect(queue.takeNext()!.runId).toBe("b");
  });

  it("answers a second request for a connection with its active run, waiting or executing, until it is released", async () => {
    const { queue, effects } = queueWith();
    await queue.request(sync("a", "c1"));
    expect(await queue.request(sync("a2", "c1"))).toEqual({ runId: "a", created: false });
    expect(await queue.request(sync("a", "c1"))).toEqual({ runId: "a", created: false }); // a retried request
    const a = queue.takeNext()!;
    expect(await queue.request({ ...sync("a3", "c1"), trigger: "schedule" })).toEqual({ runId: "a", created: false });
    queue.release(a, {});
    expect(await queue.request(sync("a4", "c1"))).toEqual({ runId: "a4", created: true });
    expect(effects).toEqual(["record a", "record a4"]);
  });

  it("answers a retried request for a run that ended with that run, never executing it again (remembering the last N)", async () => {
    const { queue, effects } = queueWith([], 2);
    await queue.request(sync("a", "c1"));
    queue.release(queue.takeNext()!, {});
    // e.g. a schedule fire's activity retried with the same run id after its first request was answered
    expect(await queue.request({ ...sync("a", "c1"), trigger: "schedule" })).toEqual({ runId: "a", created: false });
    expect(queue.hasWaiting()).toBe(false);
    expect(effects).toEqual(["record a"]);
    // a new id is a new run; only the last 2 ended runs are remembered
    for (const id of ["b", "c"]) {
      expect(await queue.request(sync(id, "c1"))).toEqual({ runId: id, created: true });
      queue.release(queue.takeNext()!, {});
    }
    expect(await queue.request(sync("b", "c1"))).toEqual({ runId: "b", created: false });
    expect(await queue.request(sync("a", "c1"))).toEqual({ runId: "a", created: true });
    // histories recorded before it remember none: the same id executes again, as it did then
    const old = queueWith();
    await old.queue.request(sync("x", "c1"));
    old.queue.release(old.queue.takeNext()!, {});
    expect(await old.queue.request(sync("x", "c1"))).toEqual({ runId: "x", created: true });
  });

  it("claims a run before recording it, so a concurrent request gets that run", async () => {
    const { queue, held } = queueWith();
    const recording = deferred();
    held.set("a", recording.promise);
    const first = queue.request(sync("a", "c1"));
    expect(await queue.request(sync("b", "c1"))).toEqual({ runId: "a", created: false });
    expect(queue.hasWaiting()).toBe(false); // not queued before it is recorded
    recording.resolve();
    expect(await first).toEqual({ runId: "a", created: true });
    expect(queue.hasWaiting()).toBe(true);
  });

  it("frees the connection when the run cannot be recorded", async () => {
    const { queue, held } = queueWith();
    const recording = deferred();
    held.set("a", recording.promise);
    const first = queue.request(sync("a", "c1"));
    recording.reject(new Error("MongoDB is down"));
    await expect(first).rejects.toMatchObject({ type: "RunNotRecorded", nonRetryable: true });
    expect(await queue.request(sync("b", "c1"))).toEqual({ runId: "b", created: true });
  });

  it("cancels a waiting run at once: taken off the queue and completed as Cancelled", async () => {
    const { queue, effects, completions } = queueWith();
    await queue.request(sync("a", "c1"));
    await queue.request(sync("b", "c2"));
    expect(await queue.cancel({ connectionId: "c2", reason })).toEqual({ cancelled: ["b"], notCancellable: [] });
    expect(completions).toEqual([{ runId: "b", cancelled: reason }]);
    expect(queue.view().queue.map((r) => r.runId)).toEqual(["a"]);
    expect(await queue.request(sync("b2", "c2"))).toEqual({ runId: "b2", created: true });
    expect(effects).toEqual(["record a", "record b", "complete b", "record b2"]);
  });

  it("cancels the executing run through its scope; its completion carries the reason asked", async () => {
    const { queue } = queueWith();
    await queue.request(sync("a", "c1"));
    const a = queue.takeNext()!;
    let stopped = 0;
    queue.onCancel(() => stopped++);
    expect(await queue.cancel({ connectionId: "c1", runId: "a", reason })).toEqual({
      cancelled: ["a"],
      notCancellable: [],
    });
    expect(await queue.cancel({ connectionId: "c1", reason })).toEqual({ cancelled: ["a"], notCancellable: [] });
    expect(stopped).toBe(1); // asked once
    expect(queue.cancelReason("a")).toEqual(reason);
    const own = { code: "RunCancelled", message: "the run was cancelled" };
    expect(queue.release(a, { cancelled: own })).toEqual({ runId: "a", cancelled: reason });
    expect(queue.cancelReason("a")).toBeUndefined();
  });

  it("completes a run cancelled while it was being recorded as Cancelled, and never queues it", async () => {
    const { queue, held, effects } = queueWith();
    const recording = deferred();
    held.set("a", recording.promise);
    const first = queue.request(sync("a", "c1"));
    expect(await queue.cancel({ connectionId: "c1", reason })).toEqual({ cancelled: ["a"], notCancellable: [] });
    recording.resolve();
    expect(await first).toEqual({ runId: "a", created: true });
    expect(effects).toEqual(["record a", "complete a"]);
    expect(queue.hasWaiting()).toBe(false);
    expect(queue.activeRunFor(sync("b", "c1"))).toBeUndefined();
  });

  it("queues delete jobs behind an active sync, answers a twin delete with the same job, never cancels one", async () => {
    const { queue } = queueWith();
    await queue.request(sync("s", "c1"));
    expect(await queue.request(del("d1", "c1", ["f1", "f2"]))).toEqual({ runId: "d1", created: true });
    expect(await queue.request(del("d2", "c1", ["f2", "f1"]))).toEqual({ runId: "d1", created: false });
    expect(await queue.request(del("d3", "c1"))).toEqual({ runId: "d3", created: true });
    expect(await queue.request(del("d4", "c1"))).toEqual({ runId: "d3", created: false });
    // A sync asked while a delete job is active gets the newest active run.
    expect(await queue.request(sync("s2", "c1"))).toEqual({ runId: "d3", created: false });
    expect(await queue.cancel({ connectionId: "c1", runId: "d1", reason })).toEqual({
      cancelled: [],
      notCancellable: ["d1"],
    });
    expect(await queue.cancel({ connectionId: "c1", reason })).toEqual({ cancelled: ["s"], notCancellable: [] });
    expect(queue.view().queue.map((r) => r.runId)).toEqual(["d1", "d3"]);
    expect(queue.view().queue[0]).toEqual({
      runId: "d1",
      connectionId: "c1",
      trigger: "delete",
      kind: "delete",
      sourceFileIds: ["f1", "f2"],
    });
  });

  it("a delete job with cancelSyncs cancels the connection's sync before it is recorded", async () => {
    const { queue, effects, completions } = queueWith();
    await queue.request(sync("s", "c1"));
    expect(await queue.request(del("d", "c1", undefined, true))).toEqual({ runId: "d", created: true });
    expect(effects).toEqual(["record s", "complete s", "record d"]);
    expect(completions[0]).toEqual({
      runId: "s",
      cancelled: { code: "ConnectionDeleted", message: expect.any(String) },
    });
  });

  it("an error outcome wins over a cancellation", async () => {
    const { queue } = queueWith();
    await queue.request(sync("a", "c1"));
    const a = queue.takeNext()!;
    await queue.cancel({ connectionId: "c1", reason });
    const error = { code: "RunFailed", message: "boom" };
    expect(queue.release(a, { error })).toEqual({ runId: "a", error });
  });

  it("starts from a carried-over queue and carries its waiting runs over", async () => {
    const carried: QueuedRun[] = [
      { runId: "a", connectionId: "c1", trigger: "manual" },
      { runId: "d", connectionId: "c2", trigger: "delete", kind: "delete" },
    ];
    const { queue } = queueWith(carried);
    expect(await queue.request(sync("b", "c1"))).toEqual({ runId: "a", created: false });
    expect(await queue.request(del("d2", "c2"))).toEqual({ runId: "d", created: false });
    expect(queue.carryOver()).toEqual({ iModelId: "m1", queue: carried });
    queue.takeNext();
    expect(queue.carryOver().queue.map((r) => r.runId)).toEqual(["d"]);
  });

  it("validates requests and compares delete jobs' files", () => {
    expect(() => validateRunRequest(sync("a", "c1"))).not.toThrow();
    expect(() => validateRunRequest({ ...sync("a", "c1"), trigger: "hourly" as never })).toThrow(/unknown trigger/);
    expect(() => validateRunRequest({ ...sync("a", "c1"), kind: "purge" as never })).toThrow(/unknown kind/);
    expect(() => validateRunRequest({ ...del("a", "c1"), sourceFileIds: [] })).toThrow(/non-empty/);
    expect(() => validateRunRequest({ connectionId: "c1" } as never)).toThrow(/required/);
    expect(() => validateCancelRequest({ connectionId: "c1", reason })).not.toThrow();
    expect(() => validateCancelRequest({ connectionId: "c1" } as never)).toThrow(/required/);
    expect(sameFiles(undefined, undefined)).toBe(true);
    expect(sameFiles(["a"], undefined)).toBe(false);
    expect(sameFiles(["a", "b"], ["b", "a"])).toBe(true);
    expect(sameFiles(["a", "b"], ["a", "c"])).toBe(false);
  });
});
