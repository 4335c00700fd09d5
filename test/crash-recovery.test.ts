/**
 * Crashes on the real stack: the launcher's supervisor restarts a worker killed with SIGKILL and the run it was
 * executing completes once the file activity's heartbeat timeout (30 s) lets Temporal retry the file; a delete job's
 * task killed between the removal's commit and its record still reports the count it removed; a file attempt that
 * fails for a fault of the service (its iModel locked by another process) shows why while it waits to retry.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { OpenMode } from "@itwin/core-bentley";
import { StandaloneDb } from "@itwin/core-backend";
import { afterAll, describe, expect, it } from "vitest";
import { startIModelHost } from "../activities/imodel/writer";
import {
  createConnection,
  eventually,
  http,
  makeSource,
  ROOT,
  SAMPLE,
  stack,
  tasksOf,
  waitForRun,
  waitForRunState,
} from "./helpers";

const STRUCTURAL = SAMPLE("ifc2x3_structural_revit_example_rev1.ifc");
/** Elements the structural sample gives (test/sync.test.ts). */
const STRUCTURAL_ELEMENTS = 120; // 116 physical elements, the site, the building and 2 storeys

/** The worker's supervisor state (scripts/supervise.sh): its process's pid and how often it was restarted. */
function supervisor(name: "worker" | "api"): { child: number; restarts: number; state: string } {
  const text = fs.readFileSync(path.join(stack().dataDir, "run", `${name}.supervisor`), "utf8");
  const field = (f: string) =>
    text
      .split("\n")
      .find((l) => l.startsWith(`${f}=`))
      ?.slice(f.length + 1) ?? "";
  return { child: Number(field("child")), restarts: Number(field("restarts")), state: field("state") };
}

/** Restarts the test stack's worker through the launcher with `extra` in its environment. */
async function restartWorker(extra: Record<string, string> = {}): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...stack().env, ...extra };
  if (!extra.IMODEL_SYNC_TEST_CRASH) {
    delete env.IMODEL_SYNC_TEST_CRASH;
    delete env.IMODEL_SYNC_TEST_CRASH_MARKER;
  }
  await promisify(execFile)("bash", [path.join(ROOT, "scripts/stack.sh"), "restart", "worker"], { cwd: ROOT, env });
}

/** The worker's log since the last start by the launcher. */
const workerLog = () => fs.readFileSync(path.join(stack().dataDir, "logs", "worker.log"), "utf8");

describe("a worker killed with SIGKILL", () => {
  it("is restarted by the supervisor and the run it was executing completes within bounded time", async () => {
    const names = Array.from({ length: 10 }, (_, i) => `k${i}.ifc`);
    const source = makeSource("killed-worker", Object.fromEntries(names.map((n) => [n, STRUCTURAL])));
    const { connection } = await createConnection(source, names, "killed worker");
    const r = await http("POST", `/connections/${connection.id}/run`);
    expect(r.status).toBe(202);
    // Mid-run: a file finished and the next one is being synchronized.
    const seen = await waitForRunState(
      r.location!,
      (run) =>
        tasksOf(run).some((t: any) => t.state === "Completed") &&
        tasksOf(run).some((t: any) => t.state === "Executing"),
      120_000,
      20,
    );
    expect(seen.state).not.toBe("Completed");
    const before = supervisor("worker");
    process.kill(before.child, "SIGKILL");
    const killedAt = Date.now();

    // The supervisor starts it again (backoff 1 s) and logs the restart.
    const after = await eventually(
      "the supervisor to restart the worker",
      async () => {
        const s = supervisor("worker");
        return s.child !== before.child && s.state === "running" ? s : undefined;
      },
      30_000,
      100,
    );
    expect(after.restarts).toBe(before.restarts + 1);
    expect(workerLog()).toMatch(/supervisor: worker ended \(signal KILL after \d+ s\); restart \d+/);

    const { run } = await waitForRun(r.location!, 180_000);
    const resumedInMs = Date.now() - killedAt;
    console.log(`killed worker: run completed ${(resumedInMs / 1000).toFixed(1)} s after the kill`);
    expect(run.result).toBe("Success");
    const tasks = tasksOf(run);
    expect(tasks.map((t: any) => t.result)).toEqual(names.map(() => "Success"));
    // Every file once: the file being written at the kill was retried (another attempt), never duplicated.
    for (const t of tasks) expect(t.elements.inserted + t.elements.unchanged).toBe(STRUCTURAL_ELEMENTS);
    expect(tasks.some((t: any) => t.attempts >= 2)).toBe(true);
    // Restart (seconds) + heartbeat timeout (30 s) + retry backoff + the remaining files; 3 minutes before.
    expect(resumedInMs).toBeLessThan(120_000);
  }, 300_000);
});

