/**
 * Prometheus metrics (prom-client) of the API and of the worker, each process with a registry of its own
 * (README.md "Metrics"). The API counts its requests; the worker counts runs, tasks, skipped files, schedule fires and
 * webhook deliveries as its activities see them, and reads the iModel queues and owner tokens from the records when
 * scraped. The worker serves its registry, followed by the Temporal SDK's own runtime metrics, on a small HTTP
 * listener of its own ({@link serveMetrics}).
 */
import * as http from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Store } from "./db";

/** Names start with this prefix (the SDK's own metrics start with `temporal_`). */
export const METRIC_PREFIX = "imodel_sync_";

/** Seconds: from a quick request to a slow one. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20];
/** Seconds: an unchanged file (tens of ms) to a large one (minutes). */
const TASK_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** The API's metrics: requests by method, Express route pattern (never raw ids) and status. */
export interface ApiMetrics {
  registry: Registry;
  httpRequests: Counter<"method" | "route" | "status">;
  httpDuration: Histogram<"method" | "route" | "status">;
}

/** The API's registry, with the process's default metrics (CPU, memory, event loop). */
export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: `${METRIC_PREFIX}http_requests_total`,
      help: "API requests answered, by method, route pattern (e.g. /connections/:id/runs) and status",
      labelNames: ["method", "route", "status"],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: `${METRIC_PREFIX}http_request_duration_seconds`,
      help: "Time to answer an API request, in seconds, by method, route pattern and status",
      labelNames: ["method", "route", "status"],
      buckets: HTTP_BUCKETS,
      registers: [registry],
    }),
  };
}

/** The worker's metrics (see README.md "Metrics" for each one's labels). */
export interface WorkerMetrics {
  registry: Registry;
  runsStarted: Counter<"trigger" | "kind">;
  runsCompleted: Counter<"trigger" | "kind" | "result">;
  taskDuration: Histogram<"connector_type" | "result">;
  elementsWritten: Counter<"connector_type" | "change">;
  filesSkipped: Counter<"reason">;
  scheduleFires: Counter<"outcome">;
  webhookDeliveries: Counter<"event" | "outcome">;
  notices: Counter<"kind">;
}

/** How long (ms) the figures read from the records on a scrape are reused by the next scrapes. */
export const RECORD_GAUGE_CACHE_MS = 5_000;

/**
 * The worker's registry, with the process's default metrics. With `store`, two gauges are read from the records at
 * scrape time (at most every {@link RECORD_GAUGE_CACHE_MS}): the runs waiting in each iModel's queue (runs Queued) and
 * the users' owner tokens by state.
 */
