/**
 * The benchmark (`make bench`): one run, one stack of its own, one table.
 *
 * 1. Starts the stack with scripts/stack.sh on dedicated ports (Temporal 19233, UI 20233, FerretDB 19017, API 19000)
 *    and a temporary DATA_DIR; stops it at the end, also on failure and Ctrl-C.
 * 2. Corpus: BENCH_COPIES (50) copies of each IFC sample in samples/ifc under $DATA_DIR/sources/bench, each copy made
 *    unique (and still valid) by a different IfcProject Name; deterministic.
 * 3. Full sync through the service: one iModel, one connection mapping every file, one run (polled every 500 ms).
 * 4. Re-sync after 1% of the files changed (one product renamed in each, so exactly one element changes).
 * 5. Bare loop in this process, no Temporal, no MongoDB: hash + parse + writeSourceFile of the same files into a
 *    fresh .bim. Beside it, timed apart: the completeness checks every file task makes before anything is written
 *    (README "Synchronization": the STEP scan of the bytes and the stat of the file before and after its read), run
 *    once more on the same bytes, to show what they add to a full sync in this same run.
 * 6. Peak memory (VmHWM) of the worker's node process, and of this process during the bare loop.
 * 8. Deletes the connection with its data (a delete job, one transaction per file) and times it.
 * 7. Prints the table. Exit code 0 even when a target is missed (it is a measurement); 1 when a run or a step fails.
 *
 * 9. The API under load: BENCH_LOAD_CONNECTIONS (10,000) connections and BENCH_LOAD_RUNS (100,000) runs seeded
 *    straight into FerretDB (clones of the bench's own records), the connections list at 100 and at all of them, and a
 *    burst of 200 concurrent GETs as the bench user (scripts/bench-api-load.ts). BENCH_LOAD_CONNECTIONS=0 skips it.
 * 11. Costs that grow linearly: a corpus BENCH_GROWTH_FACTOR (10) times larger (2,000 files), spread over iModels of at
 *    most 250 composite models (the product's limit), one run each, one after another: the service time per file
 *    against the 200-file corpus's; the runs' Temporal history per file, projected to a run of 2,000 files; and GET of
 *    a run record of 2,000 tasks seeded from the largest run (scripts/bench-growth.ts). BENCH_GROWTH_FACTOR=0 skips it.
 * 10. One large file: a synthetic IFC of BENCH_LARGE_ELEMENTS (100,000) elements (scripts/bench-large-ifc.ts, about
 *    140 MB) synchronized through the service into an iModel of its own; its elements/s against the corpus's, and
 *    the worker's peak RSS during that run (VmHWM reset before it). BENCH_LARGE_ELEMENTS=0 skips it.
 *
 * Env: BENCH_COPIES (50), BENCH_GROWTH_FACTOR (10), BENCH_LARGE_ELEMENTS (100,000), BENCH_CPU_PROFILE=<dir> (CPU profiles of the worker and of the bare loop, for Chrome DevTools), BENCH_KEEP_DATA=1 (keep the temporary DATA_DIR), BENCH_RUN_TIMEOUT (seconds per run, 3600),
 * BENCH_LOG_LEVEL (LOG_LEVEL of the stack, default info), BENCH_TEMPORAL_PORT / BENCH_TEMPORAL_UI_PORT /
 * BENCH_FERRETDB_PORT / BENCH_FERRETDB_DEBUG_PORT (19018) / BENCH_API_PORT (other ports, when the dedicated ones are taken).
 */
import { spawn, spawnSync, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as inspector from "node:inspector";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { IModelHost } from "@itwin/core-backend";
import { contentHashOf, readSourceFileOnce } from "../activities/source-files";
import { CONNECTORS } from "../activities/connectors";
import { scanStep } from "../activities/connectors/step-scan";
import type { ParsedFile } from "../activities/connectors/types";
import { ifcSamples, memoryOf, positiveInt, SAMPLES, USER_STACK_SETTINGS, withProjectName } from "./bench-common";
import { burst, burstPaths, medianGet, seed, type BurstMeasure, type SeedCounts } from "./bench-api-load";
import { SYNTHETIC_SPATIAL_ELEMENTS, writeSyntheticIfc } from "./bench-large-ifc";
import {
  HISTORY_LIMIT_BYTES,
  HISTORY_LIMIT_EVENTS,
  historyOf,
  PAYLOAD_LIMIT_BYTES,
  seedLongRun,
  timeGets,
  type HistoryMeasure,
} from "./bench-growth";
import {
  closeKeptIModels,
  ensureIModel,
  keepIModelsOpen,
  startIModelHost,
  writeSourceFile,
} from "../activities/imodel/writer";

const ROOT = path.resolve(__dirname, "..");
const STACK = path.join(ROOT, "scripts", "stack.sh");
/** Dedicated ports; BENCH_TEMPORAL_PORT, BENCH_TEMPORAL_UI_PORT, BENCH_FERRETDB_PORT, BENCH_API_PORT override them. */
const PORTS = {
  temporal: positiveInt(process.env.BENCH_TEMPORAL_PORT, 19233),
  ui: positiveInt(process.env.BENCH_TEMPORAL_UI_PORT, 20233),
  ferret: positiveInt(process.env.BENCH_FERRETDB_PORT, 19017),
  /** FerretDB's debug listener (/debug/metrics: requests per command). */
  ferretDebug: positiveInt(process.env.BENCH_FERRETDB_DEBUG_PORT, 19018),
  api: positiveInt(process.env.BENCH_API_PORT, 19000),
};
const API = `http://127.0.0.1:${PORTS.api}`;
const COPIES = positiveInt(process.env.BENCH_COPIES, 50);
const RUN_TIMEOUT_MS = positiveInt(process.env.BENCH_RUN_TIMEOUT, 3600) * 1000;
const POLL_MS = 500;
/** BENCH_CPU_PROFILE=<dir>: CPU profiles of the worker (worker.cpuprofile) and of the bare loop (bare-loop.cpuprofile). */
const CPU_PROFILE_DIR = process.env.BENCH_CPU_PROFILE ? path.resolve(process.env.BENCH_CPU_PROFILE) : undefined;
const MAX_COMPOSITE_MODELS = 250;
const TARGET_RESYNC_RATIO = 0.03;
const TARGET_SERVICE_VS_BARE = 0.85;
/** The writer's fixed cost: mean write time (ms) per file of the smallest sample in the bare loop. */
const TARGET_SMALL_FILE_WRITE_MS = 15;
/** CPU seconds of FerretDB and of the Temporal server during the full sync of 200 files (scaled by the corpus size). */
const TARGET_SERVER_CPU_S_PER_200_FILES = 3;
const TARGET_WORKER_PEAK_MIB = 400;
/**
 * The completeness checks (STEP scan, stat before and after the read) as a share of the bare loop's time: a full sync
 * must not be slower for them beyond the machine's noise (repeated full syncs here differ by several per cent).
 */
const TARGET_CHECKS_SHARE = 0.02;
/** The API load phase: BENCH_LOAD_CONNECTIONS (10,000; 0 skips the phase) and BENCH_LOAD_RUNS (100,000) records. */
const LOAD_CONNECTIONS = nonNegativeInt(process.env.BENCH_LOAD_CONNECTIONS, 10_000);
const LOAD_RUNS = nonNegativeInt(process.env.BENCH_LOAD_RUNS, 100_000);
const TARGET_BURST_RPS = 400;
const TARGET_BURST_P99_MS = 600;
const TARGET_LIST_GROWTH = 1.2;
/** The "one large file" phase: a synthetic IFC of BENCH_LARGE_ELEMENTS (100,000; 0 skips the phase) elements. */
const LARGE_ELEMENTS = nonNegativeInt(process.env.BENCH_LARGE_ELEMENTS, 100_000);
/** Its elements/s relative to the corpus's full sync. */
const TARGET_LARGE_VS_CORPUS = 0.8;
/** The "costs that grow linearly" phase: a corpus BENCH_GROWTH_FACTOR (10; 0 skips the phase) times BENCH_COPIES. */
const GROWTH_FACTOR = nonNegativeInt(process.env.BENCH_GROWTH_FACTOR, 10);
/** Its service time per file against the corpus's. */
const TARGET_GROWTH_PER_FILE = 1.2;
/** The run whose GET is timed, and the target of that GET. */
const GROWTH_RUN_TASKS = 2_000;
const TARGET_RUN_GET_MS = 1_000;
/** A run of GROWTH_RUN_TASKS files must stay "well inside" Temporal's history limits: at most this share of them. */
const TARGET_HISTORY_SHARE = 0.5;

function nonNegativeInt(v: string | undefined, dflt: number): number {
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number >= 0, got "${v}"`);
  return n;
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number, digits = 1) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const fmtInt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });

// ---------------------------------------------------------------------------------------------------------
// Stack
// ---------------------------------------------------------------------------------------------------------

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-bench-"));
/** The admin's API key of the bench stack (the API bootstraps the admin user with it). */
const adminApiKey = `isk_bench_${randomBytes(24).toString("base64url")}`;
const stackEnv: NodeJS.ProcessEnv = (() => {
  const env = { ...process.env };
  // The user's own stack settings must not leak into the bench stack.
  for (const k of USER_STACK_SETTINGS) delete env[k];
  return {
    ...env,
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(PORTS.temporal),
    TEMPORAL_UI_PORT: String(PORTS.ui),
    FERRETDB_PORT: String(PORTS.ferret),
    FERRETDB_DEBUG_ADDR: `127.0.0.1:${PORTS.ferretDebug}`,
    API_PORT: String(PORTS.api),
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL || "info",
    ADMIN_API_KEY: adminApiKey,
    ...(CPU_PROFILE_DIR
      ? { WORKER_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${CPU_PROFILE_DIR} --cpu-prof-name=worker.cpuprofile` }
      : {}),
  };
})();
// The launcher's own output goes to stderr, so that stdout holds the results only.
const stackSpawn: SpawnOptions = { cwd: ROOT, env: stackEnv, stdio: ["ignore", 2, 2] };

