/**
 * scripts/stack.sh, servers only: starts Temporal (dev server) and FerretDB on free ports with a temporary DATA_DIR,
 * checks that they answer, that `up` is idempotent, that a taken port gives one clear line and exit 1, that search
 * attributes survive a Temporal restart on the same database file, that `status` shows each process's own pid and its
 * supervisor's and tells a killed supervisor or a dead process, and that `down` leaves no process behind.
 * Independent of the stack test/global-setup.ts starts (other ports, other DATA_DIR).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Connection } from "@temporalio/client";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./ports";
import { stackScript } from "./stack-script";

// The first run on a fresh machine builds the servers from source (scripts/ensure-tools.sh), which takes minutes.
const FIRST_START_TIMEOUT = 15 * 60_000;

const stack = stackScript;

/** Alive = the process (or any member of its process group) still exists. */
function alive(pid: number): boolean {
  for (const target of [pid, -pid]) {
    try {
      process.kill(target, 0);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EPERM") return true;
    }
  }
  return false;
}

const readPid = (dataDir: string, name: string) =>
  Number(fs.readFileSync(path.join(dataDir, "run", `${name}.pid`), "utf8").trim());

/** The supervisor's state file of a process (scripts/supervise.sh): state, child, restarts, … */
const supervisorState = (dataDir: string, name: string): Record<string, string> =>
  Object.fromEntries(
    fs
      .readFileSync(path.join(dataDir, "run", `${name}.supervisor`), "utf8")
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );

/** The process itself runs: it exists and is no zombie (a process whose parent was killed may stay one). */
function runs(pid: number): boolean {
  try {
    return !/^Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "latin1").replace(/^.*\) /s, ""));
  } catch {
    if (fs.existsSync("/proc/self/stat")) return false;
    try {
      process.kill(pid, 0); // no /proc: a zombie counts
      return true;
    } catch {
      return false;
    }
  }
}

async function until(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function listSearchAttributes(address: string): Promise<Record<string, unknown>> {
  const connection = await Connection.connect({ address, connectTimeout: 5000 });
  try {
    await connection.workflowService.getSystemInfo({});
    const res = await connection.operatorService.listSearchAttributes({ namespace: "default" });
    return res.customAttributes ?? {};
  } finally {
    await connection.close();
  }
}

async function mongoPing(uri: string): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.connect();
    const pong = await client.db().command({ ping: 1 });
    expect(pong.ok).toBe(1);
    const coll = client.db().collection("stack_test");
    await coll.insertOne({ hello: "ferretdb" });
    expect(await coll.findOne({ hello: "ferretdb" })).toMatchObject({ hello: "ferretdb" });
  } finally {
    await client.close();
  }
}

