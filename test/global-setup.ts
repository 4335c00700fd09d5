/**
 * Starts the whole stack once for the test run with the project's own launcher (scripts/stack.sh), on test ports and
 * a temporary DATA_DIR, and stops it at the end. Tests reach it through `inject("stack")`.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { TestProject } from "vitest/node";

export interface StackInfo {
  apiUrl: string;
  dataDir: string;
  sourcesDir: string;
  mongoUri: string;
  temporalAddress: string;
  env: Record<string, string>;
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

const root = path.resolve(__dirname, "..");

export default function setup(project: TestProject) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-test-"));
  const ports = { temporal: 17233, ui: 18233, ferret: 17017, api: 13000 };
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    FERRETDB_PORT: String(ports.ferret),
    API_PORT: String(ports.api),
    LOG_LEVEL: "info",
  };
  const run = (args: string[]) =>
    execFileSync("bash", [path.join(root, "scripts/stack.sh"), ...args], {
      cwd: root,
      env: { ...stripStackEnv(process.env), ...env },
      stdio: ["ignore", "inherit", "inherit"],
    });
  try {
    run(["up"]);
  } catch (err) {
    // Stop whatever did start, so a failed start leaves no server behind on the test ports.
    try {
      run(["down"]);
    } catch {
      /* already reported */
    }
    throw err;
  }
  const sourcesDir = path.join(dataDir, "sources");
  fs.mkdirSync(sourcesDir, { recursive: true });
  const info: StackInfo = {
    apiUrl: `http://127.0.0.1:${ports.api}`,
    dataDir,
    sourcesDir,
    mongoUri: `mongodb://127.0.0.1:${ports.ferret}/imodelsync`,
    temporalAddress: `127.0.0.1:${ports.temporal}`,
    env,
  };
  project.provide("stack", info);
  return () => {
    try {
      run(["down"]);
    } finally {
      if (!process.env.KEEP_TEST_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };
}

/** The user's own server addresses must not leak into the test stack. */
function stripStackEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const k of ["TEMPORAL_ADDRESS", "MONGODB_URI", "SOURCE_ROOTS", "DATA_DIR", "API_PORT"]) delete copy[k];
  return copy;
}