export function createWorkerMetrics(store?: Store): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Counter<L>({ name: `${METRIC_PREFIX}${name}`, help, labelNames, registers: [registry] });
  const metrics: WorkerMetrics = {
    registry,
    runsStarted: counter("runs_started_total", "Runs that started executing, by trigger and kind (sync, delete)", [
      "trigger",
      "kind",
    ]),
    runsCompleted: counter("runs_completed_total", "Runs completed, by trigger, kind and result", [
      "trigger",
      "kind",
      "result",
    ]),
    taskDuration: new Histogram({
      name: `${METRIC_PREFIX}task_duration_seconds`,
      help: "Time of a file task that read and wrote (or failed on) its file, in seconds, by connector type and result",
      labelNames: ["connector_type", "result"],
      buckets: TASK_BUCKETS,
      registers: [registry],
    }),
    elementsWritten: counter(
      "elements_written_total",
      "Elements written into iModels by file tasks, by connector type and change (inserted, updated, deleted)",
      ["connector_type", "change"],
    ),
    filesSkipped: counter(
      "files_skipped_total",
      "File tasks completed as Skipped, by reason (FileUnchanged, SourceFileUnmapped)",
      ["reason"],
    ),
    scheduleFires: counter(
      "schedule_fires_total",
      "Fires of connections' schedules, by outcome (Queued runs; Skipped, Refused, Duplicate, Superseded, ConnectionGone did not run)",
      ["outcome"],
    ),
    webhookDeliveries: counter(
      "webhook_delivery_attempts_total",
      "Attempts to deliver a webhook event, by event type and outcome (Succeeded, Failed)",
      ["event", "outcome"],
    ),
    notices: counter("notices_sent_total", "Emails sent to users, by kind", ["kind"]),
  };
  if (store) {
    const cached = <T>(read: () => Promise<T>) => {
      let at = 0;
      let value: Promise<T> | undefined;
      return () => {
        if (!value || Date.now() - at > RECORD_GAUGE_CACHE_MS) {
          at = Date.now();
          value = read().catch((err) => {
            value = undefined;
            throw err;
          });
        }
        return value;
      };
    };
    // A scan of the runs waiting (FerretDB scans for any filter but `_id`; docs/facts.md), at most every few seconds.
    const queued = cached(async () => {
      const runs = await store.runs.find({ state: "Queued" }, { projection: { iModelId: 1 } }).toArray();
      const byIModel = new Map<string, number>();
      for (const r of runs) byIModel.set(r.iModelId, (byIModel.get(r.iModelId) ?? 0) + 1);
      return byIModel;
    });
    new Gauge({
      name: `${METRIC_PREFIX}imodel_queue_length`,
      help: "Runs waiting in an iModel's run queue (Queued, not executing yet), by iModel id; iModels without waiting runs are left out",
      labelNames: ["imodel_id"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [iModelId, n] of await queued()) this.set({ imodel_id: iModelId }, n);
      },
    });
    const tokens = cached(async () => {
      const users = await store.db
        .collection<{ token?: { state: string } }>("users")
        .find({}, { projection: { "token.state": 1 } })
        .toArray();
      const byState = new Map<string, number>([
        ["Valid", 0],
        ["Expired", 0],
        ["None", 0],
      ]);
      for (const u of users) byState.set(u.token?.state ?? "None", (byState.get(u.token?.state ?? "None") ?? 0) + 1);
      return byState;
    });
    new Gauge({
      name: `${METRIC_PREFIX}owner_tokens`,
      help: "Users by the state of their owner token (Valid, Expired, None: not issued yet)",
      labelNames: ["state"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [state, n] of await tokens()) this.set({ state }, n);
      },
    });
  }
  return metrics;
}

/** Where the worker serves its metrics. */
export interface MetricsListenerOptions {
  host: string;
  port: number;
  registry: Registry;
  /**
   * Text appended to the registry's (Prometheus text format), e.g. the Temporal SDK's runtime metrics; a failure is
   * answered as a comment line, never as a failed scrape.
   */
  append?: () => Promise<string>;
}

/**
 * Serves `GET /metrics` (the registry, then `append`'s text) and nothing else (404) on `host:port`.
 * @returns the listening server (closed by the caller at shutdown).
 * @throws Error when the port cannot be bound (e.g. EADDRINUSE), once listening was attempted.
 */
export async function serveMetrics(options: MetricsListenerOptions): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://metrics");
    if (req.method !== "GET" || url.pathname !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    void (async () => {
      try {
        let text = await options.registry.metrics();
        if (options.append) {
          const more = await options
            .append()
            .catch((err: Error) => `# Temporal SDK metrics unavailable: ${err.message}\n`);
          text += `\n${more}`;
        }
        res.writeHead(200, { "content-type": options.registry.contentType }).end(text);
      } catch (err) {
        res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${(err as Error).message}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

/**
 * The Temporal SDK's runtime metrics from its own Prometheus listener (`Runtime.install` telemetry options), as text.
 * @throws Error when the listener does not answer within 3 s or answers another status than 200.
 */
export async function fetchSdkMetrics(address: string): Promise<string> {
  const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`the SDK's metrics listener answered ${res.status}`);
  return res.text();
}
