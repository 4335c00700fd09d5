/**
 * Several worker and API processes (scripts/stack.sh `WORKERS=2 APIS=2`) on a stack of this file's own (its own
 * DATA_DIR and free ports, not the stack of test/global-setup.ts), started once for the file and stopped after it.
 * The rules that rest on the lease locks of lib/locks.ts hold when racing requests go to the two API processes
 * alternately: the races of test/concurrency.test.ts (a file mapped once, 100 connections and 250 composite models
 * per iModel, concurrent run requests) and concurrent changes of different fields of one connection. And one of the
 * two workers killed for good in the middle of four iModels' runs: its runs are handed over to the other
 * (docs/architecture.md "Several workers"), every run completes and every element is written exactly once.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LIMITS } from "../domain/limits";
import { ecsql, eventually, httpAs, makeSource, SAMPLE, waitForRun, type HttpResult } from "./helpers";
import { freePort } from "./ports";
import { stackScript } from "./stack-script";

// The first run on a fresh machine builds the servers from source (scripts/ensure-tools.sh), which takes minutes.
const START_TIMEOUT = 15 * 60_000;
const SMALL = SAMPLE("ifc4x3_georef_mapconversion_utm.ifc"); // 3.5 KB

/** The stack of this file, as its tests reach it. */
interface ScaleStack {
  /** The API processes: api, api-2 (`API_PORT`, `API_PORT`+10). */
  apiUrls: string[];
  /** The admin's API key. */
  adminApiKey: string;
  dataDir: string;
  /** A source root of the stack (`$DATA_DIR/sources`, in SOURCE_ROOTS). */
  sourcesDir: string;
  /** The settings stack.sh was started with (for `status`, `restart <name>`, `down`). */
  env: Record<string, string>;
}

let started: ScaleStack | undefined;

/** The stack of this file; only inside tests and hooks after the file's beforeAll. */
function scaleStack(): ScaleStack {
  if (!started) throw new Error("the scale-out stack is started in beforeAll; use scaleStack() inside tests");
  return started;
}

beforeAll(async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-scale-"));
  // api, worker metrics, SDK metrics (+0, +1, +2) for instance 1 and the same + 10 for instance 2.
  const apiPort = await freePort(13);
  const [temporal, ui, ferret] = [await freePort(), await freePort(), await freePort()];
  const adminApiKey = `isk_scale_${randomBytes(24).toString("base64url")}`;
  const env = {
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(temporal),
    TEMPORAL_UI_PORT: String(ui),
    FERRETDB_PORT: String(ferret),
    API_PORT: String(apiPort),
    ADMIN_API_KEY: adminApiKey,
    LOG_LEVEL: "info", // the kill test reads which worker planned which run ("run started")
    WORKERS: "2",
    APIS: "2",
  };
  const stack: ScaleStack = {
    apiUrls: [`http://127.0.0.1:${apiPort}`, `http://127.0.0.1:${apiPort + 10}`],
    adminApiKey,
    dataDir,
    sourcesDir: path.join(dataDir, "sources"),
    env,
  };
  started = stack; // afterAll stops whatever did start
  const up = await stackScript(["up"], env);
  if (up.code !== 0) throw new Error(`stack.sh up (WORKERS=2 APIS=2) failed:\n${up.stderr}`);
  fs.mkdirSync(stack.sourcesDir, { recursive: true });
}, START_TIMEOUT);

afterAll(async () => {
  if (!started) return;
  const down = await stackScript(["down"], started.env);
  if (!process.env.KEEP_TEST_DATA) fs.rmSync(started.dataDir, { recursive: true, force: true });
  if (down.code !== 0) throw new Error(`stack.sh down failed:\n${down.stderr}`);
}, 120_000);

