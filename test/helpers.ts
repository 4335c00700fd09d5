/** Helpers for integration tests: HTTP calls to the test stack's API, run polling, ECSQL on a `.bim`. */
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, inject } from "vitest";
import { OpenMode } from "@itwin/core-bentley";
import { QueryBinder, QueryRowFormat } from "@itwin/core-common";
import { StandaloneDb } from "@itwin/core-backend";
import { startIModelHost } from "../activities/imodel/writer";
import type { ReceivedMail } from "./global-setup";

export const stack = () => inject("stack");

/**
 * The URI of a database of its own on the test stack's FerretDB, named `<prefix>_<pid>_<ms>` (empty until written), for
 * tests that need one apart from the stack's; the caller drops it.
 */
export function ownDatabaseUri(prefix: string): string {
  return stack().mongoUri.replace(/\/[^/]*$/, `/${prefix}_${process.pid}_${Date.now()}`);
}

export interface HttpResult<T = any> {
  status: number;
  location: string | null;
  body: T;
}

/** Calls the API as the admin (ADMIN_API_KEY of the test stack); never follows redirects (303 must be seen as such). */
export async function http<T = any>(
  method: string,
  urlPath: string,
  body?: unknown,
  rawBody?: string,
): Promise<HttpResult<T>> {
  return httpAs(stack().adminApiKey, method, urlPath, body, rawBody);
}

/**
 * Calls the API with a user's API key (`null`: no authorization header); never follows redirects.
 * @param baseUrl the API to call, e.g. `http://127.0.0.1:3010` (default: the test stack's API).
 */
export async function httpAs<T = any>(
  apiKey: string | null,
  method: string,
  urlPath: string,
  body?: unknown,
  rawBody?: string,
  baseUrl?: string,
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = {};
  if (body !== undefined || rawBody !== undefined) headers["content-type"] = "application/json";
  if (apiKey !== null) headers.authorization = `Bearer ${apiKey}`;
  const res = await fetch(`${baseUrl ?? stack().apiUrl}${urlPath}`, {
    method,
    redirect: "manual",
    headers,
    body: rawBody ?? (body !== undefined ? JSON.stringify(body) : undefined),
  });
  const text = await res.text();
  // JSON answers parsed; others (GET /metrics: Prometheus text) as text.
  const json = (res.headers.get("content-type") ?? "").includes("json");
  return {
    status: res.status,
    location: res.headers.get("location"),
    body: text ? (json ? JSON.parse(text) : text) : undefined,
  };
}

/**
 * Every item of a paged list, page after page by `_links.next` (README "API": lists page with `$top`/`$skip`), each page
 * asked with `apiKey` and expected to answer 200.
 * @param field the array of the answer that holds the items, e.g. `connections`.
 */
export async function allPages(apiKey: string, urlPath: string, field: string): Promise<any[]> {
  const out: any[] = [];
  for (let next: string | undefined = urlPath; next;) {
    const r: HttpResult<any> = await httpAs(apiKey, "GET", next);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    out.push(...r.body[field]);
    next = r.body._links.next?.href;
  }
  return out;
}

/** A new user (created by the admin) and its API key. The email is unique per call. */
export async function createUser(name: string): Promise<{ user: any; apiKey: string }> {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  const email = `${slug}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@tests.example`;
  const res = await http("POST", "/users", { email, name });
  if (res.status !== 201) throw new Error(`POST /users answered ${res.status}: ${JSON.stringify(res.body)}`);
  return { user: res.body.user, apiKey: res.body.apiKey };
}

/** Mails the test SMTP server received so far (see test/global-setup.ts), oldest first. */
export function receivedMails(): ReceivedMail[] {
  const dir = stack().mailDir;
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as ReceivedMail);
}

