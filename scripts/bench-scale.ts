/**
 * The scale-out benchmark (`make bench-scale`): does a second worker process add throughput?
 *
 * For 1 and then 2 worker processes (`WORKERS` of scripts/stack.sh), each on a fresh stack of its own (dedicated ports,
 * a temporary DATA_DIR, stopped at the end, also on failure and Ctrl-C):
 * 1. Corpus: SCALE_IMODELS (4) iModels of SCALE_FILES (50) IFC files each, copies of samples/ifc made unique
 *    (scripts/bench-common.ts); one connection per iModel mapping its files.
 * 2. All runs are asked at once; each is polled until Completed.
 * 3. Aggregate elements per second: the elements written by all runs over the span from the first run queued to the
 *    last run ended (run records, server clock).
 * Then prints a table and a last line `2 workers / 1 worker: <ratio>` (goal: >= 1.6 on a 2-core machine, docs in
 * README.md "Scaling out"). Exit code 0 even when the goal is missed (it is a measurement); 1 when a run or a step
 * fails, or the two stacks did not write the same elements.
 *
 * Env: SCALE_IMODELS (4), SCALE_FILES (50), SCALE_RUN_TIMEOUT (seconds, 1800), SCALE_API_PORT (19300; Temporal
 * 19333, its UI 20333, FerretDB 19317 follow unless SCALE_TEMPORAL_PORT, SCALE_TEMPORAL_UI_PORT, SCALE_FERRETDB_PORT
 * are set), SCALE_KEEP_DATA=1 (keep the DATA_DIRs), SCALE_LOG_LEVEL (warn).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import {
  apiClient,
  expectStatus,
  ifcSamples,
  positiveInt,
  runStack,
  SAMPLES,
  BenchStacks,
  withProjectName,
} from "./bench-common";

const IMODELS = positiveInt(process.env.SCALE_IMODELS, 4);
const FILES = positiveInt(process.env.SCALE_FILES, 50);
const RUN_TIMEOUT_MS = positiveInt(process.env.SCALE_RUN_TIMEOUT, 1800) * 1000;
const API_PORT = positiveInt(process.env.SCALE_API_PORT, 19300);
const PORTS = {
  api: API_PORT,
  temporal: positiveInt(process.env.SCALE_TEMPORAL_PORT, API_PORT + 33),
  ui: positiveInt(process.env.SCALE_TEMPORAL_UI_PORT, API_PORT + 1033),
  ferret: positiveInt(process.env.SCALE_FERRETDB_PORT, API_PORT + 17),
};
const TARGET_RATIO = 1.6;
const POLL_MS = 500;

const log = (msg: string) => process.stderr.write(`[bench-scale] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number, digits = 1) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** The stack being measured now (stopped at the end, also on failure and Ctrl-C). */
const stacks = new BenchStacks("bench-scale", "SCALE_KEEP_DATA", log);

/** Writes the corpus: `<dir>/m<i>/<sample stem>-<j>.ifc`, FILES per iModel, the samples in turn. */
function makeCorpus(dir: string): { folders: string[]; files: string[][]; bytes: number } {
  const samples = ifcSamples();
  const texts = samples.map((s) => fs.readFileSync(path.join(SAMPLES, s), "latin1"));
  const folders: string[] = [];
  const files: string[][] = [];
  let bytes = 0;
  for (let i = 0; i < IMODELS; i++) {
    const folder = path.join(dir, `m${i + 1}`);
    fs.mkdirSync(folder, { recursive: true });
    const names: string[] = [];
    for (let j = 0; j < FILES; j++) {
      const k = j % samples.length;
      const name = `${samples[k].replace(/\.ifc$/i, "")}-${String(j).padStart(3, "0")}.ifc`;
      const content = withProjectName(texts[k], `imodel-sync bench-scale m${i + 1} copy ${j}`, samples[k]);
      fs.writeFileSync(path.join(folder, name), content, "latin1");
      bytes += Buffer.byteLength(content, "latin1");
      names.push(name);
    }
    folders.push(folder);
    files.push(names);
  }
  return { folders, files, bytes };
}

interface Measure {
  workers: number;
  /** Elements written (inserted) by all runs. */
  elements: number;
  files: number;
  /** First run queued → last run ended, in ms (run records). */
  spanMs: number;
  /** Each run: its result and its own queued → ended time (ms). */
  runs: { result: string; ms: number; elements: number }[];
  /** Elements of each file, by `<iModel>/<file>` (the two stacks must agree). */
  perFile: Map<string, number>;
  /** Share of the machine's CPU time busy (all cores, /proc/stat) from the runs' start to their end. */
  cpuBusy: number;
}

