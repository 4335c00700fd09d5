/**
 * `make topology`: starts the production topology (scripts/topology.sh up: PostgreSQL, the Temporal server proper on
 * PostgreSQL, FerretDB on PostgreSQL, the workers and APIs) in a new DATA_DIR, and checks over the HTTP API that
 * 1. a sync of samples/ifc completes with result Success;
 * 2. a schedule, triggered by hand in Temporal (`temporal schedule trigger`), produces a scheduled run that completes;
 * 3. a run over several files survives a worker killed (SIGKILL) in its middle: the supervisor restarts the worker,
 *    the run completes Success and the iModel holds every element exactly once (counted per file with ECSQL);
 * 4. a delete job (DELETE /connections/{id}?mode=deleteData) completes and leaves none of the connection's elements.
 * Prints a table of what happened with timings; exit code 1 on any failure. Always stops the topology at the end.
 *
 * Env: KEEP_TOPOLOGY_DATA=1 keeps the DATA_DIR (removed otherwise, after a success); TOPOLOGY_KILL_FILES (6) files of
 * the run the worker is killed in; the ports of scripts/topology.sh (PG_PORT, TEMPORAL_PORT, FERRETDB_PORT, API_PORT).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { OpenMode } from "@itwin/core-bentley";
import { QueryBinder, QueryRowFormat } from "@itwin/core-common";
import { IModelHost, StandaloneDb } from "@itwin/core-backend";
import { startIModelHost } from "../activities/imodel/writer";
import { SAMPLES, USER_STACK_SETTINGS, ifcSamples, withProjectName } from "./bench-common";

const PROJECT = path.resolve(__dirname, "..");
const TOPOLOGY = path.join(PROJECT, "scripts", "topology.sh");
const KILL_FILES = Number(process.env.TOPOLOGY_KILL_FILES ?? 6);
const RUN_TIMEOUT_MS = 10 * 60_000;

const env: NodeJS.ProcessEnv = { ...process.env };
for (const name of USER_STACK_SETTINGS) delete env[name];
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-topology-"));
env.DATA_DIR = dataDir;
const apiUrl = `http://127.0.0.1:${env.API_PORT ?? process.env.API_PORT ?? 3300}`;
const temporalAddress = `127.0.0.1:${process.env.TEMPORAL_PORT ?? 17233}`;
if (process.env.API_PORT) env.API_PORT = process.env.API_PORT;

interface Step {
  step: string;
  result: string;
  seconds: number;
  details: string;
}
const steps: Step[] = [];
let apiKey = "";

async function call(method: string, urlPath: string, body?: unknown) {
  const res = await fetch(`${apiUrl}${urlPath}`, {
    method,
    redirect: "manual",
    headers: {
      ...(body ? { "content-type": "application/json" } : {}),
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, location: res.headers.get("location"), body: text ? JSON.parse(text) : undefined };
}

function expectStatus(res: { status: number; body: any }, status: number, what: string) {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls a run until it is Completed; `onPoll` sees each state. */
async function waitRun(location: string, onPoll?: (run: any) => Promise<void> | void): Promise<any> {
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  for (;;) {
    const res = await call("GET", location);
    if (res.status === 200) {
      const run = res.body.run;
      if (onPoll) await onPoll(run);
      if (run.state === "Completed") return run;
    }
    if (Date.now() > deadline) throw new Error(`run ${location} did not complete within ${RUN_TIMEOUT_MS / 1000} s`);
    await sleep(500);
  }
}

const tasksOf = (run: any): any[] => run.jobs.flatMap((j: any) => j.tasks);

/** Records one step: its result and duration; a failure is recorded and rethrown. */
async function step(name: string, fn: () => Promise<string>): Promise<void> {
  const start = Date.now();
  try {
    const details = await fn();
    steps.push({ step: name, result: "ok", seconds: (Date.now() - start) / 1000, details });
  } catch (err) {
    steps.push({ step: name, result: "FAILED", seconds: (Date.now() - start) / 1000, details: (err as Error).message });
    throw err;
  }
}

