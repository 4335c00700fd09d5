/**
 * The demo: creates an iModel and a connection over the IFC files in samples/ifc, synchronizes them through the
 * running stack, and prints each file's task result and the element counts read back from the .bim with ECSQL.
 *
 * It signs in with ADMIN_API_KEY (`make demo` exports it from scripts/stack.sh env; else read from
 * $DATA_DIR/admin-api-key), creates a demo user with POST /users, and acts as that user, who so becomes the
 * connection's owner.
 *
 * At the end it prints the portal's address (the API serves it at `/`; `make demo` builds it when missing) and where the
 * admin key is.
 *
 * Env: API_URL (default http://127.0.0.1:$API_PORT, API_PORT default 3000), ADMIN_API_KEY, DATA_DIR, TEMPORAL_UI_URL,
 * TEMPORAL_NAMESPACE, DEMO_EXIT=1 to exit after the sync (exit code 1 unless the run's result is Success) instead of
 * waiting for Ctrl-C.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { OpenMode } from "@itwin/core-bentley";
import { QueryBinder, QueryRowFormat } from "@itwin/core-common";
import { IModelHost, StandaloneDb } from "@itwin/core-backend";
import { startIModelHost } from "../activities/imodel/writer";

const apiUrl = process.env.API_URL ?? `http://127.0.0.1:${process.env.API_PORT ?? 3000}`;
const uiUrl = process.env.TEMPORAL_UI_URL ?? `http://127.0.0.1:${process.env.TEMPORAL_UI_PORT ?? 8233}`;
const namespace = process.env.TEMPORAL_NAMESPACE ?? "default";
const samples = path.resolve(__dirname, "..", "samples", "ifc");

function adminKey(): string {
  if (process.env.ADMIN_API_KEY) return process.env.ADMIN_API_KEY;
  const file = path.join(process.env.DATA_DIR ?? path.resolve(__dirname, "..", "data"), "admin-api-key");
  if (fs.existsSync(file)) return fs.readFileSync(file, "utf8").trim();
  throw new Error('ADMIN_API_KEY is not set (eval "$(scripts/stack.sh env)" exports it)');
}

/** Where to find the admin key, without printing it (it never goes into a log). */
function adminKeyHint(): string {
  const file = path.join(process.env.DATA_DIR ?? path.resolve(__dirname, "..", "data"), "admin-api-key");
  return fs.existsSync(file) && fs.readFileSync(file, "utf8").trim() === process.env.ADMIN_API_KEY
    ? `cat ${file}`
    : "the ADMIN_API_KEY you set";
}

/** The API key calls are made with: the admin's first, then the demo user's. */
let apiKey = "";

async function call(
  method: string,
  urlPath: string,
  body?: unknown,
): Promise<{ status: number; location: string | null; body: any }> {
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
  if (res.status !== status) throw new Error(`${what} failed: HTTP ${res.status} ${JSON.stringify(res.body)}`);
}

