/**
 * Runs scripts/stack.sh for tests that start a stack of their own (other ports, other DATA_DIR than the stack of
 * test/global-setup.ts).
 */
import { spawn } from "node:child_process";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const STACK = path.join(ROOT, "scripts", "stack.sh");

/** What a stack.sh command did: its exit code (null when killed by a signal) and its output. */
export interface StackResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Settings of the caller's shell (or of the global test stack) that must not reach a test's own stack. */
const STRIPPED = [
  "TEMPORAL_ADDRESS",
  "MONGODB_URI",
  "TEMPORAL_UI_URL",
  "DATA_DIR",
  "TEMPORAL_PORT",
  "TEMPORAL_UI_PORT",
  "FERRETDB_PORT",
  "API_PORT",
  "TEMPORAL_NAMESPACE",
  "WORKER_METRICS_PORT",
  "TEMPORAL_SDK_METRICS_PORT",
  "WORKERS",
  "APIS",
];

/**
 * Runs `scripts/stack.sh <args>` with the test process's environment (without the server addresses and ports of the
 * caller, {@link STRIPPED}) plus `env`, and waits for it to end. Never rejects on a non-zero exit: the caller checks
 * `code`.
 * @param args e.g. `["up", "servers"]`, `["status"]`, `["down"]`.
 * @param env the stack's settings (DATA_DIR, ports, WORKERS …).
 * @throws Error only when bash cannot be started.
 */
export function stackScript(args: string[], env: Record<string, string>): Promise<StackResult> {
  const base = { ...process.env };
  for (const k of STRIPPED) delete base[k];
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [STACK, ...args], {
      cwd: ROOT,
      env: { ...base, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