/** Per file (partition CodeValue = the file's path): elements, and ExternalSourceAspects with distinct identifiers. */
async function countElements(bim: string): Promise<Map<string, { elements: number; aspects: number; ids: number }>> {
  const db = StandaloneDb.openFile(bim, OpenMode.Readonly);
  const out = new Map<string, { elements: number; aspects: number; ids: number }>();
  try {
    const read = (ecsql: string) =>
      db.createQueryReader(ecsql, QueryBinder.from([]), { rowFormat: QueryRowFormat.UseECSqlPropertyNames }).toArray();
    for (const row of await read(
      `SELECT p.CodeValue file, COUNT(e.ECInstanceId) n FROM BisCore.PhysicalPartition p
         JOIN BisCore.GeometricElement3d e ON e.Model.Id = p.ECInstanceId GROUP BY p.CodeValue`,
    ))
      out.set(row.file, { elements: row.n, aspects: 0, ids: 0 });
    for (const row of await read(
      `SELECT l.UserLabel file, COUNT(a.ECInstanceId) n, COUNT(DISTINCT a.Identifier) d
         FROM BisCore.ExternalSourceAspect a JOIN BisCore.RepositoryLink l ON a.Scope.Id = l.ECInstanceId
         WHERE a.Kind = 'Element' GROUP BY l.UserLabel`,
    )) {
      const entry = out.get(row.file) ?? { elements: 0, aspects: 0, ids: 0 };
      out.set(row.file, { ...entry, aspects: row.n, ids: row.d });
    }
  } finally {
    db.close();
  }
  return out;
}

/** The pids of the running worker processes (the supervisor's child of each worker*.supervisor state file). */
function workerPids(): number[] {
  const run = path.join(dataDir, "run");
  return fs
    .readdirSync(run)
    .filter((f) => /^worker[-\w]*\.supervisor$/.test(f))
    .map((f) => /^child=(\d+)$/m.exec(fs.readFileSync(path.join(run, f), "utf8"))?.[1])
    .filter((p): p is string => !!p)
    .map(Number)
    .filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
}

/**
 * Runs scripts/topology.sh in a session of its own (`setsid --wait`), so that a signal sent to this process group
 * (Ctrl-C, CI's timeout) cannot interrupt it half way, e.g. a `down` started by the signal handler below.
 */
