/**
 * The HTTP API (Express). Thin: validates, reads and writes records, and talks to Temporal (updates, queries).
 * Routes, bodies and error shape: README.md "API".
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Client } from "@temporalio/client";
import express, { type Request } from "express";
import { pinoHttp } from "pino-http";
import { assertConnectionActive, assertFileNotAlreadyMapped, assertWithinLimits } from "../domain/connection-rules";
import { ApiError } from "../domain/errors";
import { type ConnectionRecord, type ConnectionStatus, type IModelRecord, type RunTrigger } from "../domain/model";
import { ownerSummary } from "../domain/users";
import { checkRealSourceFolder, checkSourceFolder } from "../domain/paths";
import { createConnectionBody, createIModelBody, listConnectionsQuery, pagingQuery } from "../domain/schemas";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import { iModelMappingLockKey, iModelMappingLockOptions, withLock } from "../lib/locks";
import type { Logger } from "../lib/logger";
import { activeMappingOf, mappedFiles } from "../lib/mapping";
import { requestRun as requestRunOfQueue } from "../lib/runs";
import { diskSpace } from "../lib/storage";
import type { RunRequestResult } from "../workflows/definitions";
import { authenticate, currentUser } from "./auth";
import { errorHandler, JSON_MEDIA_TYPES, listPage, parse, requireJsonBody, route } from "./http";
import { copyOwnerToken, ownershipRouter } from "./ownership";
import { lifecycleRouter } from "./lifecycle";
import { loadConnection, loadIModel, realSourceRoots as realSourceRootsOf, runWithTasks } from "./lookups";
import { connectionJson, iModelJson, runJson } from "./representations";
import { schedulesRouter } from "./schedules";
import { checkNewSourceFiles } from "./source-files";
import { usersRouter } from "./users";

export interface ApiDeps {
  config: Config;
  store: Store;
  temporal: Client;
  logger: Logger;
}

export function createApp({ config, store, temporal, logger }: ApiDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(pinoHttp({ logger, autoLogging: { ignore: (req) => req.url === "/health" } }));
  // A POST/PUT/PATCH body must be JSON (415 otherwise), at most 1 MB (413).
  app.use(requireJsonBody());
  app.use(express.json({ limit: "1mb", type: JSON_MEDIA_TYPES }));
  // Bearer API keys; each request is also an owner-token visit and a team-member interaction (api/auth.ts).
  app.use(authenticate({ config, store, temporal, logger }));
  app.use(
    usersRouter({ store }),
    schedulesRouter({ config, store, temporal }),
    ownershipRouter({ config, store, temporal }),
    lifecycleRouter({ config, store, temporal }),
  );

  const now = () => new Date().toISOString();

  const getIModel = (id: string) => loadIModel(store, id);
  const realSourceRoots = () => realSourceRootsOf(config.sourceRoots);

  const getConnection = (id: string) => loadConnection(store, id);

  /**
   * Asks the iModel's run queue for a run (lib/runs.ts; the schedule activities call the same function).
   * @throws ApiError DependencyUnavailable when Temporal or its worker does not answer within 20 s.
   */
  async function requestRun(connection: ConnectionRecord, trigger: RunTrigger): Promise<RunRequestResult> {
    return requestRunOfQueue(temporal, config.taskQueue, connection, trigger);
  }

  app.get(
    "/health",
    route(async (_req, res) => {
      const checks: Record<string, string> = {};
      await store.db.command({ ping: 1 }).then(
        () => (checks.mongodb = "ok"),
        (e: Error) => (checks.mongodb = e.message),
      );
      await temporal.connection
        .withDeadline(Date.now() + 3000, () => temporal.workflowService.getSystemInfo({}))
        .then(
          () => (checks.temporal = "ok"),
          (e: Error) => (checks.temporal = e.message),
        );
      if (checks.temporal === "ok") {
        // A worker polled the workflow task queue within the last 90 s (Temporal keeps pollers listed a while).
        await temporal.connection
          .withDeadline(Date.now() + 3000, () =>
            temporal.workflowService.describeTaskQueue({
              namespace: config.temporalNamespace,
              taskQueue: { name: config.taskQueue },
              taskQueueType: 1 /* TASK_QUEUE_TYPE_WORKFLOW */,
            }),
          )
          .then(
            (r) => {
              const recent = (r.pollers ?? []).some(
                (p) => Number(p.lastAccessTime?.seconds ?? 0) * 1000 > Date.now() - 90_000,
              );
              checks.worker = recent ? "ok" : `no worker polls task queue ${config.taskQueue}`;
            },
            (e: Error) => (checks.worker = e.message),
          );
      }
      // Free space of the data folders (docs/architecture.md "Full disks"): low space degrades, it does not fail.
      const disk = await diskSpace(
        [config.dataDir, path.join(config.dataDir, "imodels"), path.join(config.dataDir, "logs"), config.mailOutboxDir],
        config.diskFreeMinMb,
      ).catch((e: Error) => e);
      if (disk instanceof Error) checks.disk = disk.message;
      else {
        const low = disk.filter((d) => d.low);
        checks.disk = low.length
          ? low.map((d) => `${d.path}: ${d.freeMb} MiB free, below DISK_FREE_MIN_MB ${config.diskFreeMinMb}`).join("; ")
          : "ok";
      }
      const ok = Object.entries(checks).every(([k, v]) => k === "disk" || v === "ok");
      const status = !ok ? "unavailable" : checks.disk === "ok" ? "ok" : "degraded";
      res.status(ok ? 200 : 503).json({
        status,
        checks,
        disk: {
          minFreeMb: config.diskFreeMinMb,
          filesystems: disk instanceof Error ? [] : disk,
        },
      });
    }),
  );

  // ---- iModels ----
  app.post(
    "/imodels",
    route(async (req, res) => {
      const body = parse(createIModelBody, req.body);
      const id = randomUUID();
      const record: IModelRecord = {
        _id: id,
        name: body.name,
        location: { type: "local", path: path.join(config.dataDir, "imodels", `${id}.bim`) },
        createdDateTime: now(),
      };
      await store.imodels.insertOne(record);
      res
        .status(201)
        .location(`/imodels/${id}`)
        .json({ iModel: iModelJson(record) });
    }),
  );

  app.get(
    "/imodels",
    route(async (req, res) => {
      const q = parse(pagingQuery, req.query);
      const { items, _links } = await listPage(req, store.imodels, {}, { createdDateTime: 1, _id: 1 }, q);
      res.json({ iModels: items.map(iModelJson), _links });
    }),
  );

  app.get(
    "/imodels/:id",
    route(async (req, res) => {
      res.json({ iModel: iModelJson(await getIModel(req.params.id)) });
    }),
  );

  // ---- Connections ----
  app.post(
    "/connections",
    route(async (req, res) => {
      const body = parse(createConnectionBody, req.body);
      const iModel = await getIModel(body.iModelId);
      // Symbolic links: the folder and every file must really lie inside a SOURCE_ROOT (real paths compared); the
      // folder is stored as its real path. The worker checks the files again when it reads them.
      const roots = await realSourceRoots();
      const givenFolder = checkSourceFolder(body.source.path, config.sourceRoots);
      const sourceFolder = await fs.realpath(givenFolder).catch(() => undefined);
      const sourceNotFound = () =>
        new ApiError("SourceNotFound", `Source folder '${givenFolder}' does not exist or is not a folder.`, [
          { code: "SourceNotFound", message: "no such folder", target: "source.path" },
        ]);
      if (sourceFolder === undefined) throw sourceNotFound();
      checkRealSourceFolder(body.source.path, sourceFolder, roots);
      if (!(await fs.stat(sourceFolder).catch(() => undefined))?.isDirectory()) throw sourceNotFound();

      const checked = await checkNewSourceFiles(sourceFolder, body.sourceFiles, roots);
      const files = checked.files;

      // The rules below read the iModel's other connections and the insert must follow before any other change to
      // them: one change at a time per iModel (lease lock; 409 ConcurrentChange after 15 s of waiting).
      const record = await withLock(
        store.db,
        iModelMappingLockKey(iModel._id),
        async (lease) => {
          const { connections: siblings, states: siblingStates } = await activeMappingOf(store, iModel._id);
          assertWithinLimits(iModel._id, siblings, { connections: 1, compositeModels: files.length });
          assertFileNotAlreadyMapped(checked.byPath, await mappedFiles(siblings, siblingStates));

          const created: ConnectionRecord = {
            _id: randomUUID(),
            iModelId: iModel._id,
            displayName: body.displayName,
            source: { type: "local", path: sourceFolder },
            sourceFiles: files,
            definesGcs: false,
            status: "Active",
            createdDateTime: now(),
            // The creator owns the connection: scheduled syncs run on their behalf.
            ownerId: currentUser(req)._id,
            owner: ownerSummary(currentUser(req)),
          };
          lease.assertHeld();
          await store.connections.insertOne(created);
          return created;
        },
        iModelMappingLockOptions(iModel._id),
      );
      await copyOwnerToken(store, record);
      req.log.info({ connectionId: record._id, iModelId: iModel._id }, "connection created");
      res
        .status(201)
        .location(`/connections/${record._id}`)
        .json({ connection: connectionJson(record) });
    }),
  );

  app.get(
    "/connections",
    route(async (req, res) => {
      const q = parse(listConnectionsQuery, req.query);
      const status = q.status ? (q.status as ConnectionStatus) : { $in: ["Active", "Deleting"] as ConnectionStatus[] };
      const filter = { status, ...(q.iModelId ? { iModelId: q.iModelId } : {}) };
      if (q.iModelId) await getIModel(q.iModelId);
      const { items, _links } = await listPage(req, store.connections, filter, { createdDateTime: 1, _id: 1 }, q, {
        iModelId: q.iModelId,
        status: q.status,
      });
      const states = items.length
        ? await store.fileStates.find({ connectionId: { $in: items.map((c) => c._id) } }).toArray()
        : [];
      res.json({
        connections: items.map((c) =>
          connectionJson(
            c,
            states.filter((s) => s.connectionId === c._id),
          ),
        ),
        _links,
      });
    }),
  );

  app.get(
    "/connections/:id",
    route(async (req, res) => {
      const connection = await getConnection(req.params.id);
      res.json({
        connection: connectionJson(connection, await store.fileStates.find({ connectionId: connection._id }).toArray()),
      });
    }),
  );

  // ---- Runs ----
  app.post(
    "/connections/:id/run",
    route(async (req, res) => {
      const connection = await getConnection(req.params.id);
      assertConnectionActive(connection);
      const { runId, created } = await requestRun(connection, "manual");
      const location = `/connections/${connection._id}/runs/${runId}`;
      const run = await runWithTasks(store, runId);
      const body = run ? { run } : {};
      req.log.info({ connectionId: connection._id, runId, created }, created ? "run requested" : "run already active");
      res
        .status(created ? 202 : 303)
        .location(location)
        .json(body);
    }),
  );

  app.get(
    "/connections/:id/runs",
    route(async (req, res) => {
      const connection = await getConnection(req.params.id);
      const q = parse(pagingQuery, req.query);
      const filter = { connectionId: connection._id };
      const { items: runs, _links } = await listPage(req, store.runs, filter, { queuedDateTime: -1, _id: 1 }, q);
      const tasks = runs.length ? await store.tasks.find({ runId: { $in: runs.map((r) => r._id) } }).toArray() : [];
      res.json({
        runs: runs.map((r) =>
          runJson(
            r,
            tasks.filter((t) => t.runId === r._id),
          ),
        ),
        _links,
      });
    }),
  );

  app.get(
    "/connections/:id/runs/:runId",
    route(async (req: Request, res) => {
      const run = await store.runs.findOne({ _id: req.params.runId, connectionId: req.params.id });
      if (!run) {
        await getConnection(req.params.id);
        throw new ApiError("RunNotFound", `Run '${req.params.runId}' of connection '${req.params.id}' does not exist.`);
      }
      res.json({ run: runJson(run, await store.tasks.find({ runId: run._id }).toArray()) });
    }),
  );

  app.use((req, _res, next) => next(new ApiError("NotFound", `No route for ${req.method} ${req.path}.`)));
  app.use(errorHandler(logger));
  return app;
}
