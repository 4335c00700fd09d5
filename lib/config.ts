import * as path from "node:path";
import { z } from "zod";
import { DEFAULT_CHANGE_LISTS_KEPT } from "../domain/change-lists";

/**
 * Runtime configuration from the environment. Every part of the stack can be pointed elsewhere:
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, MONGODB_URI, DATA_DIR, API_PORT, API_HOST, SOURCE_ROOTS, LOG_LEVEL,
 * ADMIN_API_KEY, ADMIN_EMAIL, SMTP_URL, MAIL_FROM, MAIL_OUTBOX_DIR, PUBLIC_API_URL, DISK_FREE_MIN_MB, CHANGE_LISTS_KEPT.
 * ADMIN_API_KEY, ADMIN_EMAIL, SMTP_URL, MAIL_FROM, MAIL_OUTBOX_DIR, PUBLIC_API_URL, DISK_FREE_MIN_MB, WORKER_METRICS_HOST,
 * WORKER_METRICS_PORT, TEMPORAL_SDK_METRICS_PORT, WEBHOOK_ALLOWED_HOSTS, WORKER_INSTANCE.
 */
const PROJECT_ROOT = path.resolve(__dirname, "..");

const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).default("127.0.0.1:7233"),
  TEMPORAL_NAMESPACE: z.string().min(1).default("default"),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default("imodel-sync"),
  MONGODB_URI: z.string().startsWith("mongodb").default("mongodb://127.0.0.1:27017/imodelsync"),
  DATA_DIR: z.string().min(1).default(path.join(PROJECT_ROOT, "data")),
  API_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Interface the API binds to: loopback by default; `0.0.0.0` in containers. */
  API_HOST: z.string().min(1).default("127.0.0.1"),
  /** Folders local sources may read, separated by the platform's path delimiter (`:` on Linux). */
  SOURCE_ROOTS: z.string().optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  TEMPORAL_UI_URL: z.string().default("http://127.0.0.1:8233"),
  /** Key of the admin user the API ensures at start (empty: no admin bootstrap). At least 16 characters. */
  ADMIN_API_KEY: z
    .string()
    .min(16, "must be at least 16 characters (use a long random key)")
    .optional()
    .or(z.literal("")),
  ADMIN_EMAIL: z.string().min(3).default("admin@imodel-sync.localhost"),
  /** SMTP server for notices, e.g. smtp://user:pass@mail.example.com:587; empty = write .eml files to MAIL_OUTBOX_DIR. */
  SMTP_URL: z.string().optional(),
  MAIL_FROM: z.string().min(3).default("imodel-sync <imodel-sync@imodel-sync.localhost>"),
  MAIL_OUTBOX_DIR: z.string().optional(),
  /** Base URL of the API as people reach it (links in emails). */
  PUBLIC_API_URL: z.string().optional(),
  /** `/health` reports `degraded` when a filesystem of DATA_DIR has less free space than this, in MiB. */
  DISK_FREE_MIN_MB: z.coerce.number().int().min(0).default(500),
  /** How many runs per connection keep their change list (README "What a run changed"); older lists are pruned. */
  CHANGE_LISTS_KEPT: z.coerce.number().int().min(1).max(10_000).default(DEFAULT_CHANGE_LISTS_KEPT),
  /** Interface and port of the worker's metrics listener (`GET /metrics`): loopback by default. */
  WORKER_METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  /** Default API_PORT + 1. */
  WORKER_METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** Port of the Temporal SDK's own Prometheus listener (on WORKER_METRICS_HOST); default WORKER_METRICS_PORT + 1. */
  TEMPORAL_SDK_METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /**
   * Hosts webhooks may call (a webhook URL is a request the server makes): host names, `host:port`, `*.domain` (any
   * subdomain) or `*` (any), separated by commas or spaces. Empty: no webhook can be created or delivered.
   */
  WEBHOOK_ALLOWED_HOSTS: z.string().default(""),
  /** The worker process's instance number on its host, 1-based (scripts/stack.sh sets it for each worker it starts). */
  WORKER_INSTANCE: z.coerce.number().int().min(1).optional(),
});