/** Calls the API process `i % 2` (requests numbered 0, 1, 2, … alternate between the two) as the admin. */
const callApi = (i: number, method: string, urlPath: string, body?: unknown): Promise<HttpResult> => {
  const s = scaleStack();
  return httpAs(s.adminApiKey, method, urlPath, body, undefined, s.apiUrls[i % s.apiUrls.length]);
};
const via = () => ({ apiKey: scaleStack().adminApiKey, baseUrl: scaleStack().apiUrls[1] });

/** Answers counted by status and error code, e.g. `{ "201": 1, "409 SourceFileAlreadyMapped": 19 }`. */
const tally = (results: HttpResult[]) => {
  const t: Record<string, number> = {};
  for (const r of results) {
    const k = r.status === 201 ? "201" : `${r.status} ${r.body?.error?.code}`;
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
};

describe("stack.sh with WORKERS=2 APIS=2", () => {
  it("runs two workers and two APIs: status lists each with its own pid, env lists every URL", async () => {
    const s = scaleStack();
    const status = await stackScript(["status"], s.env);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    const pids: Record<string, string> = {};
    for (const name of ["worker", "worker-2", "api", "api-2"]) {
      const row = new RegExp(`^${name}\\s+running \\(pid (\\d+)\\)\\s+pid \\d+\\s+(\\S+)`, "m").exec(status.stdout);
      expect(row, `${name} in:\n${status.stdout}`).not.toBeNull();
      pids[name] = row![1];
    }
    expect(new Set(Object.values(pids)).size).toBe(4);
    expect(status.stdout).toMatch(new RegExp(`^api-2\\s+running .*${s.apiUrls[1]}\\s+ok$`, "m"));
    expect(status.stdout).toMatch(/^worker-2\s+running .*\spolling$/m);
    for (const name of ["worker-2", "api-2"]) {
      expect(fs.existsSync(path.join(s.dataDir, "run", `${name}.pid`)), `${name}.pid`).toBe(true);
      expect(fs.existsSync(path.join(s.dataDir, "logs", `${name}.log`)), `${name}.log`).toBe(true);
    }
    // Each worker knows its instance.
    for (const [name, instance] of [
      ["worker", "1"],
      ["worker-2", "2"],
    ]) {
      const environ = fs.readFileSync(`/proc/${pids[name]}/environ`, "latin1").split("\0");
      expect(environ, name).toContain(`WORKER_INSTANCE=${instance}`);
    }

    const env = await stackScript(["env"], s.env);
    expect(env.code).toBe(0);
    expect(env.stdout).toContain(`export API_URL='${s.apiUrls[0]}'`);
    expect(env.stdout).toContain(`export API_URLS='${s.apiUrls.join(" ")}'`);
    const port = Number(s.env.API_PORT);
    expect(env.stdout).toContain(
      `export WORKER_METRICS_URLS='http://127.0.0.1:${port + 1}/metrics http://127.0.0.1:${port + 11}/metrics'`,
    );
    for (const url of s.apiUrls) expect((await fetch(`${url}/health`)).status, url).toBe(200);
    for (const p of [port + 1, port + 11]) {
      const metrics = await fetch(`http://127.0.0.1:${p}/metrics`);
      expect(metrics.status, `worker metrics on ${p}`).toBe(200);
    }
  });
});

describe("lease-locked rules with requests alternating between two API processes", () => {
  const newIModel = async (name: string): Promise<string> => {
    const res = await callApi(0, "POST", "/imodels", { name });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.iModel.id as string;
  };
  const create = (i: number, iModelId: string, source: string, files: string[], displayName: string) =>
    callApi(i, "POST", "/connections", {
      iModelId,
      displayName,
      source: { type: "local", path: source },
      sourceFiles: files.map((p) => ({ path: p, connectorType: "IFC" })),
    });
  const connectionsOf = async (iModelId: string): Promise<any[]> => {
    const res = await callApi(1, "GET", `/connections?iModelId=${iModelId}&$top=1000`);
    expect(res.status).toBe(200);
    return res.body.connections;
  };

  it("maps a file once when 20 requests race for it", async () => {
    const iModelId = await newIModel("scale race one file");
    const source = makeSource("scale-race-file", { "a.ifc": SMALL }, scaleStack().sourcesDir);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => create(i, iModelId, source, ["a.ifc"], `racer ${i}`)),
    );
    expect(tally(results)).toEqual({ "201": 1, "409 SourceFileAlreadyMapped": 19 });
    expect(await connectionsOf(iModelId)).toHaveLength(1);
  });

  it("keeps the 250 composite models limit under concurrent creates", async () => {
    const iModelId = await newIModel("scale race composites");
    const files: Record<string, string> = {};
    for (let i = 0; i < 260; i++) files[`m${String(i).padStart(3, "0")}.ifc`] = SMALL;
    const source = makeSource("scale-race-composites", files, scaleStack().sourcesDir);
    const names = Object.keys(files);
    // 26 connections of 10 files each: 260 composite models asked, 250 allowed.
    const results = await Promise.all(
      Array.from({ length: 26 }, (_, i) => create(i, iModelId, source, names.slice(i * 10, i * 10 + 10), `batch ${i}`)),
    );
    expect(tally(results)).toEqual({ "201": 25, "409 MaxCompositeModelsPerIModelReached": 1 });
    const composites = (await connectionsOf(iModelId)).reduce((n, c) => n + c.sourceFiles.length, 0);
    expect(composites).toBe(LIMITS.compositeModelsPerIModel);
  });

  it("keeps the 100 connections limit under concurrent creates", async () => {
    const iModelId = await newIModel("scale race connections");
    const files: Record<string, string> = {};
    for (let i = 0; i < 105; i++) files[`c${String(i).padStart(3, "0")}.ifc`] = SMALL;
    const source = makeSource("scale-race-connections", files, scaleStack().sourcesDir);
    const names = Object.keys(files);
    // 90 connections in concurrent waves of 10, then 15 concurrent requests race for the last 10 places.
    for (let wave = 0; wave < 9; wave++) {
      const results = await Promise.all(
        names.slice(wave * 10, wave * 10 + 10).map((f, i) => create(i, iModelId, source, [f], `connection ${f}`)),
      );
      expect(tally(results)).toEqual({ "201": 10 });
    }
    const race = await Promise.all(names.slice(90).map((f, i) => create(i, iModelId, source, [f], `connection ${f}`)));
    expect(tally(race)).toEqual({ "201": 10, "409 MaxConnectionsPerIModelReached": 5 });
    expect(await connectionsOf(iModelId)).toHaveLength(LIMITS.connectionsPerIModel);
  });

  it("answers 20 concurrent POST …/run with one active run at a time, each answer the run itself", async () => {
    const source = makeSource("scale-race-run", { "a.ifc": SMALL, "b.ifc": SMALL }, scaleStack().sourcesDir);
    const iModelId = await newIModel("scale race run");
    const connections: any[] = [];
    for (const f of ["a.ifc", "b.ifc"]) {
      const c = await create(0, iModelId, source, [f], `run race ${f}`);
      expect(c.status, JSON.stringify(c.body)).toBe(201);
      connections.push(c.body.connection);
    }
    const runsPerRound: number[] = [];
    for (const connection of [...connections, ...connections]) {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => callApi(i, "POST", `/connections/${connection.id}/run`)),
      );
      const runIds = new Set<string>();
      for (const r of results) {
        expect([202, 303], JSON.stringify(r.body)).toContain(r.status);
        expect(typeof r.body?.run?.id, JSON.stringify(r.body)).toBe("string");
        expect(r.location).toBe(`/connections/${connection.id}/runs/${r.body.run.id}`);
        expect(r.body.run).toMatchObject({ connectionId: connection.id, trigger: "manual" });
        runIds.add(r.body.run.id);
      }
      // Each run created by the race is answered 202 once; the other answers name an existing run (303).
      expect(results.filter((r) => r.status === 202)).toHaveLength(runIds.size);
      runsPerRound.push(runIds.size);
      for (const id of runIds) await waitForRun(`/connections/${connection.id}/runs/${id}`, 150_000, via());
    }
    // Never two active runs of one connection: their lifetimes (queued → ended) do not overlap.
    for (const connection of connections) {
      const runs = (await callApi(1, "GET", `/connections/${connection.id}/runs`)).body.runs
        .filter((r: any) => r.kind === "sync")
        .map((r: any) => ({ id: r.id, from: Date.parse(r.queuedDateTime), to: Date.parse(r.endDateTime) }))
        .sort((a: any, b: any) => a.from - b.from);
      expect(runs.length).toBeGreaterThanOrEqual(2);
      for (let i = 1; i < runs.length; i++)
        expect(
          runs[i].from,
          `runs per round ${runsPerRound}: run ${runs[i].id} queued before ${runs[i - 1].id} ended`,
        ).toBeGreaterThanOrEqual(runs[i - 1].to);
    }
    // Fewer runs than requests: the answers name the active run instead of starting one each.
    for (const n of runsPerRound) expect(n, `runs per round ${runsPerRound}`).toBeLessThan(20);
  });

  it("keeps every field of concurrent PATCHes of one connection", async () => {
    const source = makeSource("scale-race-patch", { "a.ifc": SMALL }, scaleStack().sourcesDir);
    const iModelId = await newIModel("scale race patch");
    const created = await create(0, iModelId, source, ["a.ifc"], "patched");
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.connection.id as string;
    for (let round = 1; round <= 5; round++) {
      const changes = [
        { displayName: `patched ${round}` },
        { deletionGuard: { minElements: 100 + round } },
        { failureNotices: { pauseAfter: round } },
      ];
      const answers = await Promise.all(
        changes.map((change, i) => callApi(i + round, "PATCH", `/connections/${id}`, change)),
      );
      for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(200);
      for (const i of [0, 1]) {
        const final = (await callApi(i, "GET", `/connections/${id}`)).body.connection;
        expect(final.displayName, `round ${round}`).toBe(`patched ${round}`);
        expect(final.deletionGuard.minElements, `round ${round}`).toBe(100 + round);
        expect(final.failureNotices.pauseAfter, `round ${round}`).toBe(round);
      }
    }
  });
});