let stackTouched = false; // an `up` was attempted: `down` is due
/** Settles when the launcher child running now (if any) has exited. */
let launcherExited: Promise<void> = Promise.resolve();
let launcherPid: number | undefined;

/**
 * Runs scripts/stack.sh in its own process group, so that a Ctrl-C meant for the bench does not interrupt a `down`
 * half-way (an interrupted `up` is handled by waiting for it to end, see {@link cleanup}).
 */
function stack(args: string[]): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    const child = spawn("bash", [STACK, ...args], { ...stackSpawn, detached: true });
    launcherPid = child.pid;
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (launcherPid === child.pid) launcherPid = undefined;
      if (code === 0) resolve();
      else reject(new Error(`scripts/stack.sh ${args.join(" ")} failed (${signal ?? `exit ${code}`})`));
    });
  });
  launcherExited = done.then(
    () => undefined,
    () => undefined,
  );
  return done;
}

let cleaning: Promise<void> | undefined;

/**
 * Stops the stack and removes the data unless kept; once. Asynchronous on purpose: tsx's CLI SIGKILLs a child whose
 * event loop does not acknowledge a relayed signal within 30 ms, so a signal handler must not block.
 */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (stackTouched) {
      // An `up` still running is interrupted and ends first (its failure path stops what it started).
      if (launcherPid !== undefined) {
        try {
          process.kill(-launcherPid, "SIGINT");
        } catch {
          // already gone
        }
      }
      await launcherExited;
      log("stopping the stack");
      await stack(["down"]).catch((e: Error) => log(`warning: ${e.message}; DATA_DIR=${dataDir}`));
    }
    if (process.env.BENCH_KEEP_DATA === "1") log(`data kept in ${dataDir}`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const [sig, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const) {
  process.on(sig, () => {
    log(cleaning ? `${sig}: still stopping the stack` : `${sig}: stopping`);
    void cleanup().finally(() => process.exit(code));
  });
}

// ---------------------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------------------

interface ApiResponse {
  status: number;
  location: string | null;
  body: any;
}

/** The API key calls are made with: the admin's to create the bench user, then the bench user's (the owner). */
let apiKey = "";

async function call(method: string, urlPath: string, body?: unknown): Promise<ApiResponse> {
  const res = await fetch(`${API}${urlPath}`, {
    method,
    redirect: "manual",
    headers: {
      ...(body ? { "content-type": "application/json" } : {}),
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, location: res.headers.get("location"), body: parsed };
}

function expectStatus(res: ApiResponse, status: number, what: string): void {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
}

interface Counts {
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

interface TaskJson {
  sourceFileId: string;
  path: string;
  state: string;
  result: string;
  error?: { code: string; message: string };
  elements: Counts;
  durationMs?: number;
  startDateTime?: string;
  endDateTime?: string;
}

interface RunMeasure {
  run: any;
  tasks: TaskJson[];
  /** Run record: startDateTime → endDateTime. */
  serverMs: number;
  /** Run record: queuedDateTime → endDateTime. */
  queuedToEndMs: number;
  /** This process: POST …/run → first poll that saw Completed. */
  clientMs: number;
  totals: Counts;
  /** GETs of the run while waiting. */
  polls: number;
  location: string;
}

/** Starts a run (default: POST …/run; a delete job: DELETE …?mode=deleteData) and waits for it to complete. */
async function runSync(
  connectionId: string,
  label: string,
  start = () => call("POST", `/connections/${connectionId}/run`),
): Promise<RunMeasure> {
  const t0 = performance.now();
  const r = await start();
  expectStatus(r, 202, `${label}: start run`);
  if (!r.location) throw new Error(`${label}: no Location for the new run`);
  let run: any;
  let lastReport = 0;
  let lastProgress = "";
  let polls = 0;
  for (;;) {
    polls++;
    const g = await call("GET", r.location);
    expectStatus(g, 200, `${label}: read run`);
    run = g.body.run;
    if (run.state === "Completed") break;
    const tasks: TaskJson[] = (run.jobs ?? []).flatMap((j: any) => j.tasks ?? []);
    const progress = `${run.state} ${tasks.filter((t) => t.state === "Completed").length}/${tasks.length || "?"} files`;
    if (progress !== lastProgress && performance.now() - lastReport > 10_000) {
      log(`${label}: ${progress} after ${fmt((performance.now() - t0) / 1000)} s`);
      lastReport = performance.now();
      lastProgress = progress;
    }
    if (performance.now() - t0 > RUN_TIMEOUT_MS)
      throw new Error(`${label}: not Completed after ${RUN_TIMEOUT_MS / 1000} s (${progress})`);
    await sleep(POLL_MS);
  }
  const clientMs = performance.now() - t0;
  const tasks: TaskJson[] = (run.jobs ?? []).flatMap((j: any) => j.tasks ?? []);
  const totals: Counts = { inserted: 0, updated: 0, deleted: 0, unchanged: 0 };
  for (const t of tasks) for (const k of Object.keys(totals) as (keyof Counts)[]) totals[k] += t.elements?.[k] ?? 0;
  const serverMs = Date.parse(run.endDateTime) - Date.parse(run.startDateTime);
  const queuedToEndMs = Date.parse(run.endDateTime) - Date.parse(run.queuedDateTime);
  log(
    `${label}: ${run.result} in ${fmt(serverMs / 1000, 2)} s (run record), ${fmt(clientMs / 1000, 2)} s (client); ` +
      `inserted ${totals.inserted}, updated ${totals.updated}, deleted ${totals.deleted}, unchanged ${totals.unchanged}`,
  );
  return { run, tasks, serverMs, queuedToEndMs, clientMs, totals, polls, location: r.location };
}

// ---------------------------------------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------------------------------------

interface Corpus {
  dir: string;
  /** Paths relative to `dir`, in mapping order. */
  files: string[];
  bytes: number;
  /** Sample file name of each corpus file. */
  sampleOf: Map<string, string>;
}

/** `copies` unique copies of each IFC sample in `dir` (see the file's header, step 2). */
function makeCorpus(dir: string, copies: number): Corpus {
  const samples = ifcSamples();
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const sampleOf = new Map<string, string>();
  let bytes = 0;
  for (const sample of samples) {
    // STEP files are 7-bit text (non-ASCII is \X2\-escaped); latin1 keeps any other byte as it is.
    const text = fs.readFileSync(path.join(SAMPLES, sample), "latin1");
    const stem = sample.replace(/\.ifc$/i, "");
    for (let k = 0; k < copies; k++) {
      const name = `${stem}-${String(k).padStart(Math.max(3, String(copies - 1).length), "0")}.ifc`;
      const content = withProjectName(text, `imodel-sync bench ${stem} copy ${k}`, sample);
      fs.writeFileSync(path.join(dir, name), content, "latin1");
      bytes += Buffer.byteLength(content, "latin1");
      files.push(name);
      sampleOf.set(name, sample);
    }
  }
  return { dir, files, bytes, sampleOf };
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function checksums(parsed: ParsedFile): Map<string, string> {
  return new Map(parsed.elements.map((e) => [e.identifier, e.checksum]));
}

/**
 * Renames one product of the file (its IFC Name), choosing the first element whose instance line can be found by its
 * GlobalId, and checks by parsing before and after that exactly one element's checksum changed.
 * @returns the GlobalId of the renamed element.
 */
async function renameOneElement(absolutePath: string, newName: string): Promise<string> {
  const original = fs.readFileSync(absolutePath, "latin1");
  const parse = async () => CONNECTORS.IFC(fs.readFileSync(absolutePath), path.basename(absolutePath));
  const before = checksums(await parse());
  for (const gid of before.keys()) {
    const re = new RegExp(
      `(^#\\d+\\s*=\\s*IFC[A-Z0-9_]+\\s*\\(\\s*'${escapeRe(gid)}'\\s*,\\s*(?:#\\d+|\\$)\\s*,\\s*)('(?:[^']|'')*'|\\$)`,
      "gmi",
    );
    const matches = [...original.matchAll(re)];
    if (matches.length !== 1 || matches[0][2] === `'${newName}'`) continue;
    fs.writeFileSync(
      absolutePath,
      original.replace(re, (_m, prefix: string) => `${prefix}'${newName}'`),
      "latin1",
    );
    const after = checksums(await parse());
    const changed = [...before].filter(([id, c]) => after.get(id) !== c).map(([id]) => id);
    if (after.size === before.size && changed.length === 1 && changed[0] === gid) return gid;
    fs.writeFileSync(absolutePath, original, "latin1"); // not a clean single-element change: try the next one
  }
  throw new Error(`${absolutePath}: found no product whose rename changes exactly one element`);
}

// ---------------------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------------------

function childrenOf(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      for (const c of text ? text.split(/\s+/) : []) out.add(Number(c));
    }
  } catch {
    // no /proc/<pid>/task/*/children (kernel without CONFIG_PROC_CHILDREN): ask ps
    const r = spawnSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" });
    for (const c of (r.stdout ?? "").split(/\s+/).filter(Boolean)) out.add(Number(c));
  }
  return [...out];
}

function cmdlineOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

function exeOf(pid: number): string {
  try {
    return path.basename(fs.readlinkSync(`/proc/${pid}/exe`));
  } catch {
    return "";
  }
}

/**
 * The node process that runs `marker` (e.g. worker/main.ts) among the process behind `$DATA_DIR/run/<name>.pid` and
 * its descendants: the deepest node process whose command line names the marker (tsx's CLI is a node process too,
 * and runs the script in a child node process).
 */
function appProcess(name: string, marker: string): { pid: number; cmd: string } | undefined {
  return deepestProcess(name, (pid, cmd) => cmd.includes(marker) && exeOf(pid).startsWith("node"));
}

/**
 * The deepest process matching `matches` among the process behind `$DATA_DIR/run/<name>.pid` and its descendants
 * (the pid file names scripts/supervise.sh, which runs the server as its child).
 */
function deepestProcess(
  name: string,
  matches: (pid: number, cmd: string) => boolean,
): { pid: number; cmd: string } | undefined {
  let root: number;
  try {
    root = Number(fs.readFileSync(path.join(dataDir, "run", `${name}.pid`), "utf8").trim());
  } catch {
    return undefined;
  }
  let best: { pid: number; cmd: string; depth: number } | undefined;
  const walk = (pid: number, depth: number) => {
    const cmd = cmdlineOf(pid);
    if (matches(pid, cmd) && (!best || depth > best.depth)) best = { pid, cmd, depth };
    if (depth < 8) for (const c of childrenOf(pid)) walk(c, depth + 1);
  };
  walk(root, 0);
  return best && { pid: best.pid, cmd: best.cmd };
}

/** Resets a process's VmHWM (default: this one's) to its current RSS (Linux: write 5 to clear_refs); false when not possible. */
function resetPeakRss(pid: number | "self" = "self"): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) a process has used so far (undefined when it is gone). */
function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // f[0] is field 3 (state)
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS; // fields 14 utime, 15 stime
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number((r.stdout ?? "").trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** The processes of the stack whose CPU time is sampled around each run. */
function stackProcesses(): { name: string; pid: number }[] {
  const out: { name: string; pid: number }[] = [];
  for (const [name, marker] of [
    ["worker", "worker/main.ts"],
    ["api", "api/server.ts"],
  ] as const) {
    const p = appProcess(name, marker);
    if (p) out.push({ name, pid: p.pid });
  }
  for (const name of ["temporal", "ferretdb"]) {
    // the server binary itself (the executables are named after the server), not its supervisor
    const p = deepestProcess(name, (pid) => exeOf(pid) === name);
    if (p) out.push({ name, pid: p.pid });
  }
  return out;
}

/** FerretDB's request counters by command (its /debug/metrics); empty when they cannot be read. */
async function ferretCommands(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const res = await fetch(`http://127.0.0.1:${PORTS.ferretDebug}/debug/metrics`);
    for (const line of (await res.text()).split("\n")) {
      const m = /^ferretdb_client_requests_total\{([^}]*)\} ([0-9.e+]+)$/.exec(line);
      const command = m && /command="([^"]*)"/.exec(m[1])?.[1];
      if (m && command) out.set(command, (out.get(command) ?? 0) + Number(m[2]));
    }
  } catch {
    // no debug listener: the line is left out
  }
  return out;
}