describe("scripts/stack.sh (servers only)", () => {
  const tmpDirs: string[] = [];
  let dataDir = "";
  let env: Record<string, string> = {};
  let temporalAddress = "";
  let mongoUri = "";

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-stack-"));
    tmpDirs.push(dataDir);
    const [temporal, ui, ferret] = [await freePort(), await freePort(), await freePort()];
    env = {
      DATA_DIR: dataDir,
      TEMPORAL_PORT: String(temporal),
      TEMPORAL_UI_PORT: String(ui),
      FERRETDB_PORT: String(ferret),
      RESTART_LIMIT: "2",
    };
    temporalAddress = `127.0.0.1:${temporal}`;
    mongoUri = `mongodb://127.0.0.1:${ferret}/imodelsync`;
  });

  afterAll(async () => {
    if (dataDir) await stack(["down"], env);
    for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it(
    "starts Temporal and FerretDB and both answer",
    async () => {
      const up = await stack(["up", "servers"], env);
      expect(up.code, `stack.sh up servers failed:\n${up.stderr}`).toBe(0);
      expect(up.stdout).toContain(mongoUri);
      expect(up.stdout).toContain(`http://127.0.0.1:${env.TEMPORAL_UI_PORT}`);
      expect(fs.existsSync(path.join(dataDir, "temporal", "temporal.db"))).toBe(true);
      expect(fs.existsSync(path.join(dataDir, "logs", "temporal.log"))).toBe(true);
      expect(fs.existsSync(path.join(dataDir, "logs", "ferretdb.log"))).toBe(true);

      const attributes = await listSearchAttributes(temporalAddress);
      expect(Object.keys(attributes)).toEqual(expect.arrayContaining(["ConnectionId", "IModelId", "RunTrigger"]));
      await mongoPing(mongoUri);
    },
    FIRST_START_TIMEOUT,
  );

  it("is idempotent: `up` again reuses the running servers", async () => {
    const before = { temporal: readPid(dataDir, "temporal"), ferretdb: readPid(dataDir, "ferretdb") };
    const again = await stack(["up", "servers"], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("already running");
    expect({ temporal: readPid(dataDir, "temporal"), ferretdb: readPid(dataDir, "ferretdb") }).toEqual(before);
    expect(alive(before.temporal) && alive(before.ferretdb)).toBe(true);

    const status = await stack(["status"], env);
    expect(status.stdout).toMatch(/temporal\s+running/);
    expect(status.stdout).toMatch(/ferretdb\s+running/);

    const exported = await stack(["env"], env);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain(`export TEMPORAL_ADDRESS='${temporalAddress}'`);
    expect(exported.stdout).toContain(`export MONGODB_URI='${mongoUri}'`);
    expect(exported.stdout).toContain(`export DATA_DIR='${dataDir}'`);
  }, 120_000);

  it("keeps the search attributes when Temporal restarts on the same database file", async () => {
    const old = readPid(dataDir, "temporal");
    const restart = await stack(["restart", "temporal"], env);
    expect(restart.code, restart.stderr).toBe(0);
    expect(readPid(dataDir, "temporal")).not.toBe(old);
    expect(alive(old)).toBe(false);
    const attributes = await listSearchAttributes(temporalAddress);
    expect(Object.keys(attributes)).toEqual(expect.arrayContaining(["ConnectionId", "IModelId", "RunTrigger"]));
  }, 120_000);

  it("restarts a server that dies, logs each restart, and gives up after RESTART_LIMIT restarts", async () => {
    const supervisor = () =>
      Object.fromEntries(
        fs
          .readFileSync(path.join(dataDir, "run", "ferretdb.supervisor"), "utf8")
          .trim()
          .split("\n")
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
    const leader = readPid(dataDir, "ferretdb");
    const waitFor = async (what: string, ok: () => boolean) => {
      const deadline = Date.now() + 30_000;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(supervisor())}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    for (let n = 1; n <= 2; n++) {
      const child = Number(supervisor().child);
      process.kill(child, "SIGKILL");
      await waitFor(`restart ${n}`, () => supervisor().restarts === String(n) && supervisor().state === "running");
      expect(Number(supervisor().child)).not.toBe(child);
      await mongoPing(mongoUri);
    }
    const log = fs.readFileSync(path.join(dataDir, "logs", "ferretdb.log"), "utf8");
    expect(log).toMatch(
      /supervisor: ferretdb ended \(signal KILL after \d+ s\); restart 1 \(1 of at most 2 within 600 s\) in 1 s/,
    );
    expect(log).toMatch(/restart 2 \(2 of at most 2 within 600 s\) in 2 s/);
    const running = await stack(["status"], env);
    // the process's own pid, and its supervisor's (the pidfile's) in its own column
    expect(running.stdout).toMatch(
      new RegExp(
        `ferretdb\\s+running \\(pid ${supervisor().child}\\)\\s+pid ${leader}\\s+\\S+\\s+ok; 2 restart\\(s\\), last: signal KILL`,
      ),
    );

    // A third death within the window: the supervisor gives up and says so.
    process.kill(Number(supervisor().child), "SIGKILL");
    await waitFor("the supervisor to give up", () => supervisor().state === "gave-up");
    await waitFor("the supervisor to exit", () => !alive(leader));
    expect(fs.readFileSync(path.join(dataDir, "logs", "ferretdb.log"), "utf8")).toContain(
      "gave up after 2 restarts within 600 s",
    );
    const status = await stack(["status"], env);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/ferretdb\s+gave up\s+.*2 restart\(s\), the last 2 within 600 s; last: signal KILL/);

    // `up` starts it again.
    const up = await stack(["up", "servers"], env);
    expect(up.code, up.stderr).toBe(0);
    await mongoPing(mongoUri);
  }, 120_000);

  it("status tells a killed supervisor and then a dead process; restart and up supervise the process again", async () => {
    const leader = readPid(dataDir, "ferretdb");
    const child = Number(supervisorState(dataDir, "ferretdb").child);
    expect((await stack(["status"], env)).stdout).toMatch(
      new RegExp(`ferretdb\\s+running \\(pid ${child}\\)\\s+pid ${leader}\\s+\\S+\\s+ok\n`),
    );

    // The supervisor killed on its own: its process runs on in the process group, with nothing to restart it.
    process.kill(leader, "SIGKILL");
    await until("the supervisor to die", () => !runs(leader));
    const orphaned = await stack(["status"], env);
    expect(orphaned.code).toBe(1); // worker and api are not started here
    expect(orphaned.stdout).toMatch(
      new RegExp(
        `ferretdb\\s+running \\(pid ${child}\\)\\s+dead \\(pid ${leader}\\)\\s+\\S+\\s+ok; no supervisor: not restarted if it dies \\('scripts/stack.sh restart ferretdb'`,
      ),
    );
    // `restart` stops that process at once (TERM to the group: no supervisor passes it on) and supervises a new one.
    const started = Date.now();
    const restart = await stack(["restart", "ferretdb"], { ...env, STOP_TIMEOUT: "10" });
    expect(restart.code, restart.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(runs(child)).toBe(false);
    await mongoPing(mongoUri);
    const leader2 = readPid(dataDir, "ferretdb");
    const child2 = Number(supervisorState(dataDir, "ferretdb").child);
    expect((await stack(["status"], env)).stdout).toMatch(
      new RegExp(`ferretdb\\s+running \\(pid ${child2}\\)\\s+pid ${leader2}\\s`),
    );

    // Supervisor and process both killed: `dead`, not `running` with a pid that is gone.
    process.kill(leader2, "SIGKILL");
    await until("the supervisor to die", () => !runs(leader2));
    process.kill(child2, "SIGKILL");
    await until("the process to die", () => !runs(child2));
    const dead = await stack(["status"], env);
    expect(dead.stdout).toMatch(
      new RegExp(
        `ferretdb\\s+dead\\s+dead \\(pid ${leader2}\\)\\s+\\S+\\s+the process \\(pid ${child2}\\) is gone, and so is its supervisor; 'scripts/stack.sh up' starts it again`,
      ),
    );
    expect(dead.stdout).not.toMatch(/ferretdb\s+running/);
    const up = await stack(["up", "servers"], env);
    expect(up.code, up.stderr).toBe(0);
    await mongoPing(mongoUri);
    expect(readPid(dataDir, "ferretdb")).not.toBe(leader2);
  }, 120_000);

  it("refuses a taken port with one clear line and exit 1", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", () => resolve()));
    const taken = (blocker.address() as net.AddressInfo).port;
    const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-stack-busy-"));
    tmpDirs.push(otherDir);
    try {
      const res = await stack(["up", "servers"], {
        DATA_DIR: otherDir,
        TEMPORAL_PORT: String(taken),
        TEMPORAL_UI_PORT: String(await freePort()),
        FERRETDB_PORT: String(await freePort()),
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(
        `error: port ${taken} (Temporal) is already in use; set TEMPORAL_PORT or stop the other process`,
      );
      // nothing was started for that DATA_DIR
      const run = path.join(otherDir, "run");
      const pidfiles = fs.existsSync(run) ? fs.readdirSync(run).filter((f) => f.endsWith(".pid")) : [];
      expect(pidfiles).toEqual([]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 120_000);

  it("`down` stops every process it started, and no supervisor starts one again", async () => {
    const pids = [readPid(dataDir, "temporal"), readPid(dataDir, "ferretdb")];
    const down = await stack(["down"], env);
    expect(down.code, down.stderr).toBe(0);
    for (const pid of pids) expect(alive(pid), `pid ${pid} after down`).toBe(false);
    expect(fs.existsSync(path.join(dataDir, "run", "temporal.pid"))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, "run", "ferretdb.pid"))).toBe(false);
    const status = await stack(["status"], env);
    expect(status.code).toBe(3);
    // Nothing came back after the stop (a respawn would show in the logs and answer on the ports).
    await new Promise((r) => setTimeout(r, 3000));
    for (const pid of pids) expect(alive(pid), `pid ${pid} 3 s after down`).toBe(false);
    for (const name of ["temporal", "ferretdb"])
      expect(fs.readFileSync(path.join(dataDir, "logs", `${name}.log`), "utf8")).not.toMatch(/supervisor: .* restart/);
  }, 120_000);
});