/** The machine's CPU time so far (/proc/stat, all cores, in clock ticks): busy and total. */
function cpuTimes(): { busy: number; total: number } {
  const [, ...fields] = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
  const n = fields.map(Number);
  const total = n.reduce((a, b) => a + b, 0);
  const idle = n[3] + (n[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

async function measure(workers: number): Promise<Measure> {
  const { dataDir, env, adminApiKey } = stacks.create({
    TEMPORAL_PORT: String(PORTS.temporal),
    TEMPORAL_UI_PORT: String(PORTS.ui),
    FERRETDB_PORT: String(PORTS.ferret),
    API_PORT: String(PORTS.api),
    LOG_LEVEL: process.env.SCALE_LOG_LEVEL || "warn",
    WORKERS: String(workers),
  });
  const corpus = makeCorpus(path.join(dataDir, "sources", "scale"));
  log(
    `${workers} worker(s): corpus of ${IMODELS} x ${FILES} files, ${fmt(corpus.bytes / 1e6, 2)} MB; starting the stack`,
  );
  await runStack(["up"], env);
  let key = adminApiKey;
  const call = apiClient(`http://127.0.0.1:${PORTS.api}`, () => key);
  const u = await call("POST", "/users", { email: `scale-${process.pid}@imodel-sync.localhost`, name: "Bench scale" });
  expectStatus(u, 201, "create the bench user");
  key = u.body.apiKey;
  const connections: { id: string; iModel: number; fileOf: Map<string, string> }[] = [];
  for (let i = 0; i < IMODELS; i++) {
    const m = await call("POST", "/imodels", { name: `Scale ${i + 1}` });
    expectStatus(m, 201, "create iModel");
    const c = await call("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: `Scale ${i + 1}`,
      source: { type: "local", path: corpus.folders[i] },
      sourceFiles: corpus.files[i].map((f) => ({ path: f, connectorType: "IFC" })),
    });
    expectStatus(c, 201, "create connection");
    connections.push({
      id: c.body.connection.id,
      iModel: i + 1,
      fileOf: new Map(c.body.connection.sourceFiles.map((f: any) => [f.id, f.path])),
    });
  }
  // All runs at once.
  const cpu0 = cpuTimes();
  const t0 = performance.now();
  const starts = await Promise.all(connections.map((c) => call("POST", `/connections/${c.id}/run`)));
  starts.forEach((r) => expectStatus(r, 202, "start run"));
  const done = new Map<number, any>();
  let lastLog = 0;
  while (done.size < connections.length) {
    if (performance.now() - t0 > RUN_TIMEOUT_MS) throw new Error(`runs not Completed after ${RUN_TIMEOUT_MS / 1000} s`);
    await sleep(POLL_MS);
    for (const [i, r] of starts.entries()) {
      if (done.has(i)) continue;
      const g = await call("GET", r.location!);
      expectStatus(g, 200, "read run");
      if (g.body.run.state === "Completed") done.set(i, g.body.run);
    }
    if (performance.now() - lastLog > 15_000) {
      lastLog = performance.now();
      log(
        `${workers} worker(s): ${done.size} of ${connections.length} runs completed after ${fmt((performance.now() - t0) / 1000)} s`,
      );
    }
  }
  const cpu1 = cpuTimes();
  const cpuBusy = (cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total);
  const runs = connections.map((_, i) => done.get(i));
  const perFile = new Map<string, number>();
  const measured: Measure["runs"] = [];
  let elements = 0;
  let files = 0;
  for (const [i, run] of runs.entries()) {
    const tasks: any[] = (run.jobs ?? []).flatMap((j: any) => j.tasks ?? []);
    let runElements = 0;
    for (const t of tasks) {
      const n = t.elements?.inserted ?? 0;
      perFile.set(`m${connections[i].iModel}/${connections[i].fileOf.get(t.sourceFileId) ?? t.path}`, n);
      runElements += n;
      files++;
    }
    elements += runElements;
    measured.push({
      result: run.result,
      ms: Date.parse(run.endDateTime) - Date.parse(run.queuedDateTime),
      elements: runElements,
    });
    if (run.result !== "Success")
      throw new Error(`run of iModel ${i + 1} ended ${run.result}: ${JSON.stringify(run.error)}`);
    if (tasks.length !== FILES) throw new Error(`run of iModel ${i + 1} has ${tasks.length} tasks for ${FILES} files`);
  }
  const spanMs =
    Math.max(...runs.map((r) => Date.parse(r.endDateTime))) -
    Math.min(...runs.map((r) => Date.parse(r.queuedDateTime)));
  log(`${workers} worker(s): ${elements} elements in ${fmt(spanMs / 1000, 2)} s`);
  await stacks.stop();
  return { workers, elements, files, spanMs, runs: measured, perFile, cpuBusy };
}

async function main(): Promise<number> {
  const results: Measure[] = [];
  for (const workers of [1, 2]) results.push(await measure(workers));
  const [one, two] = results;
  const differ = [...one.perFile].filter(([k, n]) => two.perFile.get(k) !== n);
  const rate = (m: Measure) => m.elements / (m.spanMs / 1000);
  const ratio = rate(two) / rate(one);
  const lines = [
    "",
    `# bench-scale: ${IMODELS} iModels x ${FILES} IFC files, all runs at once (${os.cpus().length} cores, load ${os
      .loadavg()
      .map((l) => fmt(l, 2))
      .join(" ")})`,
    "",
    "| workers | files | elements | first queued → last ended | elements/s | each run (s) | machine CPU busy |",
    "|---|---|---|---|---|---|---|",
    ...results.map(
      (m) =>
        `| ${m.workers} | ${m.files} | ${m.elements} | ${fmt(m.spanMs / 1000, 2)} s | ${fmt(rate(m))} | ${m.runs.map((r) => fmt(r.ms / 1000)).join(", ")} | ${fmt(m.cpuBusy * 100)} % |`,
    ),
    "",
    `elements per file: ${
      differ.length === 0
        ? "the same with 1 and 2 workers"
        : `${differ.length} files differ: ${differ
            .slice(0, 5)
            .map(([k, n]) => `${k} ${n}/${two.perFile.get(k)}`)
            .join(", ")}`
    }`,
    `goal: >= ${TARGET_RATIO} ${ratio >= TARGET_RATIO ? "PASS" : "FAIL"}`,
    `2 workers / 1 worker: ${fmt(ratio, 2)}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  return differ.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (err: Error) => {
    log(`failed: ${err.stack ?? err.message}`);
    await stacks.stop();
    process.exit(1);
  },
);
