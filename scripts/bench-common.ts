/**
 * What the benchmarks (`make bench`, `make bench-scale`) share: the IFC samples they copy (each copy made unique, and
 * still valid, by a different IfcProject Name, so that no two corpus files have the same content hash) and the stack
 * settings a benchmark's own stack must not inherit from the user's environment.
 */
import * as fs from "node:fs";
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