function topology(command: string): { status: number; output: string } {
  const r = spawnSync("setsid", ["--wait", "bash", TOPOLOGY, command], { env, encoding: "utf8", maxBuffer: 64 << 20 });
  return { status: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
}

async function main(): Promise<void> {
  await step("topology up", async () => {
    const up = topology("up");
    if (up.status !== 0) throw new Error(`scripts/topology.sh up failed:\n${up.output}`);
    const status = topology("status");
    console.log(status.output);
    const workers = (status.output.match(/^worker\S*\s+running/gm) ?? []).length;
    const apis = (status.output.match(/^api\S*\s+running/gm) ?? []).length;
    return `postgresql, temporal-server, ferretdb-pg up; ${workers} worker(s), ${apis} API(s) up`;
  });
  apiKey = fs.readFileSync(path.join(dataDir, "admin-api-key"), "utf8").trim();
  const u = await call("POST", "/users", { email: `topology-${Date.now()}@imodel-sync.localhost`, name: "Topology" });
  expectStatus(u, 201, "create a user");
  apiKey = u.body.apiKey;
  await startIModelHost(path.join(os.tmpdir(), "imodel-sync-topology-check"), {
    profileName: `topology-${process.pid}`,
  });

  const samples = ifcSamples();
  const reference = new Map<string, number>(); // sample name -> elements
  let first: { iModel: any; connection: any } | undefined;

  await step("sync samples/ifc", async () => {
    const m = await call("POST", "/imodels", { name: "Topology sync" });
    expectStatus(m, 201, "create iModel");
    const c = await call("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: "Samples",
      source: { type: "local", path: SAMPLES },
      sourceFiles: samples.map((f) => ({ path: f, connectorType: "IFC" })),
    });
    expectStatus(c, 201, "create connection");
    first = { iModel: m.body.iModel, connection: c.body.connection };
    const r = await call("POST", `/connections/${c.body.connection.id}/run`);
    expectStatus(r, 202, "start run");
    const run = await waitRun(r.location!);
    if (run.result !== "Success") throw new Error(`run result ${run.result}: ${JSON.stringify(tasksOf(run))}`);
    const counts = await countElements(m.body.iModel.location.path);
    for (const f of samples) reference.set(f, counts.get(f)?.elements ?? 0);
    const total = [...reference.values()].reduce((a, b) => a + b, 0);
    return `${samples.length} files, result ${run.result}, ${total} elements in the .bim`;
  });

  await step("schedule trigger", async () => {
    const conn = first!.connection;
    const s = await call("PUT", `/connections/${conn.id}/schedule`, { type: "every4Hours" });
    expectStatus(s, 200, "set schedule");
    const scheduleId = s.body.schedule.temporalScheduleId as string;
    const temporalBin = /TEMPORAL_BIN=(.*)/.exec(
      execFileSync("bash", [path.join(PROJECT, "scripts", "ensure-tools.sh"), "temporal"], { encoding: "utf8" }),
    )![1];
    execFileSync(temporalBin, [
      "schedule",
      "trigger",
      "--schedule-id",
      scheduleId,
      "--address",
      temporalAddress,
      "--namespace",
      "default",
    ]);
    const deadline = Date.now() + 120_000;
    let scheduled: any;
    while (!scheduled) {
      const runs = await call("GET", `/connections/${conn.id}/runs?trigger=schedule`);
      scheduled = runs.body?.runs?.[0] ?? runs.body?.value?.[0];
      if (!scheduled) {
        if (Date.now() > deadline) throw new Error("no scheduled run within 120 s of the trigger");
        await sleep(500);
      }
    }
    const run = await waitRun(`/connections/${conn.id}/runs/${scheduled.id}`);
    if (run.trigger !== "schedule" || run.result !== "Success")
      throw new Error(`scheduled run: trigger ${run.trigger}, result ${run.result}`);
    const skipped = tasksOf(run).filter((t) => t.result === "Skipped").length;
    return `${scheduleId} triggered; run ${run.trigger}, result ${run.result} (${skipped} files unchanged)`;
  });

  await step(`worker kill (${KILL_FILES} files)`, async () => {
    const dir = path.join(dataDir, "sources", "kill");
    fs.mkdirSync(dir, { recursive: true });
    const big = samples.filter((f) => fs.statSync(path.join(SAMPLES, f)).size > 100_000);
    const files: { name: string; sample: string }[] = [];
    for (let i = 0; i < KILL_FILES; i++) {
      const sample = big[i % big.length];
      const name = `copy-${String(i + 1).padStart(2, "0")}-${sample}`;
      const text = fs.readFileSync(path.join(SAMPLES, sample), "utf8");
      fs.writeFileSync(path.join(dir, name), withProjectName(text, `Topology copy ${i + 1}`, sample));
      files.push({ name, sample });
    }
    const m = await call("POST", "/imodels", { name: "Topology worker kill" });
    expectStatus(m, 201, "create iModel");
    const c = await call("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: "Copies",
      source: { type: "local", path: dir },
      sourceFiles: files.map((f) => ({ path: f.name, connectorType: "IFC" })),
    });
    expectStatus(c, 201, "create connection");
    const r = await call("POST", `/connections/${c.body.connection.id}/run`);
    expectStatus(r, 202, "start run");
    let killed: number[] = [];
    let killedAt = "";
    const run = await waitRun(r.location!, (run) => {
      if (killed.length > 0) return;
      const tasks = tasksOf(run);
      const done = tasks.filter((t) => t.state === "Completed").length;
      if (run.state === "Executing" && done >= 1 && done < tasks.length) {
        killed = workerPids();
        if (killed.length === 0) throw new Error("no worker process found to kill");
        for (const pid of killed) process.kill(pid, "SIGKILL");
        killedAt = `${done}/${tasks.length} files done`;
      }
    });
    if (killed.length === 0) throw new Error("the run completed before a worker could be killed");
    if (run.result !== "Success") throw new Error(`run result ${run.result}: ${JSON.stringify(tasksOf(run))}`);
    const after = workerPids();
    if (after.length === 0 || after.some((p) => killed.includes(p))) throw new Error("the worker was not restarted");
    const counts = await countElements(m.body.iModel.location.path);
    const wrong: string[] = [];
    let total = 0;
    for (const f of files) {
      const got = counts.get(f.name) ?? { elements: 0, aspects: 0, ids: 0 };
      const want = reference.get(f.sample) ?? -1;
      total += got.elements;
      if (got.elements !== want || got.aspects !== got.ids || got.elements === 0)
        wrong.push(
          `${f.name}: ${got.elements} elements (want ${want}), ${got.aspects} aspects, ${got.ids} identifiers`,
        );
    }
    if (wrong.length > 0) throw new Error(`elements not exactly once: ${wrong.join("; ")}`);
    return `SIGKILL pid ${killed.join(",")} at ${killedAt}; restarted as ${after.join(",")}; result ${run.result}; ${total} elements, each once (ECSQL)`;
  });

  await step("delete job (deleteData)", async () => {
    const conn = first!.connection;
    const d = await call("DELETE", `/connections/${conn.id}?mode=deleteData`);
    expectStatus(d, 202, "delete connection with deleteData");
    const run = await waitRun(d.location!);
    if (run.result !== "Success") throw new Error(`delete job result ${run.result}: ${JSON.stringify(tasksOf(run))}`);
    const c = await call("GET", `/connections/${conn.id}`);
    const status = c.body?.connection?.status;
    if (status !== "Deleted") throw new Error(`connection status ${status} after the delete job`);
    const counts = await countElements(first!.iModel.location.path);
    const left = [...counts.values()].reduce((a, b) => a + b.elements, 0);
    if (left !== 0) throw new Error(`${left} elements left in the .bim`);
    const deleted = tasksOf(run).reduce((a, t) => a + (t.elements?.deleted ?? 0), 0);
    return `job ${run.trigger}, result ${run.result}, ${deleted} elements deleted, 0 left, connection ${status}`;
  });

  // scripts/ferretdb-pg-indexes.sql: every collection's table has the GIN index on (_jsonb->'_id') that FerretDB's
  // `_jsonb->'_id' @> …` lookups can use, and FerretDB's connections plan each lookup with its key (custom plans).
  await step("_id lookups indexed (PostgreSQL)", async () => {
    // collection name -> table name
    const tableOf = new Map(
      ferretDbSql(`SELECT _jsonb->>'_id', _jsonb->>'table' FROM imodelsync._ferretdb_database_metadata;`).map(
        ([collection, table]) => [collection, table],
      ),
    );
    const tables = [...tableOf.values()];
    const indexed = new Set(
      ferretDbSql(
        `SELECT tablename FROM pg_indexes WHERE schemaname = 'imodelsync' AND indexdef LIKE '%USING gin%jsonb_path_ops%';`,
      ).map((r) => r[0]),
    );
    const missing = tables.filter((t) => !indexed.has(t));
    if (tables.length === 0 || missing.length > 0)
      throw new Error(`${missing.length} of ${tables.length} collection tables without the _id index: ${missing}`);
    const runsTable = tableOf.get("runs");
    if (!runsTable) throw new Error("no table for the runs collection");
    // The index can serve the lookup (a small table may still be read whole when that is cheaper: seq scans off here).
    const plan = ferretDbSql(
      `SET enable_seqscan = off; EXPLAIN SELECT _jsonb FROM imodelsync."${runsTable}" WHERE _jsonb->'_id' @> '"x"';`,
    )
      .map((r) => r[0])
      .join(" ");
    if (!/Index Scan|Bitmap Index Scan/.test(plan) || !plan.includes("__id_gin"))
      throw new Error(`a lookup by _id does not use the GIN index: ${plan}`);
    const mode = ferretDbSql("SHOW plan_cache_mode;")[0]?.[0];
    if (mode !== "force_custom_plan") throw new Error(`plan_cache_mode is ${mode}, not force_custom_plan`);
    return `${tables.length} collection tables, each with its _id GIN index; plan_cache_mode ${mode}`;
  });
}

