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
import { createRunEvents } from "../activities/run-events";
import { createScheduleActivities } from "../activities/schedules";
import { createWebhookActivities } from "../activities/webhooks";
import { closeKeptIModels, keepIModelsOpen, startIModelHost } from "../activities/imodel/writer";
import { runRequestsTaskQueue } from "../domain/model";
import { createWorkerQueueActivities, WorkerAffinity, workerTaskQueueName } from "../activities/worker-queue";
import { loadConfig } from "../lib/config";
import { ensurePeopleIndexes, peopleCollections } from "../lib/collections";
import { openStore } from "../lib/db";
import { createLogger } from "../lib/logger";
import { createWorkerMetrics, fetchSdkMetrics, serveMetrics } from "../lib/metrics";
import { createWebhookEmitter, ensureWebhookIndexes, webhookCollections } from "../lib/webhooks";
import { usePrivateFileModes } from "../lib/storage";

/**
 * How long (ms) an iModel stays open after a write when no other write comes: long enough to bridge the gap between a
 * run's files, short, because no other process can open it read-write meanwhile.
 */
const KEEP_IMODELS_OPEN_MS = 2_000;

async function main(): Promise<void> {
  usePrivateFileModes();
  const config = loadConfig();
  const logger = createLogger("worker", config.logLevel);
  const temporalLogLevel: LogLevel = config.logLevel === "debug" || config.logLevel === "trace" ? "INFO" : "WARN";
  // The SDK's own runtime metrics (workflow and activity task latencies, pollers, sticky cache...) on a Prometheus
  // listener of their own, which the worker's /metrics appends to its registry (README.md "Metrics").
  const sdkMetricsAddress = `${config.workerMetricsHost}:${config.sdkMetricsPort}`;
  Runtime.install({
    logger: new DefaultLogger(temporalLogLevel, (entry) => {
      const level = entry.level === "ERROR" ? "error" : entry.level === "WARN" ? "warn" : "info";
      logger[level]({ temporal: true, ...entry.meta }, entry.message);
    }),
    telemetryOptions: {
      metrics: {
        prometheus: { bindAddress: sdkMetricsAddress, countersTotalSuffix: true, useSecondsForDurations: true },
      },
    },
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
  await ensureWebhookIndexes(webhookCollections(store));
  const metrics = createWorkerMetrics(store);
  let metricsServer;
  try {
    metricsServer = await serveMetrics({
      host: config.workerMetricsHost,
      port: config.workerMetricsPort,
      registry: metrics.registry,
      append: () => fetchSdkMetrics(sdkMetricsAddress),
    });
  } catch (err) {
    logger.fatal(
      `cannot serve metrics on ${config.workerMetricsHost}:${config.workerMetricsPort}: ${(err as Error).message}; set WORKER_METRICS_PORT`,
    );
    process.exit(2);
  }
  const emitter = createWebhookEmitter({ store, temporal, taskQueue: config.taskQueue, logger });
  const events = createRunEvents({ store, logger, temporal, taskQueue: config.taskQueue, metrics, emitter });
  const mailer = createMailer({
    smtpUrl: config.smtpUrl,
    from: config.mailFrom,
    outboxDir: config.mailOutboxDir,
    logger,
  });

  // One host profile per process (a profile is locked by its process).
  await startIModelHost(path.join(config.dataDir, "cache"), { profileName: `worker-${process.pid}` });
  // A run writes its files one after another: each iModel stays open between them (docs/architecture.md "Open iModels
  // between writes").
  keepIModelsOpen(KEEP_IMODELS_OPEN_MS);

  // Worker affinity (docs/architecture.md "Several workers"): the shared queue runs the workflows and any activity; this
  // process's own queue runs the file activities of the runs it planned (one Worker each, the same activity
  // instances, so a file parsed ahead for the next task is found by it).
  const workerTaskQueue = workerTaskQueueName(config.taskQueue, config.workerInstance?.toString());
  const affinity = new WorkerAffinity(workerTaskQueue);
  const activities = {
    ...createRunRecordActivities({ store, logger, changeListsKept: config.changeListsKept, events }),
    ...createPreviewActivities({ store, logger, sourceRoots: config.sourceRoots }),
    ...createFileSyncActivities({ store, logger, sourceRoots: config.sourceRoots, metrics, affinity }),
    ...createDeletionActivities({ store, logger, emitter, metrics, affinity }),
    ...createOwnerActivities({ store, logger, mailer, publicApiUrl: config.publicApiUrl, emitter, metrics }),
    ...createScheduleActivities({ store, logger, temporal, taskQueue: config.taskQueue, events, metrics }),
    ...createWebhookActivities({ store, logger, allowedHosts: config.webhookAllowedHosts, metrics }),
    ...createWorkerQueueActivities(affinity),
  };
  const workers = await Promise.all([
    Worker.create({
      connection,
      namespace: config.temporalNamespace,
      taskQueue: config.taskQueue,
      workflowsPath: require.resolve("../workflows"),
      activities,
      // Planning and bookkeeping (the file activities of runs go to the own queue below): short, mostly waiting for
      // the database; a few at a time, so a slow planning does not hold every record write back.
      maxConcurrentActivityTaskExecutions: 4,
    }),
    Worker.create({
      connection,
      namespace: config.temporalNamespace,
      taskQueue: workerTaskQueue,
      activities,
      // The connectors and the writer are CPU-bound and one .bim has one writer: two files (of two iModels) at a time.
      maxConcurrentActivityTaskExecutions: 2,
    }),
    // Schedule fires waiting for their iModel queue's answer (domain/model.ts runRequestsTaskQueue): slots of their own.
    Worker.create({
      connection,
      namespace: config.temporalNamespace,
      taskQueue: runRequestsTaskQueue(config.taskQueue),
      activities,
      maxConcurrentActivityTaskExecutions: 10,
    }),
  ]);
  logger.info(
    {
      taskQueue: config.taskQueue,
      workerTaskQueue,
      temporal: config.temporalAddress,
      metrics: `http://${config.workerMetricsHost}:${config.workerMetricsPort}/metrics`,
    },
    "worker started",
  );
  try {
    // SIGINT/SIGTERM shut both down (the SDK's Runtime); in-flight activities finish first.
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await closeKeptIModels();
    metricsServer.close();
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
