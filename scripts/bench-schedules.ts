/**
 * The schedules benchmark (`make bench-schedules`): 1,000 scheduled connections, all fired at once.
 *
 * On a fresh stack of its own with SCHED_WORKERS (2) worker processes (`WORKERS` of scripts/stack.sh; dedicated
 * ports, a temporary DATA_DIR, stopped at the end, also on failure and Ctrl-C):
 * 1. SCHED_IMODELS (10) iModels x SCHED_CONNECTIONS (100) connections, each mapping one small IFC file of its own (a
 *    copy of samples/ifc/ifc4_hvac_air_terminal_duct.ifc made unique, scripts/bench-common.ts) and each with a daily
 *    schedule at a time 12 hours away (it does not fire during the bench). Measured: the time to create them, in total
 *    and per connection (POST /connections, then PUT /connections/{id}/schedule), with SCHED_CREATE_CONCURRENCY (1)
 *    connections created at a time.
 * 2. Memory (VmRSS, VmHWM from /proc) of every process of the stack (Temporal server, FerretDB, API, each worker),
 *    found through the supervisors' state files ($DATA_DIR/run/<name>.supervisor).
 * 3. API latency, p50/p99, of 200 GETs of `/connections?iModelId=<id>&$top=20` (the iModels in turn) and 200 of
 *    `/connections?$top=20`, 20 at a time; then the median of 9 of each, one at a time.
 * 4. All schedules triggered at once through the Temporal client (`schedule/<connectionId>`, README "Schedules": a
 *    fire by hand always runs), then the scheduled runs completed are followed on the workers' metrics, and every
 *    connection's runs with trigger `schedule` are read through the API once the metrics count them all (or stop
 *    moving for 30 s), until each connection has one, Completed. Missed (no run) and doubled (more than one)
 *    connections are counted; so are the fires the workers dropped ("schedule fire dropped" in their logs).
 * 5. Parallelism, from the run records (server clock): per iModel, when its first run started and its last ended
 *    after the trigger; the span from the first run queued to the last ended; the largest number of runs Executing at
 *    the same time; per worker ($DATA_DIR/logs/worker*.log), the runs it started ("run started") and of how many
 *    iModels.
 * Prints a table with PASS/FAIL for: none missed, none doubled, all Success, every iModel's first run started within
 * 10 s of the trigger. Exit code 0 when every run is accounted for (it is a measurement: a run that did not succeed or
 * an iModel that started late is a FAIL line, not an exit code); 1 when a step fails or runs are missed or doubled.
 *
 * Env: SCHED_IMODELS (10), SCHED_CONNECTIONS (100 per iModel), SCHED_WORKERS (2), SCHED_CREATE_CONCURRENCY (1),
 * SCHED_RUN_TIMEOUT (seconds from the trigger, 1800: connections without a Completed run by then are reported, not
 * counted as missed), SCHED_STALL_TIMEOUT (seconds without a run completing, while the connections left have no run at
 * all, after which they count as missed, 180), SCHED_API_PORT (19400; Temporal 19433, its UI 20433, FerretDB 19417 follow
 * unless SCHED_TEMPORAL_PORT, SCHED_TEMPORAL_UI_PORT, SCHED_FERRETDB_PORT are set), SCHED_KEEP_DATA=1 (keep the
 * DATA_DIR), SCHED_LOG_LEVEL (info: the workers' "run started" lines are info).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { Client, Connection } from "@temporalio/client";
import {
  apiClient,
  expectStatus,
  memoryOf,
  metricSample,
  percentile,
  positiveInt,
  runStack,
  SAMPLES,
  BenchStacks,
  stackEnv,
  withProjectName,
} from "./bench-common";
import { medianGet } from "./bench-api-load";

const IMODELS = positiveInt(process.env.SCHED_IMODELS, 10);
const CONNECTIONS = positiveInt(process.env.SCHED_CONNECTIONS, 100);
const WORKERS = positiveInt(process.env.SCHED_WORKERS, 2);
const CREATE_CONCURRENCY = positiveInt(process.env.SCHED_CREATE_CONCURRENCY, 1);
const RUN_TIMEOUT_MS = positiveInt(process.env.SCHED_RUN_TIMEOUT, 1800) * 1000;
const STALL_TIMEOUT_MS = positiveInt(process.env.SCHED_STALL_TIMEOUT, 180) * 1000;
const API_PORT = positiveInt(process.env.SCHED_API_PORT, 19400);
const PORTS = {
  api: API_PORT,
  temporal: positiveInt(process.env.SCHED_TEMPORAL_PORT, API_PORT + 33),
  ui: positiveInt(process.env.SCHED_TEMPORAL_UI_PORT, API_PORT + 1033),
  ferret: positiveInt(process.env.SCHED_FERRETDB_PORT, API_PORT + 17),
};
const SAMPLE = "ifc4_hvac_air_terminal_duct.ifc";
const LIST_REQUESTS = 200;
const LIST_CONCURRENCY = 20;
const POLL_CONCURRENCY = 20;
const POLL_MS = 2000;
/** Without progress on the workers' metrics for this long (ms), the API is asked about every pending connection. */
const SWEEP_AFTER_MS = 30_000;
const TARGET_FIRST_START_S = 10;

