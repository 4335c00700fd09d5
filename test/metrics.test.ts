/**
 * Prometheus metrics on the real stack (README.md "Metrics"): the API's `GET /metrics` (administrators only) and the
 * worker's listener (with the Temporal SDK's runtime metrics appended) are scraped before and after a run, and the
 * values move: runs started and completed, task durations and elements written by connector type, files skipped,
 * API requests by route pattern (never a raw id) and status. Also what an operator sees of the run in Temporal:
 * the static summary and details of its workflow, a summary per file activity, the run's summary as its result.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, Connection } from "@temporalio/client";
import { RECORD_GAUGE_CACHE_MS } from "../lib/metrics";
import { metricSample as sample } from "../scripts/bench-common";
import { createConnection, createUser, http, httpAs, makeSource, SAMPLE, stack, waitForRun } from "./helpers";

const HVAC = "ifc4_hvac_air_terminal_duct.ifc";

const scrapeApi = async () => {
  const r = await http<string>("GET", "/metrics");
  expect(r.status).toBe(200);
  return r.body;
};
const scrapeWorker = async () => {
  const r = await fetch(stack().workerMetricsUrl);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
  return r.text();
};

describe("metrics", () => {
  it("GET /metrics of the API is for administrators: 401 without a key, 403 AdminOnly for a user", async () => {
    expect((await httpAs(null, "GET", "/metrics")).status).toBe(401);
    const user = await createUser("Metrics User");
    const r = await httpAs(user.apiKey, "GET", "/metrics");
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("AdminOnly");
  });

  it("API and worker figures move after a run; routes are patterns, never ids", async () => {
    const source = makeSource("metrics", { [HVAC]: SAMPLE(HVAC) });
    const { connection } = await createConnection(source, [HVAC], "metrics");
    const [api0, worker0] = [await scrapeApi(), await scrapeWorker()];
    const runRoute = { method: "POST", route: "/connections/:id/run", status: "202" };
    const completed = { trigger: "manual", kind: "sync", result: "Success" };
    const ifc = { connector_type: "IFC" };

    const start = await http("POST", `/connections/${connection.id}/run`);
    await waitForRun(start.location!);
    // The same connection again: its unchanged file is skipped.
    const again = await http("POST", `/connections/${connection.id}/run`);
    await waitForRun(again.location!);

    // The run record turns Completed before the same activity counts the run (activities/run-records.ts, then
    // run-events.ts), and gauges read from the records are cached for RECORD_GAUGE_CACHE_MS (lib/metrics.ts): scrape
    // until both have caught up, then check exact values.
    const api1 = await scrapeApi();
    const caughtUp = (text: string) =>
      sample(text, "imodel_sync_runs_completed_total", completed) -
        sample(worker0, "imodel_sync_runs_completed_total", completed) >=
        2 && sample(text, "imodel_sync_owner_tokens", { state: "Valid" }) > 0;
    let worker1 = await scrapeWorker();
    for (const until = Date.now() + RECORD_GAUGE_CACHE_MS + 5_000; !caughtUp(worker1) && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 200));
      worker1 = await scrapeWorker();
    }
    expect(
      sample(api1, "imodel_sync_http_requests_total", runRoute) -
        sample(api0, "imodel_sync_http_requests_total", runRoute),
    ).toBe(2);
    expect(
      sample(api1, "imodel_sync_http_request_duration_seconds_count", runRoute) -
        sample(api0, "imodel_sync_http_request_duration_seconds_count", runRoute),
    ).toBe(2);
    expect(
      sample(api1, "imodel_sync_http_requests_total", { route: "/connections/:id/runs/:runId", status: "200" }),
    ).toBeGreaterThan(0);
    // No raw id ever becomes a label value.
    expect(api1).not.toContain(connection.id);
    expect(sample(api1, "process_cpu_seconds_total")).toBeGreaterThan(0);

    const delta = (name: string, labels: Record<string, string>) =>
      sample(worker1, name, labels) - sample(worker0, name, labels);
    expect(delta("imodel_sync_runs_started_total", { trigger: "manual", kind: "sync" })).toBe(2);
    expect(delta("imodel_sync_runs_completed_total", completed)).toBe(2);
    expect(delta("imodel_sync_task_duration_seconds_count", { ...ifc, result: "Success" })).toBe(1);
    expect(delta("imodel_sync_elements_written_total", { ...ifc, change: "inserted" })).toBe(7);
    expect(delta("imodel_sync_files_skipped_total", { reason: "FileUnchanged" })).toBe(1);
    // Read from the records when scraped; the SDK's own runtime metrics follow the worker's.
    expect(worker1).toMatch(/^# HELP imodel_sync_imodel_queue_length /m);
    expect(sample(worker1, "imodel_sync_owner_tokens", { state: "Valid" })).toBeGreaterThan(0);
    expect(worker1).toMatch(/^temporal_\w+/m);
    expect(worker1).toContain("temporal_workflow_task_execution_latency");
  });
});

describe("what an operator sees in the Temporal UI", () => {
  let connection: Connection;
  let client: Client;
  beforeAll(async () => {
    connection = await Connection.connect({ address: stack().temporalAddress });
    client = new Client({ connection });
  });
  afterAll(() => connection?.close());

  it("a sync run: static summary and details, each file activity's summary, the run's summary as its result", async () => {
    const source = makeSource("temporal-ui", { [HVAC]: SAMPLE(HVAC), "b.ifc": SAMPLE(HVAC) });
    const { iModelId, connection: c } = await createConnection(source, [HVAC, "b.ifc"], "UI view");
    const { run } = await waitForRun((await http("POST", `/connections/${c.id}/run`)).location!);
    const handle = client.workflow.getHandle(run.workflowId);
    const description = await handle.describe();
    expect(await description.staticSummary()).toBe('Sync of "UI view" (manual): 2 composite models');
    const details = await description.staticDetails();
    expect(details).toContain(`**Connection**: UI view (\`${c.id}\`)`);
    expect(details).toContain(`**iModel**: \`${iModelId}\``);
    expect(details).toContain(`- ${HVAC} (IFC)`);
    expect(details).toContain("- b.ifc (IFC)");
    expect(await handle.result()).toEqual({
      summary: {
        result: "Success",
        files: [HVAC, "b.ifc"].map((p) => ({
          path: p,
          phase: "MasterFile",
          result: "Success",
          elements: { inserted: 7, updated: 0, deleted: 0, unchanged: 0 },
        })),
        elements: { inserted: 14, updated: 0, deleted: 0, unchanged: 0 },
      },
    });
    // Each file activity's summary is the file's path (its user metadata in the history).
    const history = await handle.fetchHistory();
    const summaries: string[] = [];
    for (const e of history.events ?? []) {
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name !== "syncSourceFile") continue;
      const data = e.userMetadata?.summary?.data;
      summaries.push(data ? JSON.parse(Buffer.from(data).toString("utf8")) : "");
    }
    expect(summaries).toEqual([`MasterFile: ${HVAC}`, "MasterFile: b.ifc"]);
  });
});