/** Runs SQL with psql on FerretDB's PostgreSQL database (`ferretdb`) of this topology; rows of tab-separated fields. */
function ferretDbSql(sql: string): string[][] {
  const out = execFileSync(
    "psql",
    [
      "-X",
      "-q",
      "-A",
      "-t",
      "-F",
      "\t",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      "127.0.0.1",
      "-U",
      "imodelsync",
      "-d",
      "ferretdb",
    ],
    {
      input: sql,
      encoding: "utf8",
      env: {
        ...env,
        PGPORT: process.env.PG_PORT ?? "15432",
        PGPASSWORD: fs.readFileSync(path.join(dataDir, "postgresql-password"), "utf8").split("\n")[0],
      },
    },
  );
  return out
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split("\t"));
}

// Stopped from outside (Ctrl-C, CI's timeout): the servers run in sessions of their own, so stop them here.
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    console.error(`${signal}: stopping the topology`);
    console.error(topology("down").output.trim());
    process.exit(signal === "SIGINT" ? 130 : 143);
  });

const started = Date.now();
let rc = 0;
main()
  .catch((err) => {
    rc = 1;
    console.error(`error: ${(err as Error).stack ?? err}`);
    for (const log of ["worker.log", "api.log", "temporal-server.log", "ferretdb-pg.log"]) {
      const file = path.join(dataDir, "logs", log);
      if (fs.existsSync(file))
        console.error(
          `----- last lines of ${file} -----\n${fs.readFileSync(file, "utf8").split("\n").slice(-30).join("\n")}`,
        );
    }
  })
  .finally(async () => {
    await IModelHost.shutdown().catch(() => undefined);
    const downStart = Date.now();
    const down = topology("down");
    const stopped = down.status === 0;
    steps.push({
      step: "topology down",
      result: stopped ? "ok" : "FAILED",
      seconds: (Date.now() - downStart) / 1000,
      details: down.output.trim().split("\n").join("; ").slice(0, 200),
    });
    if (!stopped) rc = 1;
    console.log("\nproduction topology check");
    console.table(steps.map((s) => ({ ...s, seconds: Number(s.seconds.toFixed(1)) })));
    console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s; DATA_DIR ${dataDir}`);
    if (rc === 0 && process.env.KEEP_TOPOLOGY_DATA !== "1") fs.rmSync(dataDir, { recursive: true, force: true });
    process.exit(rc);
  });