/** Waits until `count` mails to `to` arrived (and `settleMs` more passed without another); returns them. */
export async function waitForMails(to: string, count = 1, timeoutMs = 30_000, settleMs = 0): Promise<ReceivedMail[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mails = receivedMails().filter((m) => m.to.includes(to));
    if (mails.length >= count) {
      if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
      return receivedMails().filter((m) => m.to.includes(to));
    }
    if (Date.now() > deadline)
      throw new Error(`${mails.length} of ${count} mails to ${to} arrived within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls `fn` until it returns a truthy value. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Copies fixtures into a fresh folder under a sources root; returns its absolute path.
 * @param files target path (relative) → fixture to copy.
 * @param sourcesDir the sources root (default: the test stack's).
 */
export function makeSource(name: string, files: Record<string, string>, sourcesDir?: string): string {
  const dir = path.join(
    sourcesDir ?? stack().sourcesDir,
    `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
  );
  fs.mkdirSync(dir, { recursive: true });
  for (const [target, from] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, target)), { recursive: true });
    fs.copyFileSync(from, path.join(dir, target));
  }
  return dir;
}

export const ROOT = path.resolve(__dirname, "..");

/**
 * The path of a server binary that scripts/ensure-tools.sh builds or fetches (cached; instant once built).
 * @param tool its argument to ensure-tools.sh, e.g. `temporal` or `temporal-test-server`.
 * @param variable the `NAME=path` line it prints, e.g. `TEMPORAL_BIN`.
 * @throws Error when the script prints no such line.
 */
