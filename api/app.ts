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
import {
  assertCompositeModelsChosen,
  assertConnectionActive,
  assertFileNotAlreadyMapped,
  assertWithinLimits,
} from "../domain/connection-rules";
import { ApiError } from "../domain/errors";
import {
  type ConnectionRecord,
  type ConnectionStatus,
  type IModelRecord,
  type RunRecord,
  type RunTrigger,
} from "../domain/model";
import { estimateRunDuration } from "../domain/run-estimate";
import { isAdmin, ownerSummary, teamMemberId } from "../domain/users";
import type { Filter } from "mongodb";
import { checkRealSourceFolder, checkSourceFolder } from "../domain/paths";
import {
  createConnectionBody,
  createIModelBody,
  listConnectionsQuery,
  listRunsQuery,
  pagingQuery,
  runConnectionBody,
} from "../domain/schemas";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import { publishEvents, withEvents } from "../lib/connection-events";
import { iModelMappingLockKey, iModelMappingLockOptions, withLock } from "../lib/locks";
import type { Logger } from "../lib/logger";
import { createApiMetrics, type ApiMetrics } from "../lib/metrics";
import { createWebhookEmitter } from "../lib/webhooks";
import { activeMappingOf, mappedFiles } from "../lib/mapping";
import { requestRun as requestRunOfQueue } from "../lib/runs";
import { completedTaskCache, readRunTasks, readTasksOfRuns } from "../lib/run-tasks";
import {
  appendId,
  connectionRunsList,
  createIdList,
  iModelConnectionsList,
  listIds,
  mergeOrdered,
  pageOfList,
  pageOfRecords,
  recordsOfList,
} from "../lib/id-lists";
import { peopleCollections } from "../lib/collections";
import { diskSpace } from "../lib/storage";
import { putTeamMember } from "../lib/teams";
import type { RunRequest, RunRequestResult } from "../workflows/definitions";
import { authenticate, currentUser, viewerOf } from "./auth";
import {
  errorHandler,
  JSON_MEDIA_TYPES,
  listPage,
  pageOf,
  parse,
  requireJsonBody,
  requireObjectBody,
  route,
} from "./http";
import { copyOwnerToken, ownershipRouter } from "./ownership";
import { lifecycleRouter } from "./lifecycle";
import {
  iModelNotFound,
  loadConnection,
  loadIModel,
  realSourceRoots as realSourceRootsOf,
  recordedRun,
  fileStatesOf,
} from "./lookups";
import { connectionJson, iModelJson, runJson } from "./representations";
import { metricsRouter, requestMetrics } from "./metrics";
import { openApiRouter } from "./openapi";
import { portalConfigRouter, portalFiles } from "./portal";
import { runPreview } from "./previews";
import { runControlRouter } from "./run-control";
import { schedulesRouter } from "./schedules";
import { teamsRouter } from "./teams";
import { sourcesRouter } from "./sources";
import { checkNewSourceFiles } from "./source-files";
import { usersRouter } from "./users";
import { webhooksRouter } from "./webhooks";
import { findById } from "../lib/db";

export interface ApiDeps {
  config: Config;
  store: Store;
  temporal: Client;
  logger: Logger;
  /** The API's Prometheus registry (a new one when not given). */
  metrics?: ApiMetrics;
}