describe("a delete job whose worker dies between the removal's commit and the task's record", () => {
  const marker = () => path.join(stack().dataDir, "run", `crash-after-removal-${process.pid}`);
  afterAll(async () => {
    await restartWorker(); // without the crash point
  }, 120_000);

  it("reports the count the removal recorded, not 0", async () => {
    const source = makeSource("crash-delete", { "s.ifc": STRUCTURAL });
    const { connection } = await createConnection(source, ["s.ifc"], "crash during delete");
    const sync = await http("POST", `/connections/${connection.id}/run`);
    expect((await waitForRun(sync.location!)).run.result).toBe("Success");

    await restartWorker({
      IMODEL_SYNC_TEST_CRASH: "delete:after-removal-commit",
      IMODEL_SYNC_TEST_CRASH_MARKER: marker(),
    });
    const before = supervisor("worker");
    const del = await http("DELETE", `/connections/${connection.id}?mode=deleteData`);
    expect(del.status).toBe(202);
    const { run } = await waitForRun(del.location!, 240_000);
    // The worker did die there (the marker is written just before SIGKILL) and its supervisor restarted it.
    expect(fs.existsSync(marker())).toBe(true);
    expect(supervisor("worker").restarts).toBe(before.restarts + 1);
    expect(run.result).toBe("Success");
    const [task] = tasksOf(run);
    expect(task.attempts).toBeGreaterThanOrEqual(2);
    expect(task.elements.deleted).toBe(STRUCTURAL_ELEMENTS);
    expect(task.reason).toBeUndefined();
  }, 300_000);
});

describe("a file attempt that fails for a fault of the service", () => {
  it("shows WaitingToRetry with reason AttemptFailed between attempts, then completes Success without it", async () => {
    const source = makeSource("attempt-failed", { "s.ifc": STRUCTURAL });
    const { iModelId, connection } = await createConnection(source, ["s.ifc"], "attempt failed");
    expect((await waitForRun((await http("POST", `/connections/${connection.id}/run`)).location!)).run.result).toBe(
      "Success",
    );
    const bim = (await http("GET", `/imodels/${iModelId}`)).body.iModel.location.path;
    // The worker keeps the iModel open 2 s after a write (docs/architecture.md "Open iModels between writes"); once it
    // closed it, this process opens it read-write, which locks it: the worker's next write fails BE_SQLITE_BUSY.
    await startIModelHost(path.join(stack().dataDir, "test-cache"), { profileName: `test-${process.pid}` });
    const db = await eventually("the worker closed the iModel", async () => {
      try {
        return StandaloneDb.openFile(bim, OpenMode.ReadWrite);
      } catch {
        return undefined;
      }
    });
    let released = false;
    try {
      fs.appendFileSync(path.join(source, "s.ifc"), "\n"); // a new content hash: the file is written again
      const start = await http("POST", `/connections/${connection.id}/run`);
      expect(start.status).toBe(202);
      const waiting = await eventually(
        "the task waits to retry",
        async () => {
          const { body } = await http("GET", start.location!);
          const [task] = tasksOf(body.run);
          return task?.state === "WaitingToRetry" ? task : undefined;
        },
        90_000,
        250,
      );
      expect(waiting.reason.code).toBe("AttemptFailed");
      expect(waiting.reason.message).toMatch(/^attempt 1 failed \(.+\); retried after a backoff$/);
      expect(waiting.reason.target).toBe("s.ifc");
      db.close();
      released = true;
      const { run } = await waitForRun(start.location!, 180_000);
      expect(run.result).toBe("Success");
      const [task] = tasksOf(run);
      expect(task.attempts).toBeGreaterThanOrEqual(2);
      expect(task.reason).toBeUndefined();
      expect(task.elements.unchanged).toBe(STRUCTURAL_ELEMENTS);
    } finally {
      if (!released) db.close();
    }
  }, 300_000);
});