export function toolPath(tool: string, variable: string): string {
  const out = execFileSync("bash", [path.join(ROOT, "scripts/ensure-tools.sh"), tool], { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.startsWith(`${variable}=`));
  if (!line) throw new Error(`ensure-tools.sh ${tool} printed no ${variable}: ${out}`);
  return line.slice(variable.length + 1);
}
export const SAMPLE = (name: string) => path.join(ROOT, "samples", "ifc", name);
export const FIXTURE = (name: string) => path.join(ROOT, "test", "fixtures", name);

/**
 * Polls a run until its state is Completed; returns the run and every state seen on the way.
 * @param location the run's path, e.g. `/connections/<id>/runs/<runId>`.
 * @param via the API and key to ask (default: the test stack's API as the admin).
 * @throws Error when a GET answers other than 200, or the run is not Completed within `timeoutMs`.
 */
export async function waitForRun(
  location: string,
  timeoutMs = 150_000,
  via?: { apiKey: string; baseUrl: string },
): Promise<{ run: any; statesSeen: string[] }> {
  const statesSeen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = via
      ? await httpAs(via.apiKey, "GET", location, undefined, undefined, via.baseUrl)
      : await http("GET", location);
    if (status !== 200) throw new Error(`GET ${location} answered ${status}: ${JSON.stringify(body)}`);
    if (statesSeen[statesSeen.length - 1] !== body.run.state) statesSeen.push(body.run.state);
    if (body.run.state === "Completed") return { run: body.run, statesSeen };
    if (Date.now() > deadline)
      throw new Error(`run ${location} did not complete in ${timeoutMs} ms: ${JSON.stringify(body.run)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Creates an iModel and a connection over `files` (relative paths in `source`). */
export async function createConnection(
  source: string,
  files: string[],
  displayName = "test connection",
  iModelId?: string,
) {
  if (!iModelId) {
    const m = await http("POST", "/imodels", { name: `test iModel ${displayName}` });
    if (m.status !== 201) throw new Error(JSON.stringify(m.body));
    iModelId = m.body.iModel.id as string;
  }
  const c = await http("POST", "/connections", {
    iModelId,
    displayName,
    source: { type: "local", path: source },
    sourceFiles: files.map((p) => ({ path: p, connectorType: "IFC" })),
  });
  if (c.status !== 201) throw new Error(JSON.stringify(c.body));
  return { iModelId, connection: c.body.connection };
}

/** Runs ECSQL on a `.bim` opened read-only; rows use ECSQL property names. */
export async function ecsql(bimPath: string, query: string, params?: Record<string, unknown>): Promise<any[]> {
  await startIModelHost(path.join(stack().dataDir, "test-cache"), { profileName: `test-${process.pid}` });
  const db = StandaloneDb.openFile(bimPath, OpenMode.Readonly);
  try {
    const binder = params ? QueryBinder.from(params) : undefined;
    return await db.createQueryReader(query, binder, { rowFormat: QueryRowFormat.UseECSqlPropertyNames }).toArray();
  } finally {
    db.close();
  }
}

/**
 * Restarts one process of the test stack (`worker`, `api`, `temporal`, `ferretdb`) with the project's launcher.
 * Asynchronous on purpose: the test process keeps handling socket events (closed keep-alive connections) meanwhile.
 * @param settings launcher settings to change (e.g. `DISK_FREE_MIN_MB`); the launcher keeps them for later restarts,
 *   so set them back afterwards.
 */
export async function restartService(
  name: "worker" | "api" | "temporal" | "ferretdb",
  settings: Record<string, string> = {},
): Promise<void> {
  await promisify(execFile)("bash", [path.join(ROOT, "scripts/stack.sh"), "restart", name], {
    cwd: ROOT,
    env: { ...process.env, ...stack().env, ...settings },
  });
}

/**
 * Triggers a Temporal Schedule now. Retries briefly when the server answers "workflow execution already completed":
 * the dev server's scheduler workflow continues as new from time to time, and a trigger landing at that moment is
 * refused once.
 */
export async function triggerSchedule(
  client: import("@temporalio/client").Client,
  scheduleId: string,
  overlap?: import("@temporalio/client").ScheduleOverlapPolicy,
  reapply?: () => Promise<void>,
): Promise<void> {
  let reapplied = false;
  for (let attempt = 1; ; attempt++) {
    try {
      await client.schedule.getHandle(scheduleId).trigger(overlap);
      return;
    } catch (err) {
      if (!/already completed/.test(String((err as Error).message))) throw err;
      if (attempt >= 10) {
        // Seen on the dev server in long suites: the schedule's own workflow reported as completed for good. Apply
        // the schedule again through the API (a changed PUT, the user's way to repair it) once, then trigger.
        if (!reapply || reapplied) throw err;
        console.warn(`schedule ${scheduleId}: the server reports its workflow as completed; applying it again`);
        await reapply();
        reapplied = true;
        attempt = 0;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

/** Kills one app process of the test stack at once (SIGKILL to its process group: no graceful shutdown). */
export function killService(name: "worker" | "api" | "temporal"): void {
  const pid = Number(fs.readFileSync(path.join(stack().dataDir, "run", `${name}.pid`), "utf8").trim());
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    process.kill(pid, "SIGKILL");
  }
}

/** Polls a run until `predicate(run)` holds (or it completes); returns the run as last seen. */
export async function waitForRunState(
  location: string,
  predicate: (run: any) => boolean,
  timeoutMs = 120_000,
  everyMs = 50,
): Promise<any> {
  return eventually(
    `run ${location} to reach the expected state`,
    async () => {
      const { body } = await http("GET", location);
      return body?.run && (predicate(body.run) || body.run.state === "Completed") ? body.run : undefined;
    },
    timeoutMs,
    everyMs,
  );
}

/** The tasks of a run, all jobs together, in run order. */
export const tasksOf = (run: any): any[] => run.jobs.flatMap((j: any) => j.tasks);

/**
 * A Temporal client of the test stack for the enclosing `describe` (or file): connected before its tests, closed after
 * them. Call at the top of the block; use the returned getter inside tests.
 */
export function useTemporalClient(): () => import("@temporalio/client").Client {
  let connection: import("@temporalio/client").Connection | undefined;
  let client: import("@temporalio/client").Client | undefined;
  beforeAll(async () => {
    const { Client, Connection } = await import("@temporalio/client");
    connection = await Connection.connect({ address: stack().temporalAddress });
    client = new Client({ connection });
  });
  afterAll(async () => {
    await connection?.close();
  });
  return () => {
    if (!client) throw new Error("useTemporalClient: the client is connected in beforeAll; use it inside tests");
    return client;
  };
}
