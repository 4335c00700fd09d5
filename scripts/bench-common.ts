/**
 * What the benchmarks (`make bench`, `make bench-scale`, `make bench-schedules`) share: the IFC samples they copy (each
 * copy made unique, and still valid, by a different IfcProject Name, so that no two corpus files have the same content
 * hash), the stack settings a benchmark's own stack must not inherit from the user's environment, the launcher and API
 * calls of a benchmark stack, settings from the environment, percentiles and the memory of a process.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** The IFC samples (samples/ifc). */
export const SAMPLES = path.resolve(__dirname, "..", "samples", "ifc");

/** Matches the Name (3rd attribute) of the IfcProject instance: prefix = everything before it. */
const PROJECT_NAME = /(=\s*IFCPROJECT\s*\(\s*'[^']*'\s*,\s*(?:#\d+|\$)\s*,\s*)('(?:[^']|'')*'|\$)/gi;

/**
 * The STEP text with its IfcProject's Name replaced by `name`.
 * @throws Error when `text` (of `file`) has no IfcProject with a Name, or more than one.
 */
export function withProjectName(text: string, name: string, file: string): string {
  const matches = [...text.matchAll(PROJECT_NAME)];
  if (matches.length !== 1) throw new Error(`${file}: expected one IFCPROJECT with a Name, found ${matches.length}`);
  return text.replace(PROJECT_NAME, (_m, prefix: string) => `${prefix}'${name}'`);
}

/**
 * The names of the IFC samples, sorted.
 * @throws Error when samples/ifc holds none.
 */
export function ifcSamples(): string[] {
  const samples = fs
    .readdirSync(SAMPLES)
    .filter((f) => f.toLowerCase().endsWith(".ifc"))
    .sort();
  if (samples.length === 0) throw new Error(`no IFC samples in ${SAMPLES}`);
  return samples;
}

/** scripts/stack.sh settings of the user's own stack, removed from a benchmark stack's environment. */
export const USER_STACK_SETTINGS = [
  "TEMPORAL_ADDRESS",
  "MONGODB_URI",
  "SOURCE_ROOTS",
  "DATA_DIR",
  "API_PORT",
  "API_URL",
  "TEMPORAL_UI_URL",
  "TEMPORAL_PORT",
  "TEMPORAL_UI_PORT",
  "FERRETDB_PORT",
  "FERRETDB_DEBUG_ADDR",
  "TEMPORAL_NAMESPACE",
  "TEMPORAL_TASK_QUEUE",
  "ADMIN_API_KEY",
  "ADMIN_EMAIL",
  "SMTP_URL",
  "MAIL_FROM",
  "MAIL_OUTBOX_DIR",
  "PUBLIC_API_URL",
  "WORKER_METRICS_PORT",
  "TEMPORAL_SDK_METRICS_PORT",
  "WORKERS",
  "APIS",
];

const ROOT = path.resolve(__dirname, "..");
const STACK = path.join(ROOT, "scripts", "stack.sh");

/**
 * A positive integer setting from the environment, `dflt` when unset or empty.
 * @throws Error when it is set to anything else.
 */
export function positiveInt(v: string | undefined, dflt: number): number {
  const n = v === undefined || v === "" ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got '${v}'`);
  return n;
}

/** The value at percentile `p` (0-100) of ascending `sorted` values (nearest rank); NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** VmHWM / VmRSS of a process in MiB (undefined when it is gone). */
export function memoryOf(pid: number | "self"): { hwmMiB: number; rssMiB: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) =>
      Number(/^(\w+):\s+(\d+) kB/m.exec(status.split("\n").find((l) => l.startsWith(`${key}:`)) ?? "")?.[2] ?? NaN);
    return { hwmMiB: kb("VmHWM") / 1024, rssMiB: kb("VmRSS") / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * Runs scripts/stack.sh with `env` in its own process group (a Ctrl-C meant for the benchmark does not cut a `down`
 * short), its output on stderr (stdout holds a benchmark's results only).
 */
export function runStack(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [STACK, ...args], { cwd: ROOT, env, stdio: ["ignore", 2, 2], detached: true });
    child.on("error", reject);
    child.on("exit", (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`scripts/stack.sh ${args.join(" ")} failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

/**
 * The variables `scripts/stack.sh env` prints for the stack of `env` (`API_URLS`, `WORKER_METRICS_URLS`, ...), unquoted.
 * @throws Error when the script fails.
 */
export function stackEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const r = spawnSync("bash", [STACK, "env"], { cwd: ROOT, env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`scripts/stack.sh env failed: ${r.stderr}`);
  const vars: Record<string, string> = {};
  for (const m of r.stdout.matchAll(/^export (\w+)=(.*)$/gm))
    vars[m[1]] = m[2].replace(/^'(.*)'$/, "$1").replace(/'\\''/g, "'");
  return vars;
}

/** A benchmark's own stack: its temporary DATA_DIR, the environment it runs with and its admin's API key. */
export interface BenchStack {
  dataDir: string;
  env: NodeJS.ProcessEnv;
  adminApiKey: string;
}

/**
 * The stacks of a benchmark that starts one at a time (`make bench-scale`, `make bench-schedules`): {@link create}
 * makes the next one's DATA_DIR and environment (the user's own stack settings removed, {@link USER_STACK_SETTINGS});
 * {@link stop} stops it and removes its data, also on SIGINT and SIGTERM (the process then exits 130 or 143).
 */
export class BenchStacks {
  private current: BenchStack | undefined;

  /**
   * @param name the benchmark's name, in the DATA_DIR's name (`imodel-sync-<name>-…` in the temporary folder).
   * @param keepDataVariable the environment variable that keeps the data when "1" (e.g. `SCALE_KEEP_DATA`).
   * @param log where warnings go.
   */
  constructor(
    private readonly name: string,
    private readonly keepDataVariable: string,
    private readonly log: (msg: string) => void,
  ) {
    for (const [sig, code] of [
      ["SIGINT", 130],
      ["SIGTERM", 143],
    ] as const) {
      process.on(sig, () => void this.stop().finally(() => process.exit(code)));
    }
  }

  /**
   * A new stack's DATA_DIR, environment (`settings` over the user's environment without its stack settings, with
   * DATA_DIR and ADMIN_API_KEY) and admin key; `stop` stops it from now on. Does not start it (`runStack(["up"], env)`).
   */
  create(settings: Record<string, string>): BenchStack {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `imodel-sync-${this.name}-`));
    const adminApiKey = `isk_bench_${randomBytes(24).toString("base64url")}`;
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of USER_STACK_SETTINGS) delete env[k];
    Object.assign(env, settings, { DATA_DIR: dataDir, ADMIN_API_KEY: adminApiKey });
    this.current = { dataDir, env, adminApiKey };
    return this.current;
  }

  /** Stops the current stack (a failed `down` is a warning) and removes its data unless kept; idempotent. */
  async stop(): Promise<void> {
    const s = this.current;
    this.current = undefined;
    if (!s) return;
    await runStack(["down"], s.env).catch((e: Error) => this.log(`warning: ${e.message}; DATA_DIR=${s.dataDir}`));
    if (process.env[this.keepDataVariable] === "1") this.log(`data kept in ${s.dataDir}`);
    else fs.rmSync(s.dataDir, { recursive: true, force: true });
  }
}

/** An answer of the API: status, Location header, JSON body. */
export interface ApiAnswer {
  status: number;
  location: string | null;
  body: any;
}

/** A client of one stack's API, calling with the API key `key()` returns at the time of the call. */
export function apiClient(apiUrl: string, key: () => string) {
  return async (method: string, urlPath: string, body?: unknown): Promise<ApiAnswer> => {
    const res = await fetch(`${apiUrl}${urlPath}`, {
      method,
      redirect: "manual",
      headers: { ...(body ? { "content-type": "application/json" } : {}), authorization: `Bearer ${key()}` },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, location: res.headers.get("location"), body: text ? JSON.parse(text) : undefined };
  };
}

/** @throws Error naming `what` when the answer's status is not `status`. */
export function expectStatus(res: { status: number; body: unknown }, status: number, what: string): void {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
}

/**
 * The value of one sample in Prometheus text exposition format: the sum over the series named `name` whose labels
 * include `labels` (in any order); 0 when there is none.
 */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) {
      total += Number(m[3]);
      found = true;
    }
  }
  return found ? total : 0;
}