describe("one of two workers killed with SIGKILL in the middle of runs of four iModels", () => {
  const STRUCTURAL = SAMPLE("ifc2x3_structural_revit_example_rev1.ifc");
  /** Physical elements of the structural sample (test/sync.test.ts); 120 elements with its spatial structure. */
  const PHYSICAL = 116;
  const FILES = ["s1.ifc", "s2.ifc", "s3.ifc", "s4.ifc"];

  /** The worker process of one instance and its supervisor (scripts/supervise.sh writes `child=` in its state file). */
  const processOf = (name: string) => {
    const dir = path.join(scaleStack().dataDir, "run");
    const state = fs.readFileSync(path.join(dir, `${name}.supervisor`), "utf8");
    return {
      child: Number(/^child=(\d+)$/m.exec(state)?.[1]),
      supervisor: Number(fs.readFileSync(path.join(dir, `${name}.pid`), "utf8").trim()),
    };
  };
  /** Runs of which a worker's log shows a file written ("task completed"): the runs that worker serves. */
  const runsServedBy = (name: string): Set<string> =>
    new Set(
      fs
        .readFileSync(path.join(scaleStack().dataDir, "logs", `${name}.log`), "utf8")
        .split("\n")
        .filter((l) => l.includes('"msg":"task completed"'))
        .map((l) => JSON.parse(l).runId as string),
    );

  it("hands its runs over to the other worker: every run completes, every element exactly once (ECSQL per file)", async () => {
    const runs: { iModelId: string; connectionId: string; location: string }[] = [];
    for (let m = 0; m < 4; m++) {
      const source = makeSource(
        `scale-kill-${m}`,
        Object.fromEntries(FILES.map((f) => [f, STRUCTURAL])),
        scaleStack().sourcesDir,
      );
      const iModel = await callApi(m, "POST", "/imodels", { name: `scale kill ${m}` });
      expect(iModel.status).toBe(201);
      const c = await callApi(m, "POST", "/connections", {
        iModelId: iModel.body.iModel.id,
        displayName: `kill ${m}`,
        source: { type: "local", path: source },
        sourceFiles: FILES.map((p) => ({ path: p, connectorType: "IFC" })),
      });
      expect(c.status, JSON.stringify(c.body)).toBe(201);
      runs.push({ iModelId: iModel.body.iModel.id, connectionId: c.body.connection.id, location: "" });
    }
    const starts = await Promise.all(runs.map((r, i) => callApi(i, "POST", `/connections/${r.connectionId}/run`)));
    starts.forEach((s, i) => {
      expect(s.status).toBe(202);
      runs[i].location = s.location!;
    });
    // worker-2 serves a run (it wrote one of its files) that has files left: they wait in worker-2's queue.
    const served = await eventually(
      "worker-2 serves a run with files left",
      async () => {
        const mine = runsServedBy("worker-2");
        if (mine.size === 0) return undefined;
        const bodies = await Promise.all(runs.map((r, i) => callApi(i, "GET", r.location)));
        const left = bodies
          .map((b) => b.body.run)
          .filter((run) => mine.has(run.id))
          .filter((run) =>
            (run.jobs ?? []).flatMap((j: any) => j.tasks ?? []).some((t: any) => t.state !== "Completed"),
          );
        return left.length > 0 ? left.map((run) => run.id as string) : undefined;
      },
      120_000,
      50,
    );
    // worker-2 dies for good: its supervisor first (no restart), then the process.
    const victim = processOf("worker-2");
    process.kill(victim.supervisor, "SIGKILL");
    process.kill(victim.child, "SIGKILL");
    try {
      const ended = await Promise.all(
        runs.map((r) =>
          waitForRun(r.location, 300_000, { apiKey: scaleStack().adminApiKey, baseUrl: scaleStack().apiUrls[0] }),
        ),
      );
      for (const [i, { run }] of ended.entries()) {
        expect(run.result, JSON.stringify(run.error)).toBe("Success");
        const tasks = run.jobs.flatMap((j: any) => j.tasks);
        expect(tasks.map((t: any) => `${t.path} ${t.result}`).sort()).toEqual(FILES.map((f) => `${f} Success`));
        const bim = (await callApi(i, "GET", `/imodels/${runs[i].iModelId}`)).body.iModel.location.path;
        const perFile = await ecsql(
          bim,
          `SELECT p.CodeValue file, COUNT(*) n FROM Generic.PhysicalObject e
             JOIN BisCore.PhysicalPartition p ON p.ECInstanceId = e.Model.Id GROUP BY p.CodeValue ORDER BY p.CodeValue`,
        );
        expect(perFile).toEqual(FILES.map((f) => ({ file: f, n: PHYSICAL })));
        const twice = await ecsql(
          bim,
          `SELECT a.Identifier id, COUNT(*) n FROM BisCore.ExternalSourceAspect a WHERE a.Kind = 'Element'
             GROUP BY a.Scope.Id, a.Identifier HAVING COUNT(*) > 1`,
        );
        expect(twice).toEqual([]);
      }
      // The runs worker-2 served were finished by the other worker after a hand-over.
      expect(served.length).toBeGreaterThan(0);
      for (const id of served) expect(runsServedBy("worker").has(id), `run ${id} finished by worker`).toBe(true);
      const log = fs.readFileSync(path.join(scaleStack().dataDir, "logs", "worker.log"), "utf8");
      expect(log).toContain("handed over to another worker");
    } finally {
      // Leave the stack whole for afterAll's `down`.
      await stackScript(["restart", "worker-2"], scaleStack().env);
    }
  }, 420_000);
});