export function createApp({ config, store, temporal, logger, metrics = createApiMetrics() }: ApiDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  // Completed task records, which are never written again, for the reads of runs (lib/run-tasks.ts).
  const completedTasks = completedTaskCache();
  // Every answer is counted by route pattern and status (README.md "Metrics").
  app.use(requestMetrics(metrics, (p) => p === "/" || p === "/index.html" || p.startsWith("/assets/")));
  app.use(pinoHttp({ logger, autoLogging: { ignore: (req) => req.url === "/health" } }));
  // The portal's files (web/dist) need no key: the sign-in page is one of them (api/portal.ts).
  app.use(portalFiles());
  // The OpenAPI document and the API reference page need no key either (api/openapi.ts).
  app.use(openApiRouter());
  // A POST/PUT/PATCH body must be JSON (415 otherwise), at most 1 MB (413), and a JSON object (400 otherwise: any JSON
  // value is parsed, so that `null` or `"x"` is told apart from text that is no JSON).
  app.use(requireJsonBody());
  app.use(express.json({ limit: "1mb", type: JSON_MEDIA_TYPES, strict: false }));
  app.use(requireObjectBody());
  // Bearer API keys; each request is also an owner-token visit and, for a team member, an interaction (api/auth.ts).
  app.use(authenticate({ config, store, temporal, logger }));
  // Webhook events the API itself emits (a connection deleted keeping its data) go out like the worker's.
  const emitter = createWebhookEmitter({ store, temporal, taskQueue: config.taskQueue, logger });
  app.use(
    usersRouter({ store }),
    teamsRouter({ store }),
    schedulesRouter({ config, store, temporal }),
    ownershipRouter({ config, store, temporal }),
    lifecycleRouter({ config, store, temporal, emitter }),
    runControlRouter({ config, store, temporal }),
    sourcesRouter({ config }),
    portalConfigRouter({ config }),
    metricsRouter(metrics),
    webhooksRouter({ config, store, emitter }),
  );

  const now = () => new Date().toISOString();
  const people = peopleCollections(store);

  // Both answer 404 for an id the caller may not see, as for an unknown one (api/lookups.ts).
  const getIModel = (req: Request, id: string) => loadIModel(store, id, viewerOf(req));
  const getConnection = (req: Request, id: string) => loadConnection(store, id, viewerOf(req));
  const realSourceRoots = () => realSourceRootsOf(config.sourceRoots);

  /**
   * Asks the iModel's run queue for a run (lib/runs.ts; the schedule activities call the same function).
   * @throws ApiError DependencyUnavailable when Temporal or its worker does not answer within 20 s.
   */
  async function requestRun(
    connection: ConnectionRecord,
    trigger: RunTrigger,
    recorded: Pick<RunRequest, "confirmDeletions" | "sourceFileIds" | "force" | "requestedBy"> = {},
  ): Promise<RunRequestResult> {
    return requestRunOfQueue(temporal, config.taskQueue, connection, trigger, undefined, undefined, recorded);
  }

  /**
   * The dry run of a run (README "Run control"): the worker plans it as it would start now, hashing the files (see
   * activities/previews.ts), and the duration is estimated from the connection's last 20 completed sync runs
   * (domain/run-estimate.ts). Nothing is started or written.
   * @throws ApiError DependencyUnavailable (503) when Temporal or the worker does not answer in time.
   */
  async function previewRun(connection: ConnectionRecord, sourceFileIds: string[] | undefined, force: boolean) {
    const out = await runPreview(temporal, config.taskQueue, connection, {
      kind: "run",
      connectionId: connection._id,
      ...(sourceFileIds ? { sourceFileIds } : {}),
      ...(force ? { force: true } : {}),
    });
    const files = out.kind === "run" ? out.run.files : [];
    const past = await store.runs
      .find(
        { connectionId: connection._id, state: "Completed", kind: { $ne: "delete" } },
        { projection: { _id: 1, startDateTime: 1, endDateTime: 1 } },
      )
      .sort({ queuedDateTime: -1, _id: 1 })
      .limit(20)
      .toArray();
    const tasks = past.length
      ? await store.tasks
          .find(
            { runId: { $in: past.map((r) => r._id) } },
            { projection: { runId: 1, sourceFileId: 1, result: 1, durationMs: 1 } },
          )
          .toArray()
      : [];
    const toSynchronize = files.filter((f) => f.synchronize);
    const estimate = estimateRunDuration(
      toSynchronize.map((f) => f.sourceFileId),
      past.map((r) => ({ id: r._id, startDateTime: r.startDateTime, endDateTime: r.endDateTime })),
      tasks,
    );
    return {
      connectionId: connection._id,
      force,
      ...(sourceFileIds ? { sourceFileIds } : {}),
      files,
      counts: {
        files: files.length,
        changed: files.filter((f) => f.changed).length,
        unchanged: files.filter((f) => !f.changed).length,
        toSynchronize: toSynchronize.length,
        unreadable: files.filter((f) => f.problem).length,
      },
      estimate,
    };
  }

  app.get(
    "/health",
    route(async (_req, res) => {
      const checks: Record<string, string> = {};
      // 3 s for each dependency, as for Temporal below: a database that hangs makes /health answer, not hang.
      await store.db.command({ ping: 1 }, { timeoutMS: 3000 }).then(
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
      const me = currentUser(req);
      const id = randomUUID();
      const record: IModelRecord = {
        _id: id,
        name: body.name,
        location: { type: "local", path: path.join(config.dataDir, "imodels", `${id}.bim`) },
        createdDateTime: now(),
        createdBy: me._id,
      };
      // The creator is the team's first manager (docs/product-rules.md "Teams"); creating it is their interaction.
      // The member record first: without the iModel it shows nothing, while an iModel without it would lack its team.
      await putTeamMember(store.db, people, {
        iModelId: id,
        userId: me._id,
        role: "manager",
        addedBy: me._id,
        interactedAt: record.createdDateTime,
      });
      // The iModel's list of connections, before the iModel (lib/id-lists.ts).
      await createIdList(store.db, iModelConnectionsList(id));
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
      // Only the iModels of the caller's teams (every iModel for an administrator).
      const visible = await viewerOf(req).visibleIModels();
      const filter = visible ? { _id: visible } : {};
      const { items, _links } = await listPage(req, store.imodels, filter, { createdDateTime: 1, _id: 1 }, q);
      res.json({ iModels: items.map(iModelJson), _links });
    }),
  );

  app.get(
    "/imodels/:id",
    route(async (req, res) => {
      res.json({ iModel: iModelJson(await getIModel(req, req.params.id)) });
    }),
  );

  // ---- Connections ----
  app.post(
    "/connections",
    route(async (req, res) => {
      const body = parse(createConnectionBody, req.body);
      const iModel = await getIModel(req, body.iModelId);
      const me = currentUser(req);
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
          // The owner is a team member (docs/product-rules.md "Teams"), read again under the lock that removing a member
          // takes: a member removed meanwhile gets the answer of an unknown iModel; an administrator who is not a
          // member becomes one (creating the connection is their interaction).
          const membership = await people.teamMembers.findOne({ _id: teamMemberId(iModel._id, me._id) });
          if (!membership) {
            if (!isAdmin(me)) throw iModelNotFound(body.iModelId);
            await putTeamMember(store.db, people, {
              iModelId: iModel._id,
              userId: me._id,
              role: "member",
              addedBy: me._id,
              interactedAt: now(),
            });
          }
          const { connections: siblings, states: siblingStates } = await activeMappingOf(store, iModel._id);
          assertWithinLimits(iModel._id, siblings, { connections: 1, compositeModels: files.length });
          assertFileNotAlreadyMapped(checked.byPath, await mappedFiles(siblings, siblingStates));

          const connectionId = randomUUID();
          const created: ConnectionRecord = {
            _id: connectionId,
            iModelId: iModel._id,
            displayName: body.displayName,
            source: { type: "local", path: sourceFolder },
            sourceFiles: files,
            definesGcs: false,
            status: "Active",
            createdDateTime: now(),
            // The creator owns the connection: scheduled syncs run on their behalf.
            ownerId: me._id,
            owner: ownerSummary(me),
            // The timeline's first event rides on the record itself (lib/connection-events.ts).
            ...withEvents({ _id: connectionId }, {}, [
              {
                type: "ConnectionCreated",
                by: ownerSummary(me),
                details: {
                  displayName: body.displayName,
                  sourceFiles: files.map((f) => ({ id: f.id, path: f.path, connectorType: f.connectorType })),
                },
              },
            ]).$set,
          };
          // Its list of runs, and its place in the iModel's list of connections, before the record (lib/id-lists.ts).
          await createIdList(store.db, connectionRunsList(connectionId));
          await appendId(store.db, iModelConnectionsList(iModel._id), connectionId);
          lease.assertHeld();
          await store.connections.insertOne(created);
          await publishEvents(store, created);
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

  /**
   * The connections of these iModels, Active, Deleting and Deleted, in the order of the query they replace
   * (`createdDateTime`, then `_id`; lib/id-lists.ts): each iModel's list in its order (connections of one iModel are
   * created one at a time, under its lease lock), merged. Records are read by `_id` as the page needs them: one iModel's
   * first `firstBatch`, several iModels' one at first each.
   * @returns undefined when an iModel has no list (created before lists were kept): the caller queries instead.
   */
  async function connectionsOfIModels(
    iModelIds: string[],
    firstBatch: number,
  ): Promise<AsyncIterable<ConnectionRecord> | undefined> {
    const lists = await Promise.all(iModelIds.map((id) => listIds(store.db, iModelConnectionsList(id), "oldest")));
    const read = (_id: string) => store.connections.findOne({ _id });
    const streams: AsyncIterable<ConnectionRecord>[] = [];
    for (const ids of lists) {
      if (!ids) return undefined;
      streams.push(recordsOfList(ids, read, lists.length === 1 ? firstBatch : 1));
    }
    if (streams.length === 1) return streams[0];
    return mergeOrdered(
      streams,
      (a, b) =>
        (a.createdDateTime < b.createdDateTime ? -1 : a.createdDateTime > b.createdDateTime ? 1 : 0) ||
        (a._id < b._id ? -1 : a._id > b._id ? 1 : 0),
    );
  }

  app.get(
    "/connections",
    route(async (req, res) => {
      const q = parse(listConnectionsQuery, req.query);
      const status = q.status ? (q.status as ConnectionStatus) : { $in: ["Active", "Deleting"] as ConnectionStatus[] };
      // Only the connections of iModels the caller may see: the one named (404 as unknown otherwise), or those of the
      // caller's teams (every one for an administrator).
      if (q.iModelId) await getIModel(req, q.iModelId);
      const visible = q.iModelId ? undefined : await viewerOf(req).visibleIModels();
      const filter = {
        status,
        ...(q.iModelId ? { iModelId: q.iModelId } : visible ? { iModelId: visible } : {}),
      };
      const params = { iModelId: q.iModelId, status: q.status };
      // The iModels' lists of connections, oldest first, read by _id (lib/id-lists.ts): the one named, or those the
      // caller may see merged in the query's order; an iModel older than its list: the query.
      const iModelIds = q.iModelId
        ? [q.iModelId]
        : (visible?.$in ?? (await store.imodels.find({}, { projection: { _id: 1 } }).toArray()).map((m) => m._id));
      const wanted = new Set(iModelIds);
      const records = await connectionsOfIModels(iModelIds, q.$top + 1 + q.$skip);
      const statuses: ConnectionStatus[] = q.status ? [q.status as ConnectionStatus] : ["Active", "Deleting"];
      const { items, _links } = records
        ? pageOf(
            req,
            await pageOfRecords(records, (c) => wanted.has(c.iModelId) && statuses.includes(c.status), q.$skip, q.$top),
            q,
            params,
          )
        : await listPage(req, store.connections, filter, { createdDateTime: 1, _id: 1 }, q, params);
      const states = await Promise.all(items.map((c) => fileStatesOf(store, c)));
      res.json({ connections: items.map((c, i) => connectionJson(c, states[i])), _links });
    }),
  );

  app.get(
    "/connections/:id",
    route(async (req, res) => {
      const connection = await getConnection(req, req.params.id);
      res.json({
        connection: connectionJson(connection, await fileStatesOf(store, connection)),
      });
    }),
  );

  // ---- Runs ----
  app.post(
    "/connections/:id/run",
    route(async (req, res) => {
      const body = parse(runConnectionBody, req.body);
      const connection = await getConnection(req, req.params.id);
      assertConnectionActive(connection);
      // Chosen composite models (with their references): each must be one the connection maps (README "Run control").
      const sourceFileIds = body.sourceFileIds
        ? assertCompositeModelsChosen(
            connection,
            body.sourceFileIds,
            await store.fileStates.find({ connectionId: connection._id }).toArray(),
          )
        : undefined;
      if (body.dryRun) {
        res.json({ preview: await previewRun(connection, sourceFileIds, body.force === true) });
        return;
      }
      // confirmDeletions: the deletion guard holds none of this run's files (domain/deletion-guard.ts); force: unchanged
      // files are parsed and compared too.
      const { runId, created } = await requestRun(connection, "manual", {
        ...(body.confirmDeletions ? { confirmDeletions: true } : {}),
        ...(sourceFileIds ? { sourceFileIds } : {}),
        ...(body.force ? { force: true } : {}),
        requestedBy: currentUser(req)._id,
      });
      const location = `/connections/${connection._id}/runs/${runId}`;
      // The active run another request has just queued may not be recorded yet: the answer waits for its record.
      const run = await recordedRun(store, runId);
      req.log.info(
        {
          connectionId: connection._id,
          runId,
          created,
          confirmDeletions: body.confirmDeletions === true,
          force: body.force === true,
          sourceFileIds,
        },
        created ? "run requested" : "run already active",
      );
      res
        .status(created ? 202 : 303)
        .location(location)
        .json({ run });
    }),
  );

  app.get(
    "/connections/:id/runs",
    route(async (req, res) => {
      const connection = await getConnection(req, req.params.id);
      const q = parse(listRunsQuery, req.query);
      // Filters: result, trigger, and the time the run was queued (from inclusive, to exclusive; stored times are
      // ISO 8601 UTC with milliseconds, as the query's are made, so they compare as text).
      const filter: Filter<RunRecord> = {
        connectionId: connection._id,
        ...(q.result ? { result: q.result as RunRecord["result"] } : {}),
        ...(q.trigger ? { trigger: q.trigger as RunRecord["trigger"] } : {}),
        ...(q.from || q.to
          ? { queuedDateTime: { ...(q.from ? { $gte: q.from } : {}), ...(q.to ? { $lt: q.to } : {}) } }
          : {}),
      };
      const params = { result: q.result, trigger: q.trigger, from: q.from, to: q.to };
      // The connection's list of runs, newest first, read by _id (lib/id-lists.ts); a connection older than the list:
      // the query.
      const ids = await listIds(store.db, connectionRunsList(connection._id), "newest");
      const { items: runs, _links } = ids
        ? pageOf(
            req,
            await pageOfList(
              ids,
              (_id) => store.runs.findOne({ _id }),
              (r) =>
                r.connectionId === connection._id &&
                (!q.result || r.result === q.result) &&
                (!q.trigger || r.trigger === q.trigger) &&
                (!q.to || r.queuedDateTime < q.to),
              q.$skip,
              q.$top,
              (r) => q.from !== undefined && r.queuedDateTime < q.from,
            ),
            q,
            params,
          )
        : await listPage(req, store.runs, filter, { queuedDateTime: -1, _id: 1 }, q, params);
      const tasks = await readTasksOfRuns(store, runs, completedTasks);
      res.json({ runs: runs.map((r) => runJson(r, tasks.get(r._id) ?? [])), _links });
    }),
  );

  app.get(
    "/connections/:id/runs/:runId",
    route(async (req: Request, res) => {
      const connection = await getConnection(req, req.params.id);
      const run = await findById(store.runs, req.params.runId, (r) => r.connectionId === connection._id);
      if (!run)
        throw new ApiError("RunNotFound", `Run '${req.params.runId}' of connection '${req.params.id}' does not exist.`);
      res.json({ run: runJson(run, await readRunTasks(store, run, completedTasks)) });
    }),
  );

  app.use((req, _res, next) => next(new ApiError("NotFound", `No route for ${req.method} ${req.path}.`)));
  app.use(errorHandler(logger));
  return app;
}