/** CPU seconds per stack process spent while `work` ran. */
async function withCpu<T>(work: () => Promise<T>): Promise<{ value: T; cpu: { name: string; seconds: number }[] }> {
  const procs = stackProcesses();
  const before = procs.map((p) => cpuSecondsOf(p.pid));
  const value = await work();
  const cpu = procs.map((p, i) => ({ name: p.name, seconds: (cpuSecondsOf(p.pid) ?? NaN) - (before[i] ?? NaN) }));
  return { value, cpu };
}

const cpuText = (cpu: { name: string; seconds: number }[]) => cpu.map((c) => `${c.name} ${fmt(c.seconds)}`).join(", ");

// ---------------------------------------------------------------------------------------------------------
// Bare loop
// ---------------------------------------------------------------------------------------------------------

interface BareMeasure {
  ms: number;
  inserted: number;
  hashMs: number;
  parseMs: number;
  writeMs: number;
  peakMiB: number;
  baselineMiB: number;
  peakReset: boolean;
  /** CPU seconds (user + system) of this process during the loop. */
  cpuS: number;
  /** The completeness checks run once more on each file's bytes after the loop, timed apart (ms, summed). */
  checksMs: number;
  /** Per file, in corpus order. */
  perFile: { file: string; elements: number; hashMs: number; parseMs: number; writeMs: number }[];
}

