/**
 * The Temporal worker: runs the workflows and the activities (parsing design files, writing iModels).
 * Configuration: see lib/config.ts. Stops gracefully on SIGINT/SIGTERM (in-flight activities finish first).
 */
import * as path from "node:path";
import { Client, Connection } from "@temporalio/client";
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from "@temporalio/worker";
import { createDeletionActivities } from "../activities/deletion";
import { createMailer } from "../activities/email";
import { createFileSyncActivities } from "../activities/file-sync";
import { createOwnerActivities } from "../activities/owners";
import { createPreviewActivities } from "../activities/previews";
import { createRunRecordActivities } from "../activities/run-records";
import { createScheduleActivities } from "../activities/schedules";
import { startIModelHost } from "../activities/imodel/writer";
import { loadConfig } from "../lib/config";
import { ensurePeopleIndexes, peopleCollections } from "../lib/collections";
import { openStore } from "../lib/db";
import { createLogger } from "../lib/logger";
import { usePrivateFileModes } from "../lib/storage";

async function main(): Promise<void> {
  usePrivateFileModes();
  const config = loadConfig();
  const logger = createLogger("worker", config.logLevel);
  const temporalLogLevel: LogLevel = config.logLevel === "debug" || config.logLevel === "trace" ? "INFO" : "WARN";
  Runtime.install({
    logger: new DefaultLogger(temporalLogLevel, (entry) => {
      const level = entry.level === "ERROR" ? "error" : entry.level === "WARN" ? "warn" : "info";
      logger[level]({ temporal: true, ...entry.meta }, entry.message);
    }),
  });

  let store;
  try {
    store = await openStore(config.mongoUri);
  } catch (err) {
    logger.fatal(`cannot reach MongoDB at ${config.mongoUri}: ${(err as Error).message}`);
    process.exit(2);
  }
  let connection;
  try {
    connection = await NativeConnection.connect({ address: config.temporalAddress });
  } catch (err) {
    logger.fatal(`cannot reach Temporal at ${config.temporalAddress}: ${(err as Error).message}`);
    process.exit(2);
  }
  // A client for the schedule activities (they ask the iModel run queue for scheduled runs) and the mailer.
  const clientConnection = await Connection.connect({ address: config.temporalAddress });
  const temporal = new Client({ connection: clientConnection, namespace: config.temporalNamespace });
  await ensurePeopleIndexes(peopleCollections(store));
  const mailer = createMailer({
    smtpUrl: config.smtpUrl,
    from: config.mailFrom,
    outboxDir: config.mailOutboxDir,
    logger,
  });

  // One host profile per process (a profile is locked by its process).
  await startIModelHost(path.join(config.dataDir, "cache"), { profileName: `worker-${process.pid}` });

  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    workflowsPath: require.resolve("../workflows"),
    activities: {
      ...createRunRecordActivities({ store, logger, changeListsKept: config.changeListsKept }),
      ...createPreviewActivities({ store, logger, sourceRoots: config.sourceRoots }),
      ...createFileSyncActivities({ store, logger, sourceRoots: config.sourceRoots }),
      ...createDeletionActivities({ store, logger }),
      ...createOwnerActivities({ store, logger, mailer, publicApiUrl: config.publicApiUrl }),
      ...createScheduleActivities({ store, logger, temporal, taskQueue: config.taskQueue }),
    },
    // The connectors and the writer are CPU-bound and one .bim has one writer: a few at a time is plenty.
    maxConcurrentActivityTaskExecutions: 2,
  });
  logger.info({ taskQueue: config.taskQueue, temporal: config.temporalAddress }, "worker started");
  try {
    await worker.run();
  } finally {
    await connection.close();
    await clientConnection.close();
    mailer.close();
    await store.close();
    logger.info("worker stopped");
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