const log = (msg: string) => process.stderr.write(`[bench-schedules] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number, digits = 1) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const passFail = (ok: boolean) => (ok ? "PASS" : "FAIL");

/** The stack being measured now (stopped at the end, also on failure and Ctrl-C). */
const stacks = new BenchStacks("bench-schedules", "SCHED_KEEP_DATA", log);

/** Runs `work` on every item, `concurrency` at a time, in order of the items; the results in the same order. */
async function pool<T, R>(items: T[], concurrency: number, work: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return out;
}

/** p50, p99 and max of a list of milliseconds. */
function stats(ms: number[]): { p50: number; p99: number; max: number; mean: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
  };
}

/** Writes `<dir>/m<i>/<sample stem>-<j>.ifc`: CONNECTIONS unique copies of the sample per iModel. */
function makeCorpus(dir: string): { folders: string[]; files: string[][] } {
  const text = fs.readFileSync(path.join(SAMPLES, SAMPLE), "latin1");
  const folders: string[] = [];
  const files: string[][] = [];
  for (let i = 0; i < IMODELS; i++) {
    const folder = path.join(dir, `m${i + 1}`);
    fs.mkdirSync(folder, { recursive: true });
    const names: string[] = [];
    for (let j = 0; j < CONNECTIONS; j++) {
      const name = `${SAMPLE.replace(/\.ifc$/i, "")}-${String(j).padStart(3, "0")}.ifc`;
      fs.writeFileSync(
        path.join(folder, name),
        withProjectName(text, `imodel-sync bench-schedules m${i + 1} copy ${j}`, SAMPLE),
        "latin1",
      );
      names.push(name);
    }
    folders.push(folder);
    files.push(names);
  }
  return { folders, files };
}

/** The stack's processes (supervisors' state files, `child=<pid>`): name → pid. Workers are `worker*`. */
function stackProcesses(dataDir: string): { name: string; pid: number }[] {
  const runDir = path.join(dataDir, "run");
  const out: { name: string; pid: number }[] = [];
  for (const f of fs.readdirSync(runDir).filter((n) => n.endsWith(".supervisor"))) {
    const child = /^child=(\d+)$/m.exec(fs.readFileSync(path.join(runDir, f), "utf8"))?.[1];
    if (child) out.push({ name: f.replace(/\.supervisor$/, ""), pid: Number(child) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** GETs every path, `concurrency` at a time; each answer's time (ms) and the answers other than 200. */
async function listLatency(
  call: ReturnType<typeof apiClient>,
  paths: string[],
): Promise<{ p50: number; p99: number; max: number; errors: number; wallMs: number }> {
  const t0 = performance.now();
  const results = await pool(paths, LIST_CONCURRENCY, async (p) => {
    const t = performance.now();
    const res = await call("GET", p).catch(() => ({ status: 0 }));
    return { ms: performance.now() - t, ok: res.status === 200 };
  });
  const s = stats(results.map((r) => r.ms));
  return { ...s, errors: results.filter((r) => !r.ok).length, wallMs: performance.now() - t0 };
}

interface Conn {
  id: string;
  /** 1-based */
  iModel: number;
  connMs: number;
  scheduleMs: number;
}

interface RunJson {
  id: string;
  state: string;
  result: string;
  trigger: string;
  queuedDateTime: string;
  startDateTime?: string;
  endDateTime?: string;
  error?: unknown;
}

/** Lines of the worker logs: per log, the run ids of its "run started" lines, and the dropped fires. */
function workerLogs(dataDir: string): { name: string; runIds: string[]; dropped: string[] }[] {
  const logDir = path.join(dataDir, "logs");
  return fs
    .readdirSync(logDir)
    .filter((n) => /^worker.*\.log$/.test(n))
    .sort()
    .map((n) => {
      const runIds: string[] = [];
      const dropped: string[] = [];
      for (const line of fs.readFileSync(path.join(logDir, n), "utf8").split("\n")) {
        if (!line.startsWith("{")) continue;
        let entry: { msg?: string; runId?: string; connectionId?: string };
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        if (entry.msg === "run started" && entry.runId) runIds.push(entry.runId);
        else if (entry.msg?.startsWith("schedule fire dropped")) dropped.push(`${entry.connectionId}: ${entry.msg}`);
      }
      return { name: n.replace(/\.log$/, ""), runIds, dropped };
    });
}

/**
 * Scheduled runs completed so far: `imodel_sync_runs_completed_total{trigger="schedule"}` summed over the workers'
 * metrics listeners (README "Metrics"); undefined when one of them does not answer.
 */
async function scheduledRunsCompleted(urls: string[]): Promise<number | undefined> {
  let total = 0;
  for (const url of urls) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) return undefined;
      total += metricSample(await res.text(), "imodel_sync_runs_completed_total", { trigger: "schedule" });
    } catch {
      return undefined;
    }
  }
  return urls.length > 0 ? total : undefined;
}

async function main(): Promise<number> {
  const total = IMODELS * CONNECTIONS;
  const { dataDir, env, adminApiKey } = stacks.create({
    TEMPORAL_PORT: String(PORTS.temporal),
    TEMPORAL_UI_PORT: String(PORTS.ui),
    FERRETDB_PORT: String(PORTS.ferret),
    API_PORT: String(PORTS.api),
    LOG_LEVEL: process.env.SCHED_LOG_LEVEL || "info",
    WORKERS: String(WORKERS),
  });
  const corpus = makeCorpus(path.join(dataDir, "sources", "schedules"));
  log(`${IMODELS} iModels x ${CONNECTIONS} connections, ${WORKERS} worker(s); starting the stack in ${dataDir}`);
  await runStack(["up"], env);
  const workerProcesses = stackProcesses(dataDir).filter((p) => p.name.startsWith("worker"));
  if (workerProcesses.length !== WORKERS)
    log(`note: ${workerProcesses.length} worker process(es) started for WORKERS=${WORKERS}`);

  let key = adminApiKey;
  const call = apiClient(`http://127.0.0.1:${PORTS.api}`, () => key);
  const u = await call("POST", "/users", { email: `sched-${process.pid}@imodel-sync.localhost`, name: "Bench sched" });
  expectStatus(u, 201, "create the bench user");
  key = u.body.apiKey;
  const iModelIds: string[] = [];
  for (let i = 0; i < IMODELS; i++) {
    const m = await call("POST", "/imodels", { name: `Schedules ${i + 1}` });
    expectStatus(m, 201, "create iModel");
    iModelIds.push(m.body.iModel.id);
  }

  // 1. Connections with schedules; the iModels in turn, so that concurrent creations are of different iModels.
  const at = new Date(Date.now() + 12 * 3600_000);
  const schedule = {
    type: "daily",
    time: `${String(at.getUTCHours()).padStart(2, "0")}:${String(at.getUTCMinutes()).padStart(2, "0")}`,
    timeZone: "UTC",
  };
  const order = Array.from({ length: total }, (_, k) => ({ i: k % IMODELS, j: Math.floor(k / IMODELS) }));
  log(`creating ${total} connections with a schedule (daily ${schedule.time} UTC), ${CREATE_CONCURRENCY} at a time`);
  const createT0 = performance.now();
  let created = 0;
  const conns: Conn[] = await pool(order, CREATE_CONCURRENCY, async ({ i, j }) => {
    const t = performance.now();
    const c = await call("POST", "/connections", {
      iModelId: iModelIds[i],
      displayName: `Schedules ${i + 1}.${j + 1}`,
      source: { type: "local", path: corpus.folders[i] },
      sourceFiles: [{ path: corpus.files[i][j], connectorType: "IFC" }],
    });
    expectStatus(c, 201, "create connection");
    const t1 = performance.now();
    const s = await call("PUT", `/connections/${c.body.connection.id}/schedule`, schedule);
    expectStatus(s, 200, "set schedule");
    const t2 = performance.now();
    if (++created % 100 === 0) log(`${created} of ${total} connections created after ${fmt((t2 - createT0) / 1000)} s`);
    return { id: c.body.connection.id, iModel: i + 1, connMs: t1 - t, scheduleMs: t2 - t1 };
  });
  const createMs = performance.now() - createT0;

  // 2. Memory after creation.
  const processes = stackProcesses(dataDir);
  const memAfterCreate = new Map(processes.map((p) => [p.name, memoryOf(p.pid)]));

  // 3. Listing connections.
  log(`listing connections: ${LIST_REQUESTS} + ${LIST_REQUESTS} GETs, ${LIST_CONCURRENCY} at a time`);
  const listByIModel = await listLatency(
    call,
    Array.from({ length: LIST_REQUESTS }, (_, k) => `/connections?iModelId=${iModelIds[k % IMODELS]}&$top=20`),
  );
  const listAll = await listLatency(
    call,
    Array.from({ length: LIST_REQUESTS }, () => `/connections?$top=20`),
  );
  const apiUrl = `http://127.0.0.1:${PORTS.api}`;
  const alone = {
    byIModel: await medianGet(apiUrl, key, `/connections?iModelId=${iModelIds[0]}&$top=20`),
    all: await medianGet(apiUrl, key, `/connections?$top=20`),
  };

  // 4. Fire every schedule at once.
  const connection = await Connection.connect({ address: `127.0.0.1:${PORTS.temporal}` });
  const temporal = new Client({ connection, namespace: "default" });
  log(`triggering ${total} schedules at once`);
  const triggerAt = Date.now();
  const triggerResults = await Promise.allSettled(
    conns.map((c) => temporal.schedule.getHandle(`schedule/${c.id}`).trigger()),
  );
  const triggerMs = Date.now() - triggerAt;
  await connection.close();
  const triggerFailures = triggerResults.filter((r) => r.status === "rejected");
  if (triggerFailures.length > 0)
    throw new Error(
      `${triggerFailures.length} triggers failed, e.g. ${(triggerFailures[0] as PromiseRejectedResult).reason}`,
    );

  const runsOf = async (c: Conn): Promise<RunJson[]> => {
    const r = await call("GET", `/connections/${c.id}/runs?trigger=schedule&$top=10`);
    expectStatus(r, 200, "list runs");
    return r.body.runs;
  };
  // Progress is followed on the workers' metrics (one scrape each per poll); the API is asked about every pending
  // connection only when the metrics count them all, stop moving for SWEEP_AFTER_MS, or do not answer: sweeping 1,000
  // connections every poll kept FerretDB busy enough to slow the runs it measures by a factor of six.
  const metricsUrls = (stackEnv(env).WORKER_METRICS_URLS ?? "").split(" ").filter(Boolean);
  const done = new Set<string>();
  let progressAt = Date.now();
  let lastLog = 0;
  let lastCompleted = -1;
  let sweptAt = 0;
  /** Connections without any run at the last sweep; unknown (-1) before the first. */
  let withoutRun = -1;
  /** Why the wait ended before every connection had its run Completed. */
  let stopped: "timeout" | "stall" | undefined;
  while (done.size < total) {
    const completedNow = await scheduledRunsCompleted(metricsUrls);
    const now = Date.now();
    if (completedNow !== undefined && completedNow > lastCompleted) {
      lastCompleted = completedNow;
      progressAt = now;
    }
    if (completedNow === undefined || completedNow >= total || now - Math.max(progressAt, sweptAt) > SWEEP_AFTER_MS) {
      sweptAt = now;
      const pending = conns.filter((c) => !done.has(c.id));
      const seen = await pool(pending, POLL_CONCURRENCY, async (c) => ({ c, runs: await runsOf(c) }));
      withoutRun = 0;
      for (const { c, runs } of seen) {
        if (runs.length === 0) withoutRun++;
        else if (runs.every((r) => r.state === "Completed")) {
          done.add(c.id);
          progressAt = Date.now();
        }
      }
    }
    if (now - lastLog > 15_000) {
      lastLog = now;
      log(
        `${completedNow ?? "?"} scheduled runs completed (workers' metrics), ${done.size} of ${total} connections seen Completed, after ${fmt((now - triggerAt) / 1000)} s`,
      );
    }
    if (done.size === total) break;
    if (now - triggerAt > RUN_TIMEOUT_MS) {
      log(`runs not all Completed after ${RUN_TIMEOUT_MS / 1000} s`);
      stopped = "timeout";
      break;
    }
    if (withoutRun === total - done.size && now - progressAt > STALL_TIMEOUT_MS) {
      log(`no run completed for ${STALL_TIMEOUT_MS / 1000} s; ${withoutRun} connections have no run`);
      stopped = "stall";
      break;
    }
    await sleep(POLL_MS);
  }
  const waitedMs = Date.now() - triggerAt;
  // A late second run would show now: read every connection's runs once more.
  await sleep(5000);
  const finalRuns = await pool(conns, POLL_CONCURRENCY, async (c) => ({ c, runs: await runsOf(c) }));
  const memAfterRuns = new Map(processes.map((p) => [p.name, memoryOf(p.pid)]));
  const logs = workerLogs(dataDir);
  await stacks.stop();

  // 5. Figures.
  // Stopped by the timeout while runs still completed: a connection without a run may yet get one, not missed.
  const missed = stopped === "timeout" ? [] : finalRuns.filter((x) => x.runs.length === 0);
  const unfinished = finalRuns.filter((x) => !x.runs.some((r) => r.state === "Completed"));
  const runs = finalRuns.flatMap((x) => x.runs.map((r) => ({ ...r, iModel: x.c.iModel })));
  // A run executed twice under one record: its id in more than one "run started" line.
  const starts = new Map<string, number>();
  for (const l of logs) for (const id of l.runIds) starts.set(id, (starts.get(id) ?? 0) + 1);
  const startedTwice = runs.filter((r) => (starts.get(r.id) ?? 0) > 1);
  const doubled = finalRuns.filter((x) => x.runs.length > 1 || x.runs.some((r) => (starts.get(r.id) ?? 0) > 1));
  const completed = runs.filter((r) => r.state === "Completed");
  const notSuccess = runs.filter((r) => r.result !== "Success");
  const results = new Map<string, number>();
  for (const r of runs) results.set(`${r.state}/${r.result}`, (results.get(`${r.state}/${r.result}`) ?? 0) + 1);
  const ms = (iso: string | undefined) => (iso ? Date.parse(iso) : NaN);
  const started = runs.filter((r) => r.startDateTime);
  const perIModel = Array.from({ length: IMODELS }, (_, i) => {
    const mine = completed.filter((r) => r.iModel === i + 1);
    const mineStarted = started.filter((r) => r.iModel === i + 1);
    return {
      iModel: i + 1,
      runs: mine.length,
      started: mineStarted.length,
      firstStartS: (Math.min(...mineStarted.map((r) => ms(r.startDateTime))) - triggerAt) / 1000,
      lastEndS: (Math.max(...mine.map((r) => ms(r.endDateTime))) - triggerAt) / 1000,
    };
  });
  const withTimes = completed.filter((r) => r.startDateTime && r.endDateTime);
  const firstQueued = Math.min(...runs.map((r) => ms(r.queuedDateTime)));
  const lastEnded = Math.max(...withTimes.map((r) => ms(r.endDateTime)));
  /** Seconds, or "–" when there is no such time (no run started or ended). */
  const secs = (t: number, digits = 1) => (Number.isFinite(t) ? `${fmt(t, digits)} s` : "–");
  const perConnection = { one: 0, none: 0, more: 0 };
  for (const x of finalRuns) perConnection[x.runs.length === 0 ? "none" : x.runs.length === 1 ? "one" : "more"]++;
  // The most runs Executing at once: a sweep over the [start, end) intervals (ends before starts at the same instant).
  const events = withTimes
    .flatMap((r) => [
      { t: ms(r.startDateTime), d: 1 },
      { t: ms(r.endDateTime), d: -1 },
    ])
    .sort((a, b) => a.t - b.t || a.d - b.d);
  let executing = 0;
  let maxExecuting = 0;
  for (const e of events) maxExecuting = Math.max(maxExecuting, (executing += e.d));
  const runDurations = stats(withTimes.map((r) => ms(r.endDateTime) - ms(r.startDateTime)));
  const queueWaits = stats(started.map((r) => ms(r.startDateTime) - ms(r.queuedDateTime)));
  const iModelOfRun = new Map(runs.map((r) => [r.id, r.iModel]));
  const maxFirstStart = Math.max(...perIModel.map((m) => m.firstStartS));
  const connStats = stats(conns.map((c) => c.connMs));
  const schedStats = stats(conns.map((c) => c.scheduleMs));
  const bothStats = stats(conns.map((c) => c.connMs + c.scheduleMs));
  const tenth = Math.max(1, Math.floor(total / 10));
  const meanOf = (xs: Conn[]) => xs.reduce((a, c) => a + c.connMs + c.scheduleMs, 0) / xs.length;
  const mib = (m: { rssMiB: number; hwmMiB: number } | undefined, k: "rssMiB" | "hwmMiB") =>
    m ? fmt(m[k], 0) : "gone";
  const msCell = (s: { p50: number; p99: number; max: number }) => `${fmt(s.p50)} / ${fmt(s.p99)} / ${fmt(s.max)}`;

  const lines = [
    "",
    `# bench-schedules: ${IMODELS} iModels x ${CONNECTIONS} connections (${total}), each one IFC file and a daily schedule; ${logs.length} worker process(es) (WORKERS=${WORKERS}); ${os.cpus().length} cores, load ${os
      .loadavg()
      .map((l) => fmt(l, 2))
      .join(" ")}`,
    "",
    "| figure | value |",
    "|---|---|",
    `| create ${total} connections + schedules (${CREATE_CONCURRENCY} at a time) | ${fmt(createMs / 1000)} s, ${fmt(total / (createMs / 1000))} per s |`,
    `| per connection, POST /connections: p50 / p99 / max | ${msCell(connStats)} ms |`,
    `| per connection, PUT …/schedule: p50 / p99 / max | ${msCell(schedStats)} ms |`,
    `| per connection, both: p50 / p99 / max | ${msCell(bothStats)} ms |`,
    `| per connection, both: mean of the first / last ${tenth} | ${fmt(meanOf(conns.slice(0, tenth)))} / ${fmt(meanOf(conns.slice(-tenth)))} ms |`,
    ...processes.map(
      (p) =>
        `| ${p.name} memory (pid ${p.pid}): RSS after creation / after the runs / peak (VmHWM) | ${mib(memAfterCreate.get(p.name), "rssMiB")} / ${mib(memAfterRuns.get(p.name), "rssMiB")} / ${mib(memAfterRuns.get(p.name) ?? memAfterCreate.get(p.name), "hwmMiB")} MiB |`,
    ),
    `| GET /connections?iModelId=…&$top=20 (${LIST_REQUESTS}, ${LIST_CONCURRENCY} at a time): p50 / p99 / max | ${msCell(listByIModel)} ms${listByIModel.errors ? `, ${listByIModel.errors} errors` : ""} |`,
    `| GET /connections?$top=20 (${LIST_REQUESTS}, ${LIST_CONCURRENCY} at a time): p50 / p99 / max | ${msCell(listAll)} ms${listAll.errors ? `, ${listAll.errors} errors` : ""} |`,
    `| the same two GETs one at a time: median of 9 | ${fmt(alone.byIModel)} / ${fmt(alone.all)} ms |`,
    `| trigger ${total} schedules (concurrently) | ${fmt(triggerMs / 1000, 2)} s |`,
    `| scheduled runs: connections with one / none (missed) / more (doubled) | ${perConnection.one} / ${perConnection.none} / ${perConnection.more} |`,
    `| runs executed more than once under one record ("run started" twice in the worker logs) | ${startedTwice.length}${startedTwice.length ? `, e.g. ${startedTwice[0].id}` : ""} |`,
    ...(stopped
      ? [
          `| stopped waiting (${stopped}) after ${fmt(waitedMs / 1000, 0)} s: connections without a Completed run | ${unfinished.length} (${unfinished.filter((x) => x.runs.length === 0).length} without any run) |`,
        ]
      : []),
    `| runs by state/result | ${[...results].map(([k, n]) => `${k} ${n}`).join(", ") || "none"} |`,
    `| fires dropped (worker logs) | ${logs.reduce((a, l) => a + l.dropped.length, 0)} |`,
    `| trigger → first run started / last run ended | ${secs((Math.min(...started.map((r) => ms(r.startDateTime))) - triggerAt) / 1000)} / ${secs((lastEnded - triggerAt) / 1000)} |`,
    `| first run queued → last run ended | ${secs((lastEnded - firstQueued) / 1000)} |`,
    `| each run, queued → started: p50 / p99 / max | ${secs(queueWaits.p50 / 1000)} / ${secs(queueWaits.p99 / 1000)} / ${secs(queueWaits.max / 1000)} |`,
    `| each run, started → ended: p50 / p99 / max | ${secs(runDurations.p50 / 1000, 2)} / ${secs(runDurations.p99 / 1000, 2)} / ${secs(runDurations.max / 1000, 2)} |`,
    `| most runs Executing at once (all iModels) | ${maxExecuting} |`,
    ...logs.map(
      (l) =>
        `| ${l.name}: runs started / of iModels | ${l.runIds.length} / ${new Set(l.runIds.map((id) => iModelOfRun.get(id)).filter((m) => m !== undefined)).size} |`,
    ),
    "",
    "| iModel | runs started / Completed | trigger → first run started | trigger → last run ended |",
    "|---|---|---|---|",
    ...perIModel.map(
      (m) => `| ${m.iModel} | ${m.started} / ${m.runs} | ${secs(m.firstStartS)} | ${secs(m.lastEndS)} |`,
    ),
    "",
    ...(stopped ? [`every run Completed within the wait: FAIL (${unfinished.length} connections not)`] : []),
    `none missed: ${passFail(missed.length === 0 && !stopped)}${missed.length ? ` (${missed.length}, e.g. ${missed[0].c.id})` : ""}`,
    `none doubled: ${passFail(doubled.length === 0)}${doubled.length ? ` (${doubled.length}, e.g. ${doubled[0].c.id})` : ""}`,
    `all Success: ${passFail(notSuccess.length === 0 && runs.length > 0)}${notSuccess.length ? ` (${notSuccess.length} not, e.g. ${JSON.stringify(notSuccess[0].error ?? notSuccess[0].result)})` : ""}`,
    `every iModel's first run started within ${TARGET_FIRST_START_S} s of the trigger: ${passFail(maxFirstStart <= TARGET_FIRST_START_S)} (max ${Number.isFinite(maxFirstStart) ? `${fmt(maxFirstStart)} s` : "–: an iModel has no run started"})`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  for (const l of logs) for (const d of l.dropped.slice(0, 5)) log(`${l.name}: ${d}`);
  return missed.length === 0 && doubled.length === 0 && !stopped ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (err: Error) => {
    log(`failed: ${err.stack ?? err.message}`);
    await stacks.stop();
    process.exit(1);
  },
);
