/**
 * Starts the whole stack once for the test run with the project's own launcher (scripts/stack.sh), on test ports and
 * a temporary DATA_DIR, and stops it at the end. Tests reach it through `inject("stack")`.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { TestProject } from "vitest/node";
import { simpleParser } from "mailparser";
import { buildPortal, portalIsStale } from "../scripts/portal";
import { SMTPServer } from "smtp-server";
import { SCREENSHOT_DIR } from "./browser";

export interface StackInfo {
  apiUrl: string;
  dataDir: string;
  sourcesDir: string;
  mongoUri: string;
  temporalAddress: string;
  /** The admin's API key (also `env.ADMIN_API_KEY`); test/helpers.ts `http()` sends it. */
  adminApiKey: string;
  /** Every mail the stack sends over SMTP arrives here as `<n>.json` ({@link ReceivedMail}). */
  mailDir: string;
  /** The worker's metrics listener (`GET /metrics`; WORKER_METRICS_PORT = the API's port + 1). */
  workerMetricsUrl: string;
  env: Record<string, string>;
}

/** A mail received by the test SMTP server. */
export interface ReceivedMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  receivedDateTime: string;
}

/** The test SMTP server's port: the stack's worker (another process) sends mail here (SMTP_URL). */
export const TEST_SMTP_PORT = 12525 + Number(process.env.TEST_PORT_OFFSET ?? 0);

/** A real SMTP server (smtp-server) in the vitest main process: each message is parsed and written to `mailDir`. */
async function startSmtpServer(mailDir: string): Promise<SMTPServer> {
  fs.mkdirSync(mailDir, { recursive: true });
  let n = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (parsed) => {
          const mail: ReceivedMail = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: parsed.subject ?? "",
            text: parsed.text ?? "",
            receivedDateTime: new Date().toISOString(),
          };
          const file = path.join(mailDir, `${String(++n).padStart(5, "0")}-${process.pid}.json`);
          fs.writeFileSync(`${file}.tmp`, JSON.stringify(mail, null, 2));
          fs.renameSync(`${file}.tmp`, file);
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(TEST_SMTP_PORT, "127.0.0.1", () => resolve());
  });
  return server;
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

const root = path.resolve(__dirname, "..");

export default async function setup(project: TestProject) {
  // The API serves the built portal (web/dist); test/portal*.test.ts drive it in a browser and write screenshots,
  // those of this run only.
  if (portalIsStale()) buildPortal();
  fs.rmSync(SCREENSHOT_DIR, { recursive: true, force: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-test-"));
  // TEST_PORT_OFFSET moves the whole test stack, so two suites can run on one machine.
  const base = Number(process.env.TEST_PORT_OFFSET ?? 0);
  const ports = { temporal: 17233 + base, ui: 17234 + base, ferret: 17017 + base, api: 13000 + base };
  const mailDir = path.join(dataDir, "mail-received");
  const smtp = await startSmtpServer(mailDir);
  const adminApiKey = `isk_test_${randomBytes(24).toString("base64url")}`;
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    FERRETDB_PORT: String(ports.ferret),
    API_PORT: String(ports.api),
    LOG_LEVEL: "info",
    ADMIN_API_KEY: adminApiKey,
    SMTP_URL: `smtp://127.0.0.1:${TEST_SMTP_PORT}`,
    MAIL_FROM: "imodel-sync tests <imodel-sync@tests.example>",
    // Webhook receivers of the tests listen in the test process, on loopback.
    WEBHOOK_ALLOWED_HOSTS: "127.0.0.1",
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
    smtp.close();
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
    adminApiKey,
    mailDir,
    workerMetricsUrl: `http://127.0.0.1:${ports.api + 1}/metrics`,
    env,
  };
  project.provide("stack", info);
  return () => {
    try {
      run(["down"]);
    } finally {
      smtp.close();
      if (!process.env.KEEP_TEST_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };
}

/** The user's own server addresses must not leak into the test stack. */
function stripStackEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const k of [
    "TEMPORAL_ADDRESS",
    "MONGODB_URI",
    "SOURCE_ROOTS",
    "DATA_DIR",
    "API_PORT",
    "ADMIN_API_KEY",
    "ADMIN_EMAIL",
    "SMTP_URL",
    "MAIL_FROM",
    "MAIL_OUTBOX_DIR",
    "PUBLIC_API_URL",
    "WORKER_METRICS_HOST",
    "WORKER_METRICS_PORT",
    "TEMPORAL_SDK_METRICS_PORT",
    "WEBHOOK_ALLOWED_HOSTS",
  ])
    delete copy[k];
  return copy;
}