export interface Config {
  temporalAddress: string;
  temporalNamespace: string;
  taskQueue: string;
  mongoUri: string;
  /** Absolute. iModels live in `${dataDir}/imodels`. */
  dataDir: string;
  apiPort: number;
  apiHost: string;
  /** Absolute, resolved folders. */
  sourceRoots: string[];
  logLevel: string;
  temporalUiUrl: string;
  /** Undefined when no admin is bootstrapped. */
  adminApiKey?: string;
  adminEmail: string;
  /** Undefined = file outbox `mailOutboxDir`. */
  smtpUrl?: string;
  mailFrom: string;
  /** Absolute; default `${dataDir}/outbox`. */
  mailOutboxDir: string;
  publicApiUrl: string;
  /** Free space (MiB) below which `/health` reports a filesystem of the data folders as low (degraded). */
  diskFreeMinMb: number;
  /** Runs per connection whose change list is kept (README "What a run changed"). */
  changeListsKept: number;
  /** The worker's metrics listener (host and port), and the port of the Temporal SDK's runtime metrics. */
  workerMetricsHost: string;
  workerMetricsPort: number;
  sdkMetricsPort: number;
  /** WEBHOOK_ALLOWED_HOSTS, one pattern per entry, lower case (domain/webhooks.ts `hostAllowed`). */
  webhookAllowedHosts: string[];
  /**
   * WORKER_INSTANCE: which of the worker processes on this host this one is, 1-based (scripts/stack.sh `WORKERS=n`
   * starts instances 1 … n); it names the worker's own task queue (activities/worker-queue.ts). Undefined when not
   * set (a worker started by hand, or the API).
   */
  workerInstance?: number;
}

/**
 * Reads and validates the environment.
 * @throws Error naming every invalid variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // The launcher passes unset optional settings as empty strings: empty means default for these.
  const optional = [
    "ADMIN_API_KEY",
    "ADMIN_EMAIL",
    "SMTP_URL",
    "MAIL_FROM",
    "MAIL_OUTBOX_DIR",
    "PUBLIC_API_URL",
    "DISK_FREE_MIN_MB",
    "CHANGE_LISTS_KEPT",
    "WORKER_METRICS_HOST",
    "WORKER_METRICS_PORT",
    "TEMPORAL_SDK_METRICS_PORT",
    "WEBHOOK_ALLOWED_HOSTS",
    "WORKER_INSTANCE",
  ];
  env = Object.fromEntries(Object.entries(env).filter(([k, v]) => !(optional.includes(k) && v === "")));
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid configuration: ${lines.join("; ")}`);
  }
  const e = parsed.data;
  const dataDir = path.resolve(e.DATA_DIR);
  const roots = (
    e.SOURCE_ROOTS ?? [path.join(PROJECT_ROOT, "samples"), path.join(dataDir, "sources")].join(path.delimiter)
  )
    .split(path.delimiter)
    .filter((r) => r.trim() !== "")
    .map((r) => path.resolve(r));
  return {
    temporalAddress: e.TEMPORAL_ADDRESS,
    temporalNamespace: e.TEMPORAL_NAMESPACE,
    taskQueue: e.TEMPORAL_TASK_QUEUE,
    mongoUri: e.MONGODB_URI,
    dataDir,
    apiPort: e.API_PORT,
    apiHost: e.API_HOST,
    sourceRoots: roots,
    logLevel: e.LOG_LEVEL,
    temporalUiUrl: e.TEMPORAL_UI_URL,
    adminApiKey: e.ADMIN_API_KEY || undefined,
    adminEmail: e.ADMIN_EMAIL,
    smtpUrl: e.SMTP_URL || undefined,
    mailFrom: e.MAIL_FROM,
    mailOutboxDir: path.resolve(e.MAIL_OUTBOX_DIR || path.join(dataDir, "outbox")),
    publicApiUrl: (e.PUBLIC_API_URL || `http://127.0.0.1:${e.API_PORT}`).replace(/\/+$/, ""),
    diskFreeMinMb: e.DISK_FREE_MIN_MB,
    changeListsKept: e.CHANGE_LISTS_KEPT,
    workerMetricsHost: e.WORKER_METRICS_HOST,
    workerMetricsPort: e.WORKER_METRICS_PORT ?? e.API_PORT + 1,
    sdkMetricsPort: e.TEMPORAL_SDK_METRICS_PORT ?? (e.WORKER_METRICS_PORT ?? e.API_PORT + 1) + 1,
    webhookAllowedHosts: e.WEBHOOK_ALLOWED_HOSTS.split(/[\s,]+/)
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== ""),
    workerInstance: e.WORKER_INSTANCE,
  };
}