/** Runs `work` under the V8 profiler when BENCH_CPU_PROFILE is set; writes `<dir>/<name>.cpuprofile`. */
async function withCpuProfile<T>(name: string, work: () => Promise<T>): Promise<T> {
  if (!CPU_PROFILE_DIR) return work();
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<any>((resolve, reject) =>
      session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
    );
  await post("Profiler.enable");
  await post("Profiler.start");
  try {
    return await work();
  } finally {
    const { profile } = await post("Profiler.stop");
    fs.mkdirSync(CPU_PROFILE_DIR, { recursive: true });
    fs.writeFileSync(path.join(CPU_PROFILE_DIR, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

async function bareLoop(corpus: Corpus): Promise<BareMeasure> {
  await startIModelHost(path.join(dataDir, "bench-cache"), { profileName: "bench-" + process.pid });
  keepIModelsOpen(2_000); // as the worker does
  const bimPath = path.join(dataDir, "bare", "bench-bare.bim");
  const runId = `bare-${process.pid}`;
  const peakReset = resetPeakRss();
  const baselineMiB = memoryOf("self")?.rssMiB ?? NaN;
  let hashMs = 0;
  let parseMs = 0;
  let writeMs = 0;
  let inserted = 0;
  let checksMs = 0;
  const perFile: BareMeasure["perFile"] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const [i, file] of corpus.files.entries()) {
    const absolutePath = path.join(corpus.dir, file);
    const a = performance.now();
    // as the file task does: one read, the hash and the parse of the same bytes
    const bytes = await readSourceFileOnce(absolutePath, file);
    const contentHash = contentHashOf(bytes);
    const b = performance.now();
    const parsed = await CONNECTORS.IFC(bytes, file);
    const c = performance.now();
    ensureIModel(bimPath, "bench bare loop");
    const written = await writeSourceFile({
      bimPath,
      connectionId: "bench-bare",
      connectionName: "Bench bare loop",
      sourceFileId: `file-${i}`,
      sourceFilePath: file,
      contentHash,
      runId,
      parsed,
    });
    const d = performance.now();
    hashMs += b - a;
    parseMs += c - b;
    writeMs += d - c;
    inserted += written.inserted;
    perFile.push({ file, elements: written.inserted, hashMs: b - a, parseMs: c - b, writeMs: d - c });
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const peakMiB = memoryOf("self")?.hwmMiB ?? process.resourceUsage().maxRSS / 1024;
  for (const file of corpus.files) {
    const absolutePath = path.join(corpus.dir, file);
    checksMs += await timeCompletenessChecks(absolutePath, await fs.promises.readFile(absolutePath));
  }
  await closeKeptIModels();
  await IModelHost.shutdown();
  return { ms, inserted, hashMs, parseMs, writeMs, peakMiB, baselineMiB, peakReset, cpuS, checksMs, perFile };
}

/**
 * Runs the completeness checks of a file task once more, on bytes already read (ms): the STEP scan (`scanStep`, part
 * of the IFC connector's parse) and the two stats that `readSourceFileOnce` makes around its read.
 * @throws Error when the scan does not find the file complete (the corpus is made of complete files).
 */
async function timeCompletenessChecks(absolutePath: string, bytes: Uint8Array): Promise<number> {
  const t = performance.now();
  const before = await fs.promises.stat(absolutePath, { bigint: true });
  const scan = scanStep(bytes);
  const after = await fs.promises.stat(absolutePath, { bigint: true });
  const ms = performance.now() - t;
  if (scan.kind !== "complete") throw new Error(`${absolutePath}: ${scan.problem}`);
  if (before.mtimeNs !== after.mtimeNs) throw new Error(`${absolutePath} changed during the bench`);
  return ms;
}

// ---------------------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------------------

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const pct = (x: number) => `${fmt(x * 100, 2)} %`;

const loadAtStart = os.loadavg();

async function main(): Promise<number> {
  log(`DATA_DIR ${dataDir}`);

  // 2. Corpus (before the stack, it needs no service).
  if (ifcSamples().length * COPIES > MAX_COMPOSITE_MODELS) {
    throw new Error(
      `${ifcSamples().length} samples x ${COPIES} copies exceeds ${MAX_COMPOSITE_MODELS} composite models per iModel; lower BENCH_COPIES`,
    );
  }
  const corpus = makeCorpus(path.join(dataDir, "sources", "bench"), COPIES);
  const corpusMB = corpus.bytes / 1e6;
  log(`corpus: ${corpus.files.length} IFC files, ${fmt(corpusMB, 2)} MB in ${corpus.dir}`);

  // 1. Stack.
  stackTouched = true;
  const tUp = performance.now();
  await stack(["up"]);
  log(`stack up in ${fmt((performance.now() - tUp) / 1000)} s`);

  // 3. Full sync, as a user the admin creates (the demo does the same): that user owns the connection.
  apiKey = adminApiKey;
  const u = await call("POST", "/users", { email: `bench-${process.pid}@imodel-sync.localhost`, name: "Bench" });
  expectStatus(u, 201, "create the bench user (with ADMIN_API_KEY)");
  apiKey = u.body.apiKey;
  const m = await call("POST", "/imodels", { name: `Bench ${new Date().toISOString()}` });
  expectStatus(m, 201, "create iModel");
  const iModel = m.body.iModel;
  const c = await call("POST", "/connections", {
    iModelId: iModel.id,
    displayName: "Bench IFC corpus",
    source: { type: "local", path: corpus.dir },
    sourceFiles: corpus.files.map((f) => ({ path: f, connectorType: "IFC" })),
  });
  expectStatus(c, 201, "create connection");
  const connection = c.body.connection;
  const fileIdOf = new Map<string, string>(connection.sourceFiles.map((f: any) => [f.path, f.id]));

  const commandsBefore = await ferretCommands();
  const { value: full, cpu: fullCpu } = await withCpu(() => runSync(connection.id, "full sync"));
  const commandsAfter = await ferretCommands();
  const fullCommands = [...commandsAfter]
    .map(([command, n]) => [command, n - (commandsBefore.get(command) ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const failures: string[] = [];
  if (full.run.result !== "Success") {
    const bad = full.tasks.filter((t) => t.result !== "Success").slice(0, 5);
    failures.push(
      `full sync result ${full.run.result}: ${bad.map((t) => `${t.path} ${t.result} ${t.error?.code ?? ""} ${t.error?.message ?? ""}`).join("; ")}`,
    );
  }
  if (full.tasks.length !== corpus.files.length)
    failures.push(`full sync has ${full.tasks.length} tasks for ${corpus.files.length} files`);

  // 4. Re-sync after 1% of the files changed: one product renamed in each.
  const nChanged = Math.max(1, Math.round(corpus.files.length / 100));
  const samples = [...new Set(corpus.sampleOf.values())];
  const changed: string[] = [];
  for (let i = 0; i < nChanged; i++) {
    // Spread over the samples (in name order) and over their copies, deterministically.
    const sample = samples[i % samples.length];
    const ofSample = corpus.files.filter((f) => corpus.sampleOf.get(f) === sample);
    const file = ofSample[Math.floor(((i + 1) * ofSample.length) / (nChanged + 1)) % ofSample.length];
    const gid = await renameOneElement(path.join(corpus.dir, file), `imodel-sync bench renamed ${i}`);
    log(`changed ${file}: renamed element ${gid}`);
    changed.push(file);
  }
  const { value: resync, cpu: resyncCpu } = await withCpu(() => runSync(connection.id, "re-sync"));
  const changedIds = new Set(changed.map((f) => fileIdOf.get(f)));
  const checkProblems: string[] = [];
  for (const t of resync.tasks) {
    if (changedIds.has(t.sourceFileId)) {
      const e = t.elements;
      if (t.result !== "Success" || e.updated !== 1 || e.inserted !== 0 || e.deleted !== 0) {
        checkProblems.push(`${t.path}: ${t.result} ${JSON.stringify(e)}${t.error ? ` ${t.error.code}` : ""}`);
      }
    } else if (t.result !== "Skipped") {
      checkProblems.push(`${t.path}: ${t.result} (expected Skipped)`);
    }
  }
  if (resync.tasks.length !== corpus.files.length)
    checkProblems.push(`${resync.tasks.length} tasks for ${corpus.files.length} files`);
  if (resync.run.result !== "Success" && resync.run.result !== "Skipped") {
    failures.push(`re-sync result ${resync.run.result}${resync.run.error ? ` (${resync.run.error.message})` : ""}`);
  }

  // 6. Worker peak memory, sampled after the runs.
  const worker = appProcess("worker", "worker/main.ts");
  const workerMem = worker ? memoryOf(worker.pid) : undefined;
  if (worker) log(`worker node process ${worker.pid}: ${worker.cmd}`);
  else log("warning: worker process not found");
  const others: string[] = [];
  for (const [name, marker] of [
    ["api", "api/server.ts"],
    ["temporal", "server start-dev"],
    ["ferretdb", "ferretdb"],
  ] as const) {
    const pid =
      name === "api"
        ? appProcess(name, marker)?.pid
        : deepestProcess(name, (p, cmd) => exeOf(p) === name || cmd.includes(marker))?.pid;
    const mem = pid ? memoryOf(pid) : undefined;
    if (mem) others.push(`${name} ${fmt(mem.hwmMiB, 0)}`);
  }

  // What one poll costs the stack (the API reads the run and its task records from FerretDB), measured idle.
  const POLL_SAMPLES = 10;
  const { value: pollWallMs, cpu: pollCpu } = await withCpu(async () => {
    const t = performance.now();
    for (let i = 0; i < POLL_SAMPLES; i++) expectStatus(await call("GET", full.location), 200, "read run");
    return (performance.now() - t) / POLL_SAMPLES;
  });
  const pollCpuS =
    sum(pollCpu.filter((p) => p.name === "api" || p.name === "ferretdb").map((p) => p.seconds)) / POLL_SAMPLES;

  // 5. Bare loop (the stack is idle meanwhile).
  log(`bare loop: ${corpus.files.length} files, hash + parse + writeSourceFile, no Temporal`);
  const bare = await withCpuProfile("bare-loop", () => bareLoop(corpus));
  log(`bare loop: ${fmt(bare.ms / 1000, 2)} s, inserted ${bare.inserted}`);

  // 8. Delete the connection with its data (a delete job: one transaction per file).
  const removal = await runSync(connection.id, "delete with data", () =>
    call("DELETE", `/connections/${connection.id}?mode=deleteData`),
  );
  if (removal.run.result !== "Success") failures.push(`delete job result ${removal.run.result}`);
  if (removal.totals.deleted !== full.totals.inserted)
    failures.push(`delete job removed ${removal.totals.deleted} elements of ${full.totals.inserted}`);

  // 11. Costs that grow linearly: the corpus GROWTH_FACTOR times larger, over iModels of at most 250 composite models
  // each (one connection each), synchronized one after another; then the GET of a run of GROWTH_RUN_TASKS tasks.
  let growth:
    | {
        files: number;
        bytes: number;
        runs: RunMeasure[];
        histories: HistoryMeasure[];
        /** GET of a run of GROWTH_RUN_TASKS tasks as completeRun stores it, and without its task pages. */
        runGet: { tasks: number; firstMs: number; medianMs: number; unpaged: { firstMs: number; medianMs: number } };
      }
    | undefined;
  if (GROWTH_FACTOR > 0) {
    const big = makeCorpus(path.join(dataDir, "sources", "bench-growth"), COPIES * GROWTH_FACTOR);
    log(`${GROWTH_FACTOR}x corpus: ${big.files.length} IFC files, ${fmt(big.bytes / 1e6, 2)} MB`);
    const runs: RunMeasure[] = [];
    // Every iModel gets the same mix of samples as the corpus (files dealt out in turn).
    const groups = Math.ceil(big.files.length / MAX_COMPOSITE_MODELS);
    for (let g = 0; g < groups; g++) {
      const files = big.files.filter((_, i) => i % groups === g);
      const gm = await call("POST", "/imodels", { name: `Bench growth ${g} ${new Date().toISOString()}` });
      expectStatus(gm, 201, `create growth iModel ${g}`);
      const gc = await call("POST", "/connections", {
        iModelId: gm.body.iModel.id,
        displayName: `Bench growth ${g}`,
        source: { type: "local", path: big.dir },
        sourceFiles: files.map((f) => ({ path: f, connectorType: "IFC" })),
      });
      expectStatus(gc, 201, `create growth connection ${g}`);
      const r = await runSync(gc.body.connection.id, `${GROWTH_FACTOR}x corpus, iModel ${g + 1}`);
      if (r.run.result !== "Success" || r.tasks.length !== files.length)
        failures.push(
          `${GROWTH_FACTOR}x corpus, iModel ${g + 1}: ${r.run.result}, ${r.tasks.length} tasks for ${files.length} files`,
        );
      runs.push(r);
    }
    const histories = await historyOf(
      `127.0.0.1:${PORTS.temporal}`,
      runs.map((r) => r.run.workflowId),
    );
    // A run of GROWTH_RUN_TASKS tasks, seeded from the largest run's records (a run of the product reaches that many
    // tasks only through reference files).
    const longest = runs.reduce((a, b) => (b.tasks.length > a.tasks.length ? b : a));
    const mongoUri = `mongodb://127.0.0.1:${PORTS.ferret}/imodelsync`;
    const timedRunGet = async (pages: boolean) => {
      const id = await seedLongRun(mongoUri, longest.run.id, GROWTH_RUN_TASKS, pages);
      const runPath = `/connections/${longest.run.connectionId}/runs/${id}`;
      const timed = await timeGets((p) => call("GET", p), runPath);
      const check = await call("GET", runPath);
      const seen = (check.body.run.jobs ?? []).flatMap((j: any) => j.tasks ?? []).length;
      if (seen !== GROWTH_RUN_TASKS)
        failures.push(`GET of the seeded run ${id} answered ${seen} tasks of ${GROWTH_RUN_TASKS}`);
      return timed;
    };
    const runGet = { tasks: GROWTH_RUN_TASKS, ...(await timedRunGet(true)), unpaged: await timedRunGet(false) };
    growth = { files: big.files.length, bytes: big.bytes, runs, histories, runGet };
  }

  // 10. One large file, into an iModel of its own (before the API load phase fills the database).
  let large:
    | {
        elements: number;
        bytes: number;
        generateS: number;
        run: RunMeasure;
        peakMiB?: number;
        /** The worker's RSS 5 s after the run. */
        afterMiB?: number;
        peakReset: boolean;
      }
    | undefined;
  if (LARGE_ELEMENTS > 0) {
    const dir = path.join(dataDir, "sources", "bench-large");
    fs.mkdirSync(dir, { recursive: true });
    const name = `synthetic-${LARGE_ELEMENTS}.ifc`;
    const tGen = performance.now();
    const bytes = writeSyntheticIfc(path.join(dir, name), LARGE_ELEMENTS);
    const generateS = (performance.now() - tGen) / 1000;
    log(`one large file: ${name}, ${fmt(bytes / 1e6, 1)} MB, generated in ${fmt(generateS, 1)} s`);
    const lm = await call("POST", "/imodels", { name: `Bench large file ${new Date().toISOString()}` });
    expectStatus(lm, 201, "create the large file's iModel");
    const lc = await call("POST", "/connections", {
      iModelId: lm.body.iModel.id,
      displayName: "Bench large file",
      source: { type: "local", path: dir },
      sourceFiles: [{ path: name, connectorType: "IFC" }],
    });
    expectStatus(lc, 201, "create the large file's connection");
    const pid = appProcess("worker", "worker/main.ts")?.pid;
    // Not possible: the peak printed is the worker's lifetime peak.
    const peakReset = pid !== undefined && resetPeakRss(pid);
    const run = await runSync(lc.body.connection.id, "one large file");
    const peakMiB = pid ? memoryOf(pid)?.hwmMiB : undefined;
    // What the worker keeps once the file is done: after the kept iModel is closed (2 s idle) and a moment for GC.
    await sleep(5_000);
    const afterMiB = pid ? memoryOf(pid)?.rssMiB : undefined;
    large = { elements: LARGE_ELEMENTS, bytes, generateS, run, peakMiB, afterMiB, peakReset };
    const expected = LARGE_ELEMENTS + SYNTHETIC_SPATIAL_ELEMENTS;
    if (run.run.result !== "Success") {
      const t = run.tasks[0];
      failures.push(
        `one large file: result ${run.run.result}${t?.error ? ` (${t.error.code}: ${t.error.message})` : ""}`,
      );
    } else if (run.totals.inserted !== expected) {
      failures.push(`one large file: inserted ${run.totals.inserted} elements of ${expected}`);
    }
  }

  // 9. The API under load: records seeded straight into the database, then list costs and a burst of GETs.
  let apiLoad:
    | {
        seedS: number;
        counts: SeedCounts;
        listSmallMs: number;
        listLargeMs: number;
        /** The same list of one iModel's connections (`iModelId=`), at both sizes. */
        iModelListSmallMs: number;
        iModelListLargeMs: number;
        small: SeedCounts;
        b: BurstMeasure;
      }
    | undefined;
  if (LOAD_CONNECTIONS > 0) {
    const me = await call("GET", "/users/me");
    expectStatus(me, 200, "read the bench user");
    const template = { iModelId: iModel.id, connectionId: connection.id, runId: full.run.id, userId: me.body.user.id };
    const mongoUri = `mongodb://127.0.0.1:${PORTS.ferret}/imodelsync`;
    const small: SeedCounts = { iModels: 10, connections: 100, runs: 1_000 };
    const counts: SeedCounts = {
      iModels: 100,
      connections: Math.max(LOAD_CONNECTIONS, small.connections),
      runs: Math.max(LOAD_RUNS, small.runs),
    };
    log(`API load: seeding ${small.connections} connections, ${small.runs} runs`);
    const first = await seed(mongoUri, template, small, { iModels: 0, connections: 0, runs: 0 });
    const listSmallMs = await medianGet(API, apiKey, "/connections?$top=5");
    const iModelList = "/connections?iModelId=bench-load-imodel-0&$top=5";
    const iModelListSmallMs = await medianGet(API, apiKey, iModelList);
    log(`API load: seeding up to ${counts.connections} connections, ${counts.runs} runs`);
    const second = await seed(mongoUri, template, counts, small);
    const listLargeMs = await medianGet(API, apiKey, "/connections?$top=5");
    const iModelListLargeMs = await medianGet(API, apiKey, iModelList);
    log("API load: a burst of 200 concurrent GETs");
    const b = await burst(API, apiKey, burstPaths(counts));
    apiLoad = {
      seedS: first.seconds + second.seconds,
      counts,
      listSmallMs,
      listLargeMs,
      iModelListSmallMs,
      iModelListLargeMs,
      small,
      b,
    };
  }

  // 7. Table.
  const fullS = full.serverMs / 1000;
  const resyncS = resync.serverMs / 1000;
  const serviceEps = full.totals.inserted / fullS;
  const bareEps = bare.inserted / (bare.ms / 1000);
  const resyncRatio = resync.serverMs / full.serverMs;
  const resyncClientRatio = resync.clientMs / full.clientMs;
  const serviceVsBare = serviceEps / bareEps;
  const checksShare = bare.checksMs / bare.ms;
  const passFail = (ok: boolean) => (ok ? "PASS" : "FAIL");
  // The writer's fixed cost per file: the sample with the fewest elements, mean over its copies.
  const smallest = (() => {
    const bySample = new Map<string, { elements: number; writeMs: number[] }>();
    for (const f of bare.perFile) {
      const sample = corpus.sampleOf.get(f.file) ?? f.file;
      const entry = bySample.get(sample) ?? { elements: f.elements, writeMs: [] };
      entry.writeMs.push(f.writeMs);
      bySample.set(sample, entry);
    }
    const [first] = [...bySample.values()].sort((a, b) => a.elements - b.elements);
    return { elements: first?.elements ?? 0, writeMs: first ? sum(first.writeMs) / first.writeMs.length : NaN };
  })();
  const rows: [string, string, string, string][] = [
    ["corpus", `${corpus.files.length} files, ${fmt(corpusMB, 2)} MB`, "", ""],
    [
      "full sync time (run record / client)",
      `${fmt(fullS, 2)} s / ${fmt(full.clientMs / 1000, 2)} s`,
      "",
      full.run.result,
    ],
    ["full sync elements inserted", fmtInt(full.totals.inserted), "", ""],
    ["full sync elements/s", fmt(serviceEps), "", ""],
    [
      "re-sync (1%) time (run record / client)",
      `${fmt(resyncS, 2)} s / ${fmt(resync.clientMs / 1000, 2)} s`,
      "",
      resync.run.result,
    ],
    [
      "re-sync / full sync (run record)",
      pct(resyncRatio),
      `<= ${pct(TARGET_RESYNC_RATIO)}`,
      passFail(resyncRatio <= TARGET_RESYNC_RATIO),
    ],
    [
      "re-sync / full sync (client)",
      pct(resyncClientRatio),
      `<= ${pct(TARGET_RESYNC_RATIO)}`,
      passFail(resyncClientRatio <= TARGET_RESYNC_RATIO),
    ],
    [
      `re-sync check (${changed.length} updated=1, rest Skipped)`,
      checkProblems.length ? `${checkProblems.length} problem(s)` : "ok",
      "",
      passFail(checkProblems.length === 0),
    ],
    [
      "delete with data time (run record / client)",
      `${fmt(removal.serverMs / 1000, 2)} s / ${fmt(removal.clientMs / 1000, 2)} s`,
      "",
      removal.run.result,
    ],
    [
      "delete with data elements/s",
      `${fmt(removal.totals.deleted / (removal.serverMs / 1000))} (${fmtInt(removal.totals.deleted)} elements)`,
      "",
      "",
    ],
    ["bare loop time", `${fmt(bare.ms / 1000, 2)} s`, "", ""],
    ["bare loop elements/s", `${fmt(bareEps)} (${fmtInt(bare.inserted)} elements)`, "", ""],
    [
      "service / bare elements/s",
      pct(serviceVsBare),
      `>= ${pct(TARGET_SERVICE_VS_BARE)}`,
      passFail(serviceVsBare >= TARGET_SERVICE_VS_BARE),
    ],
    [
      "completeness checks (STEP scan, stat around the read) / bare loop",
      `${pct(checksShare)} (${fmt(bare.checksMs / 1000, 2)} s; ${pct(bare.checksMs / full.serverMs)} of the full sync)`,
      `<= ${pct(TARGET_CHECKS_SHARE)}`,
      passFail(checksShare <= TARGET_CHECKS_SHARE),
    ],
    [
      "worker peak RSS (VmHWM)",
      workerMem ? `${fmt(workerMem.hwmMiB, 0)} MiB` : "n/a",
      `<= ${TARGET_WORKER_PEAK_MIB} MiB`,
      passFail(workerMem !== undefined && workerMem.hwmMiB <= TARGET_WORKER_PEAK_MIB),
    ],
    [
      `bare loop write per file of the smallest sample (${smallest.elements} elements)`,
      `${fmt(smallest.writeMs, 1)} ms`,
      `<= ${TARGET_SMALL_FILE_WRITE_MS} ms`,
      passFail(smallest.writeMs <= TARGET_SMALL_FILE_WRITE_MS),
    ],
    ...(["ferretdb", "temporal"] as const).map((name): [string, string, string, string] => {
      const seconds = fullCpu.find((c) => c.name === name)?.seconds;
      const target = (TARGET_SERVER_CPU_S_PER_200_FILES * corpus.files.length) / 200;
      return [
        `${name} CPU during the full sync`,
        seconds === undefined
          ? "n/a"
          : `${fmt(seconds, 1)} s (${fmt((seconds * 1000) / corpus.files.length, 1)} ms per file)`,
        `<= ${fmt(target, 1)} s`,
        passFail(seconds !== undefined && seconds <= target),
      ];
    }),
    ...(large
      ? ((): [string, string, string, string][] => {
          const eps = large.run.totals.inserted / (large.run.serverMs / 1000);
          return [
            [
              `one large file (${fmtInt(large.elements)} elements, ${fmt(large.bytes / 1e6, 1)} MB): time (run record / client)`,
              `${fmt(large.run.serverMs / 1000, 2)} s / ${fmt(large.run.clientMs / 1000, 2)} s`,
              "",
              large.run.run.result,
            ],
            [
              "one large file: elements/s / full sync elements/s",
              `${fmt(eps)} / ${fmt(serviceEps)} = ${pct(eps / serviceEps)}`,
              `>= ${pct(TARGET_LARGE_VS_CORPUS)}`,
              passFail(large.run.run.result === "Success" && eps / serviceEps >= TARGET_LARGE_VS_CORPUS),
            ],
            [
              "one large file: worker peak RSS (VmHWM) / RSS 5 s after the run",
              `${large.peakMiB === undefined ? "n/a" : `${fmt(large.peakMiB, 0)} MiB${large.peakReset ? "" : " (process lifetime)"}`} / ${large.afterMiB === undefined ? "n/a" : `${fmt(large.afterMiB, 0)} MiB`}`,
              "",
              "",
            ],
          ];
        })()
      : []),
    ...(growth
      ? ((): [string, string, string, string][] => {
          const perFile200 = full.serverMs / corpus.files.length;
          const perFileBig = sum(growth.runs.map((r) => r.serverMs)) / growth.files;
          const largest = growth.runs.reduce((a, b) => (b.tasks.length > a.tasks.length ? b : a));
          const h = growth.histories[growth.runs.indexOf(largest)];
          // Per file, the run's fixed events included (so the projection errs high).
          const eventsPerFile = h.events / largest.tasks.length;
          const bytesPerFile = h.bytes === undefined ? undefined : h.bytes / largest.tasks.length;
          const projEvents = eventsPerFile * GROWTH_RUN_TASKS;
          const projBytes = bytesPerFile === undefined ? undefined : bytesPerFile * GROWTH_RUN_TASKS;
          // The largest event is the plan, which names every planned file: it grows with the run's files too.
          const projPayload = (h.largestEventPayloadBytes / largest.tasks.length) * GROWTH_RUN_TASKS;
          const historyOk =
            projEvents <= TARGET_HISTORY_SHARE * HISTORY_LIMIT_EVENTS &&
            (projBytes === undefined || projBytes <= TARGET_HISTORY_SHARE * HISTORY_LIMIT_BYTES) &&
            projPayload <= TARGET_HISTORY_SHARE * PAYLOAD_LIMIT_BYTES;
          const worstGet = Math.max(growth.runGet.firstMs, growth.runGet.medianMs);
          const results = [...new Set(growth.runs.map((r) => r.run.result))].join(", ");
          return [
            [
              `${GROWTH_FACTOR}x corpus: ${fmtInt(growth.files)} files, ${fmt(growth.bytes / 1e6, 1)} MB in ${growth.runs.length} iModels (<= ${MAX_COMPOSITE_MODELS} each), one run each`,
              `${fmt(sum(growth.runs.map((r) => r.serverMs)) / 1000, 1)} s, ${fmtInt(sum(growth.runs.map((r) => r.totals.inserted)))} elements`,
              "",
              results,
            ],
            [
              `service time per file at ${corpus.files.length} / ${fmtInt(growth.files)} files (run record)`,
              `${fmt(perFile200, 1)} ms / ${fmt(perFileBig, 1)} ms (x${fmt(perFileBig / perFile200, 2)})`,
              `x <= ${TARGET_GROWTH_PER_FILE}`,
              passFail(perFileBig / perFile200 <= TARGET_GROWTH_PER_FILE),
            ],
            [
              `history of a run of ${largest.tasks.length} files (largest)`,
              `${fmtInt(h.events)} events${h.bytes === undefined ? "" : `, ${fmt(h.bytes / 1024, 0)} KiB`} (${fmt(eventsPerFile, 2)} events${bytesPerFile === undefined ? "" : `, ${fmt(bytesPerFile / 1024, 2)} KiB`} per file); largest event ${fmt(h.largestEventPayloadBytes / 1024, 0)} KiB`,
              "",
              "",
            ],
            [
              `history of a run of ${fmtInt(GROWTH_RUN_TASKS)} files (projected per file)`,
              `${fmtInt(projEvents)} events (${pct(projEvents / HISTORY_LIMIT_EVENTS)})${projBytes === undefined ? "" : `, ${fmt(projBytes / 1024 / 1024, 1)} MiB (${pct(projBytes / HISTORY_LIMIT_BYTES)})`}, largest event ${fmt(projPayload / 1024, 0)} KiB (${pct(projPayload / PAYLOAD_LIMIT_BYTES)}) of Temporal's limits`,
              `<= ${pct(TARGET_HISTORY_SHARE)} of ${fmtInt(HISTORY_LIMIT_EVENTS)} events, 50 MiB, 2 MiB per event`,
              passFail(historyOk),
            ],
            [
              `GET of a run of ${fmtInt(growth.runGet.tasks)} tasks: first (uncached) / median of 5`,
              `${fmt(growth.runGet.firstMs, 0)} ms / ${fmt(growth.runGet.medianMs, 0)} ms`,
              `< ${fmtInt(TARGET_RUN_GET_MS)} ms`,
              passFail(worstGet < TARGET_RUN_GET_MS),
            ],
            [
              "  the same without its task pages (a run completed by an earlier release)",
              `${fmt(growth.runGet.unpaged.firstMs, 0)} ms / ${fmt(growth.runGet.unpaged.medianMs, 0)} ms`,
              "",
              "",
            ],
          ];
        })()
      : []),
    ...(apiLoad
      ? ([
          [
            `API: ${apiLoad.b.requests} concurrent GETs, requests/s`,
            `${fmt((apiLoad.b.requests / apiLoad.b.wallMs) * 1000)} (${apiLoad.b.errors} not 200)`,
            `>= ${TARGET_BURST_RPS}`,
            passFail((apiLoad.b.requests / apiLoad.b.wallMs) * 1000 >= TARGET_BURST_RPS && apiLoad.b.errors === 0),
          ],
          [
            "API: that burst, p50 / p99",
            `${fmt(apiLoad.b.p50Ms, 0)} ms / ${fmt(apiLoad.b.p99Ms, 0)} ms`,
            `p99 <= ${TARGET_BURST_P99_MS} ms`,
            passFail(apiLoad.b.p99Ms <= TARGET_BURST_P99_MS),
          ],
          [
            `API: connections list $top=5 at ${fmtInt(apiLoad.small.connections)} / ${fmtInt(apiLoad.counts.connections)} connections`,
            `${fmt(apiLoad.listSmallMs, 1)} ms / ${fmt(apiLoad.listLargeMs, 1)} ms (x${fmt(apiLoad.listLargeMs / apiLoad.listSmallMs, 2)})`,
            `x <= ${TARGET_LIST_GROWTH}`,
            passFail(apiLoad.listLargeMs / apiLoad.listSmallMs <= TARGET_LIST_GROWTH),
          ],
          [
            `API: one iModel's connections $top=5 at ${fmtInt(apiLoad.small.connections)} / ${fmtInt(apiLoad.counts.connections)} connections`,
            `${fmt(apiLoad.iModelListSmallMs, 1)} ms / ${fmt(apiLoad.iModelListLargeMs, 1)} ms (x${fmt(apiLoad.iModelListLargeMs / apiLoad.iModelListSmallMs, 2)})`,
            `x <= ${TARGET_LIST_GROWTH}`,
            passFail(apiLoad.iModelListLargeMs / apiLoad.iModelListSmallMs <= TARGET_LIST_GROWTH),
          ],
          [
            "API: records seeded for it",
            `${fmtInt(apiLoad.counts.iModels)} iModels, ${fmtInt(apiLoad.counts.connections)} connections, ${fmtInt(apiLoad.counts.runs)} runs in ${fmt(apiLoad.seedS, 1)} s`,
            "",
            "",
          ],
        ] as [string, string, string, string][])
      : []),
    [
      "bare loop peak RSS (VmHWM)",
      `${fmt(bare.peakMiB, 0)} MiB${bare.peakReset ? ` (from ${fmt(bare.baselineMiB, 0)} MiB at start)` : " (process lifetime)"}`,
      "",
      "",
    ],
  ];
  const head: [string, string, string, string] = ["measure", "value", "target", "result"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => v.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  console.log("");
  const load = (l: number[]) => l.map((x) => fmt(x, 2)).join(" ");
  console.log(
    `imodel-sync bench (${os.cpus().length} CPUs, node ${process.version}; load average at start ${load(loadAtStart)}, at end ${load(os.loadavg())})`,
  );
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));

  // Where the time goes.
  const fullTaskMs = sum(full.tasks.map((t) => t.durationMs ?? 0));
  const skipped = resync.tasks.filter((t) => t.result === "Skipped");
  const changedTasks = resync.tasks.filter((t) => changedIds.has(t.sourceFileId));
  const skippedTaskMs = sum(skipped.map((t) => t.durationMs ?? 0));
  const changedTaskMs = sum(changedTasks.map((t) => t.durationMs ?? 0));
  const planningMs = (r: RunMeasure) => Date.parse(r.run.startDateTime) - Date.parse(r.run.queuedDateTime);
  console.log("");
  console.log("where the time goes");
  console.log(
    `  run record startDateTime is written when planning (beginRun: hashing every file) starts; queued→start = queueing:`,
  );
  console.log(
    `    full sync queued→start ${fmt(planningMs(full) / 1000, 2)} s, re-sync queued→start ${fmt(planningMs(resync) / 1000, 2)} s`,
  );
  console.log(
    `  full sync: tasks sum ${fmt(fullTaskMs / 1000, 2)} s of ${fmt(fullS, 2)} s start→end ` +
      `(${fmt(fullTaskMs / full.tasks.length, 1)} ms per task; ${fmt((full.serverMs - fullTaskMs) / full.tasks.length, 1)} ms per file between tasks)`,
  );
  console.log(
    `  re-sync: ${changedTasks.length} changed tasks ${fmt(changedTaskMs, 0)} ms, ${skipped.length} skipped tasks ${fmt(skippedTaskMs, 0)} ms ` +
      `inside tasks; ${fmt((resync.queuedToEndMs - changedTaskMs) / Math.max(1, skipped.length), 1)} ms per skipped file from queued to end`,
  );
  console.log(
    `  polling: one GET of a ${corpus.files.length}-task run, measured idle after both runs, takes ${fmt(pollWallMs, 0)} ms and ` +
      `${fmt(pollCpuS * 1000, 0)} ms CPU (api + ferretdb); at most ${fmt(full.polls * pollCpuS)} CPU s for the ${full.polls} polls of the full sync, ` +
      `${fmt(resync.polls * pollCpuS)} for the ${resync.polls} of the re-sync`,
  );
  console.log(`  CPU seconds during the full sync (${fmt(full.clientMs / 1000)} s wall): ${cpuText(fullCpu)}`);
  if (fullCommands.length > 0) {
    const total = sum(fullCommands.map(([, n]) => n));
    const perFile = (n: number) => fmt(n / corpus.files.length, 1);
    console.log(
      `  FerretDB commands during the full sync: ${fmtInt(total)}, ${perFile(total)} per file, including the API's ${full.polls} polls (` +
        fullCommands.map(([command, n]) => `${command} ${perFile(n)}`).join(", ") +
        " per file)",
    );
  }
  console.log(`  CPU seconds during the re-sync (${fmt(resync.clientMs / 1000)} s wall): ${cpuText(resyncCpu)}`);
  console.log(
    `  bare loop: read + hash ${fmt(bare.hashMs / 1000, 2)} s, parse ${fmt(bare.parseMs / 1000, 2)} s, ` +
      `write ${fmt(bare.writeMs / 1000, 2)} s (${fmt(bare.ms / corpus.files.length, 1)} ms per file); ${fmt(bare.cpuS)} CPU s`,
  );
  console.log(
    `  service vs bare: ${fmt(fullS - bare.ms / 1000, 2)} s more for the same files ` +
      `(${fmt((full.serverMs - bare.ms) / corpus.files.length, 1)} ms per file); by client time service/bare = ` +
      `${pct(full.totals.inserted / (full.clientMs / 1000) / bareEps)}`,
  );
  console.log(
    "  per sample (mean per file; write of the first / last 5 copies shows the cost growing with the iModel):",
  );
  const taskByPath = new Map(full.tasks.map((t) => [t.path, t]));
  const mean = (xs: number[]) => (xs.length ? sum(xs) / xs.length : NaN);
  const perSample = samples.map((sample) => {
    const rows = bare.perFile.filter((f) => corpus.sampleOf.get(f.file) === sample);
    const n = Math.min(5, rows.length);
    return [
      sample,
      fmt(mean(rows.map((r) => r.elements)), 0),
      fmt(mean(rows.map((r) => taskByPath.get(r.file)?.durationMs ?? NaN)), 0),
      fmt(mean(rows.map((r) => r.hashMs + r.parseMs + r.writeMs)), 0),
      fmt(mean(rows.map((r) => r.parseMs)), 0),
      fmt(mean(rows.map((r) => r.writeMs)), 0),
      `${fmt(mean(rows.slice(0, n).map((r) => r.writeMs)), 0)} / ${fmt(mean(rows.slice(-n).map((r) => r.writeMs)), 0)}`,
    ];
  });
  const sampleHead = ["sample", "elements", "service task ms", "bare ms", "parse ms", "write ms", "write first/last 5"];
  const sw = sampleHead.map((h, i) => Math.max(h.length, ...perSample.map((r) => r[i].length)));
  for (const r of [sampleHead, ...perSample])
    console.log(`    ${r.map((v, i) => (i === 0 ? v.padEnd(sw[i]) : v.padStart(sw[i]))).join("  ")}`);
  if (full.totals.inserted !== bare.inserted)
    console.log(`  note: the service inserted ${full.totals.inserted} elements, the bare loop ${bare.inserted}`);
  if (others.length) console.log(`  other processes' peak RSS (MiB): ${others.join(", ")}`);
  for (const p of checkProblems.slice(0, 10)) console.log(`  re-sync check: ${p}`);
  if (checkProblems.length > 10) console.log(`  re-sync check: … ${checkProblems.length - 10} more`);

  if (failures.length) {
    for (const f of failures) console.error(`bench: run failed: ${f}`);
    return 1;
  }
  return 0;
}

main()
  .then(
    (code) => code,
    (err: unknown) => {
      if (cleaning) return 1; // interrupted: the stack went away under the run
      console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return 1;
    },
  )
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  });
