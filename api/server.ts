/**
 * API process entry point: connects to MongoDB and Temporal (retrying for up to 30 s), then serves HTTP on API_PORT.
 * Exits with a one-line message (no stack trace) when a dependency is unreachable or the port is taken.
 */
import { Client, Connection } from "@temporalio/client";
import { createApp } from "./app";
import { ensureAdminUser } from "./auth";
import { ensurePeopleIndexes, peopleCollections } from "../lib/collections";
import { loadConfig } from "../lib/config";
import { openStore, type Store } from "../lib/db";
import { createLogger } from "../lib/logger";
import { usePrivateFileModes } from "../lib/storage";
import { migrateLegacyTeamMembers } from "../lib/teams";

async function retry<T>(what: string, fn: () => Promise<T>, totalMs = 30_000): Promise<T> {
  const deadline = Date.now() + totalMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`cannot reach ${what}: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function main(): Promise<void> {
  usePrivateFileModes();
  const config = loadConfig();
  const logger = createLogger("api", config.logLevel);
  const store: Store = await retry(`MongoDB at ${config.mongoUri}`, () => openStore(config.mongoUri, 3000));
  const connection = await retry(`Temporal at ${config.temporalAddress}`, () =>
    Connection.connect({ address: config.temporalAddress, connectTimeout: 3000 }),
  );
  const temporal = new Client({ connection, namespace: config.temporalNamespace });
  const people = peopleCollections(store);
  await ensurePeopleIndexes(people);
  await ensureAdminUser(store, config, logger);
  // Team member records written before iModel teams existed become teams (README "Authentication and users").
  await migrateLegacyTeamMembers(store, people, logger);
  const app = createApp({ config, store, temporal, logger });
  // A stray rejection is a bug to log, not a reason to take the API down for every other caller.
  process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled rejection"));
  const server = app.listen(config.apiPort, config.apiHost, () => {
    logger.info(
      { host: config.apiHost, port: config.apiPort },
      `API listening on http://${config.apiHost}:${config.apiPort}`,
    );
  });
  server.on("error", (err: NodeJS.ErrnoException) => {
    logger.fatal(err.code === "EADDRINUSE" ? `port ${config.apiPort} is already in use; set API_PORT` : err.message);
    process.exit(2);
  });
  const stop = () => {
    logger.info("API stopping");
    server.closeIdleConnections();
    server.close(() => {
      void Promise.allSettled([connection.close(), store.close()]).then(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((err) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(2);
});
