/**
 * A full disk (issue: the log stream's ENOSPC ended both processes; writes answered 500; /health said ok; a run sat in
 * Executing without a reason). A stack of its own (API, worker and FerretDB under the launcher and its supervisor,
 * Temporal shared with the test stack, its own task queue) with DATA_DIR on a small tmpfs and `DATA_DIR/imodels` on a
 * second one, both mounted by the test (root only), filled up on purpose and then freed:
 * - DATA_DIR full (logs and database): no process ends or restarts, writes answer 503 InsufficientStorage, /health is
 *   degraded with the figures; once freed, writes work again and each log says how many lines it dropped;
 * - the iModels' disk full: the file task shows WaitingToRetry with the reason, and the run completes once freed.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, ROOT, stack } from "./helpers";
import { freePort } from "./ports";

const STACK = path.join(ROOT, "scripts", "stack.sh");
const STRUCTURAL = "ifc2x3_structural_revit_example_rev1.ifc";
const HVAC = "ifc4_hvac_air_terminal_duct.ifc";

/** Whether this process may mount a tmpfs (root on Linux); the reason when not. */
function mountProblem(): string | undefined {
  if (process.platform !== "linux") return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return "not running as root";
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { stdio: "pipe" });
    execFileSync("umount", [probe], { stdio: "pipe" });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs (${(err as Error).message.split("\n")[0]})`;
  } finally {
    fs.rmdirSync(probe);
  }
}
const problem = mountProblem();
if (problem)
  console.warn(`test/disk-full.test.ts skipped: it mounts small tmpfs filesystems and needs root on Linux: ${problem}`);

function launcher(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const base = { ...process.env };
  for (const k of ["TEMPORAL_ADDRESS", "MONGODB_URI", "DATA_DIR", "API_PORT", "FERRETDB_PORT", "TEMPORAL_PORT"])
    delete base[k];
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [STACK, ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: "pipe" });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

/** Fills the filesystem of `dir` to the last byte with one file; returns its path. */
function fill(dir: string): string {
  const file = path.join(dir, `filler-${randomBytes(4).toString("hex")}`);
  const fd = fs.openSync(file, "w");
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x61);
      try {
        for (;;) fs.writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

describe.skipIf(problem !== undefined)("a full disk", () => {
  let dataDir = "";
  let imodelsDir = "";
  const mounted: string[] = [];
  let env: Record<string, string> = {};
  let api = "";
  let key = "";

  const call = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(`${api}${url}`, {
      method,
      redirect: "manual",
      headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, location: res.headers.get("location"), body: text ? JSON.parse(text) : undefined };
  };
  const supervisor = (name: string) =>
    Object.fromEntries(
      fs
        .readFileSync(path.join(dataDir, "run", `${name}.supervisor`), "utf8")
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  const log = (name: string) => fs.readFileSync(path.join(dataDir, "logs", `${name}.log`), "utf8");

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-disk-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", dataDir]);
    mounted.unshift(dataDir);
    imodelsDir = path.join(dataDir, "imodels");
    fs.mkdirSync(imodelsDir);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=12m,mode=0700", "tmpfs", imodelsDir]);
    mounted.unshift(imodelsDir);
    const apiPort = await freePort(3);
    key = `isk_disk_${randomBytes(24).toString("base64url")}`;
    env = {
      DATA_DIR: dataDir,
      TEMPORAL_ADDRESS: stack().temporalAddress,
      FERRETDB_PORT: String(await freePort()),
      API_PORT: String(apiPort),
      TEMPORAL_TASK_QUEUE: `disk-full-${process.pid}`,
      ADMIN_API_KEY: key,
      DISK_FREE_MIN_MB: "4",
      LOG_LEVEL: "info",
    };
    api = `http://127.0.0.1:${apiPort}`;
    const up = await launcher(["up"], env);
    expect(up.code, up.output).toBe(0);
  }, 300_000);

  afterAll(async () => {
    if (dataDir) await launcher(["down"], env);
    for (const m of mounted) execFileSync("umount", [m]);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it("DATA_DIR full: nothing ends, writes answer 503 InsufficientStorage, /health is degraded; all works once freed", async () => {
    const iModel = await call("POST", "/imodels", { name: "before the disk fills" });
    expect(iModel.status).toBe(201);
    const pids = { api: supervisor("api").child, worker: supervisor("worker").child };

    const filler = fill(dataDir);
    try {
      for (let i = 0; i < 3; i++) {
        const user = await call("POST", "/users", { email: `full-${i}@tests.example`, name: "Full" });
        expect(user.status, JSON.stringify(user.body)).toBe(503);
        expect(user.body.error.code).toBe("InsufficientStorage");
        const m = await call("POST", "/imodels", { name: "while full" });
        expect(m.status, JSON.stringify(m.body)).toBe(503);
        expect(m.body.error.code).toBe("InsufficientStorage");
      }
      const health = await call("GET", "/health");
      expect(health.status).toBe(200);
      expect(health.body.status).toBe("degraded");
      expect(health.body.checks.disk).toContain("below DISK_FREE_MIN_MB 4");
      const data = health.body.disk.filesystems.find((f: any) => f.path === dataDir);
      expect(data).toMatchObject({ totalMb: 48, low: true });
      expect(data.freeMb).toBeLessThan(1);
      expect(health.body.disk.minFreeMb).toBe(4);
      // Both processes are the ones from before: alive, never restarted.
      await new Promise((r) => setTimeout(r, 2000));
      for (const name of ["api", "worker"] as const) {
        expect(supervisor(name).child, `${name} pid`).toBe(pids[name]);
        expect(supervisor(name).restarts, `${name} restarts`).toBe("0");
        expect(() => process.kill(Number(pids[name]), 0)).not.toThrow();
      }
    } finally {
      fs.rmSync(filler);
    }

    const user = await call("POST", "/users", { email: "after@tests.example", name: "After" });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    const health = await call("GET", "/health");
    expect(health.body.status).toBe("ok");
    // The API's log says how many lines it could not write, once it can write again.
    const notice = await eventually(
      "the API's dropped-lines notice",
      async () =>
        log("api")
          .split("\n")
          .filter((l) => l.includes('"droppedLogLines"'))
          .map((l) => JSON.parse(l))[0],
      20_000,
      250,
    );
    expect(notice.droppedLogLines).toBeGreaterThan(0);
    expect(notice.error).toBe("ENOSPC");
    expect(supervisor("api").child).toBe(pids.api);
  }, 180_000);

  it("the iModels' disk full: the file task shows WaitingToRetry with the reason and resumes when space returns", async () => {
    const iModel = await call("POST", "/imodels", { name: "iModel on a small disk" });
    const c = await call("POST", "/connections", {
      iModelId: iModel.body.iModel.id,
      displayName: "fills the disk",
      source: { type: "local", path: path.join(ROOT, "samples", "ifc") },
      sourceFiles: [{ path: HVAC, connectorType: "IFC" }],
    });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const runOf = async (location: string) => (await call("GET", location)).body.run;
    const first = await call("POST", `/connections/${c.body.connection.id}/run`);
    await eventually("the first run", async () => (await runOf(first.location!)).state === "Completed", 120_000);
    const add = await call("POST", `/connections/${c.body.connection.id}/sourceFiles`, {
      sourceFiles: [{ path: STRUCTURAL, connectorType: "IFC" }],
    });
    expect(add.status, JSON.stringify(add.body)).toBe(200);

    const filler = fill(imodelsDir);
    let waiting: any;
    let location = "";
    try {
      const r = await call("POST", `/connections/${c.body.connection.id}/run`);
      expect(r.status).toBe(202);
      location = r.location!;
      waiting = await eventually(
        "a task waiting for space",
        async () =>
          (await runOf(location)).jobs.flatMap((j: any) => j.tasks).find((t: any) => t.state === "WaitingToRetry"),
        120_000,
        250,
      );
      const health = await call("GET", "/health");
      expect(health.body.status).toBe("degraded");
      expect(health.body.disk.filesystems.find((f: any) => f.path === imodelsDir)).toMatchObject({ low: true });
      expect((await runOf(location)).state).toBe("Executing");
    } finally {
      fs.rmSync(filler);
    }
    expect(waiting.path).toBe(STRUCTURAL);
    expect(waiting.reason).toMatchObject({ code: "InsufficientStorage", target: STRUCTURAL });
    expect(waiting.reason.message).toMatch(/no space left to write the iModel/);

    const run = await eventually(
      "the run to complete once space returned",
      async () => {
        const r = await runOf(location);
        return r.state === "Completed" ? r : undefined;
      },
      120_000,
      500,
    );
    expect(run.result).toBe("Success");
    const task = run.jobs[0].tasks.find((t: any) => t.path === STRUCTURAL);
    expect(task).toMatchObject({ state: "Completed", result: "Success", elements: { inserted: 120 } });
    expect(task.reason).toBeUndefined();
    expect(task.attempts).toBeGreaterThanOrEqual(2);
    expect(supervisor("worker").restarts).toBe("0");
    expect(log("worker")).toContain("task waits for disk space");
  }, 240_000);
});