async function main(): Promise<number> {
  const health = await call("GET", "/health").catch((e: Error) => ({ status: 0, body: e.message, location: null }));
  if (health.status !== 200)
    throw new Error(
      `the API at ${apiUrl} is not healthy (${JSON.stringify(health.body)}); start the stack with 'make dev'`,
    );

  apiKey = adminKey();
  const u = await call("POST", "/users", { email: `demo-${Date.now()}@imodel-sync.localhost`, name: "Demo User" });
  expectStatus(u, 201, "create the demo user (with ADMIN_API_KEY)");
  apiKey = u.body.apiKey;
  console.log(
    `\nuser        ${u.body.user.id}  ${u.body.user.email} (created by the admin; its API key is shown once)`,
  );

  const files = fs
    .readdirSync(samples)
    .filter((f) => f.toLowerCase().endsWith(".ifc"))
    .sort();
  console.log(`imodel-sync demo: ${files.length} IFC files from ${samples}`);
  const m = await call("POST", "/imodels", { name: `Demo ${new Date().toISOString()}` });
  expectStatus(m, 201, "create iModel");
  const iModel = m.body.iModel;
  console.log(`iModel      ${iModel.id}  ${iModel.location.path}`);
  const c = await call("POST", "/connections", {
    iModelId: iModel.id,
    displayName: "Demo IFC models",
    source: { type: "local", path: samples },
    sourceFiles: files.map((f) => ({ path: f, connectorType: "IFC" })),
  });
  expectStatus(c, 201, "create connection");
  const connection = c.body.connection;
  console.log(`connection  ${connection.id}  "${connection.displayName}", owner ${connection.owner?.email}`);

  const r = await call("POST", `/connections/${connection.id}/run`);
  expectStatus(r, 202, "start run");
  console.log(`run         ${r.location}`);
  let run: any;
  let last = "";
  for (;;) {
    run = (await call("GET", r.location!)).body.run;
    const tasks = run.jobs.flatMap((j: any) => j.tasks);
    const progress = `${run.state} (${tasks.filter((t: any) => t.state === "Completed").length}/${tasks.length || "?"} files)`;
    if (progress !== last) console.log(`  ${progress}`);
    last = progress;
    if (run.state === "Completed") break;
    await new Promise((res) => setTimeout(res, 300));
  }

  await startIModelHost(path.join(os.tmpdir(), "imodel-sync-demo"), { profileName: `demo-${process.pid}` });
  const db = StandaloneDb.openFile(iModel.location.path, OpenMode.Readonly);
  const perFile = new Map<string, number>();
  try {
    const rows = await db
      .createQueryReader(
        `SELECT p.CodeValue file, COUNT(e.ECInstanceId) n FROM BisCore.PhysicalPartition p
           JOIN BisCore.GeometricElement3d e ON e.Model.Id = p.ECInstanceId GROUP BY p.CodeValue`,
        QueryBinder.from([]),
        { rowFormat: QueryRowFormat.UseECSqlPropertyNames },
      )
      .toArray();
    for (const row of rows) perFile.set(row.file, row.n);
  } finally {
    db.close();
    await IModelHost.shutdown();
  }

  console.log(`\nrun result: ${run.result}${run.error ? ` (${run.error.message})` : ""}\n`);
  const tasks = run.jobs.flatMap((j: any) => j.tasks);
  const table = tasks.map((t: any) => ({
    file: t.path,
    result: t.result,
    inserted: t.elements.inserted,
    updated: t.elements.updated,
    deleted: t.elements.deleted,
    unchanged: t.elements.unchanged,
    "elements in .bim (ECSQL)": perFile.get(t.path) ?? 0,
    warnings: t.warnings.length,
    ms: t.durationMs,
    error: t.error ? `${t.error.code}: ${t.error.message}` : "",
  }));
  console.table(table);
  console.log(`\nAPI          ${apiUrl}  (e.g. curl -H "authorization: Bearer $ADMIN_API_KEY" ${apiUrl}${r.location})`);
  console.log(`Temporal UI  ${uiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(run.workflowId)}`);
  console.log(`iModel       ${iModel.location.path}`);
  console.log(
    `\nPortal       ${apiUrl}/   (the demo connection "${connection.displayName}" is in iModel "${iModel.name}")`,
  );
  console.log(`             sign in with the admin key: ${adminKeyHint()}`);
  return run.result === "Success" ? 0 : 1;
}

main().then(
  async (code) => {
    if (process.env.DEMO_EXIT === "1") process.exit(code);
    console.log("\nThe stack keeps running; press Ctrl-C to stop it.");
    process.on("SIGINT", () => process.exit(code));
    process.on("SIGTERM", () => process.exit(code));
    setInterval(() => undefined, 1 << 30);
  },
  (err) => {
    console.error(`demo failed: ${(err as Error).message}`);
    process.exit(1);
  },
);
