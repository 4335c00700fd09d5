/**
 * A connection's life after its creation (README.md "Connection life cycle"):
 * - `PATCH /connections/{id}` {displayName?, deletionGuard?} → 200 {connection}: rename (the display name only) and/or
 *   change the deletion guard (domain/deletion-guard.ts);
 * - `DELETE /connections/{id}?mode=keepData|deleteData`: keepData → 200 {connection} (status Deleted); deleteData →
 *   202 {connection, run} with `Location` of the delete job (a run with trigger `delete`; status Deleting, then
 *   Deleted). Both remove the schedule and cancel the active sync first. `&dryRun=true` → 200 {preview}: the same
 *   refusals, nothing changed, what the job would remove counted in the iModel (api/previews.ts);
 * - `POST /connections/{id}/sourceFiles` {sourceFiles} → 200 {connection}: map more composite models;
 * - `DELETE /connections/{id}/sourceFiles/{fileId}?mode=keepData|deleteData`: unmap a composite model with its
 *   references; keepData → 200 {connection}; deleteData → 202 {connection, run} (trigger `mapping-change`);
 *   `&dryRun=true` → 200 {preview} as for a delete;
 * - `POST /connections/{id}/runs/{runId}/cancel` → 202 {run}: the run ends Cancelled after the file being written;
 * - `POST /imodels/{id}/run` {connectionIds?} → 202 {runs: [{connectionId, runId, created, run}]}: a run for each
 *   selected (default: every active) connection, serialized by the iModel's run queue.
 * Every change records its event in the connection's timeline, in the same write (lib/connection-events.ts).
 * Every answer that names a run carries the run itself (its record, waited for when a concurrent request has just
 * queued it). Connections, iModels and runs the caller may not see answer as unknown ids (api/lookups.ts).
 *
 * The rules that may refuse these changes are domain/connection-rules.ts functions, called here on fresh records:
 * mapping changes and deletes of one iModel take its mapping lock (lib/locks.ts), so concurrent requests apply one
 * after the other. The worker holds the same rules (a deleted connection never synchronizes; a delete job is never
 * cancelled; an unmap job never removes the file defining the GCS).
 */
import { randomUUID } from "node:crypto";
import type { Client } from "@temporalio/client";
import { Router } from "express";
import {
  assertConnectionActive,
  assertConnectionDeletable,
  assertConnectionOwner,
  assertFileNotAlreadyMapped,
  assertGcsConnectionDeletable,
  assertGcsFileNotUnmapped,
  assertNotLastCompositeModel,
  assertReferenceNotUnmappedAlone,
  assertRunCancellable,
  assertWithinLimits,
  connectionInactiveRefusal,
  filesGoingWith,
} from "../domain/connection-rules";
import { deletionGuardOf } from "../domain/deletion-guard";
import { failureNoticesOf } from "../domain/failure-notices";
import { ApiError } from "../domain/errors";
import { fileStateId, type ConnectionRecord, type FileStateRecord, type SourceFileRole } from "../domain/model";
import { ownerSummary } from "../domain/users";
import { addSourceFilesBody, bulkRunBody, dataModeQuery, renameConnectionBody } from "../domain/schemas";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import { writeWithEvents, type NewConnectionEvent } from "../lib/connection-events";
import { updateConnection, withConnection } from "../lib/connection-writes";
import { iModelMappingLockKey, iModelMappingLockOptions, withLock } from "../lib/locks";
import { activeMappingOf, mappedFiles } from "../lib/mapping";
import { cancelRuns, requestRun, RUN_REQUEST_DEADLINE_MS } from "../lib/runs";
import { removeSchedule } from "../lib/schedules";
import { connectionDeletedEvent, type WebhookEmitter } from "../lib/webhooks";
import { currentUser, viewerOf } from "./auth";
import { parse, route } from "./http";
import { loadConnection, loadIModel, realSourceRoots, recordedRun } from "./lookups";
import { connectionFiles, removalPreviewJson, runPreview } from "./previews";
import { connectionJson } from "./representations";
import { checkNewSourceFiles } from "./source-files";
import { findById } from "../lib/db";

export interface LifecycleDeps {
  config: Config;
  store: Store;
  temporal: Client;
  /** Emits `connection.deleted` for a connection deleted keeping its data (README.md "Webhooks"). */
  emitter?: WebhookEmitter;
}

const now = () => new Date().toISOString();

export function lifecycleRouter({ config, store, temporal, emitter }: LifecycleDeps): Router {
  const router = Router();
  const fileStatesOf = (connectionId: string) => store.fileStates.find({ connectionId }).toArray();
  const runLocation = (r: { connectionId: string; _id: string }) => `/connections/${r.connectionId}/runs/${r._id}`;
  // The run the queue answered with, waiting for its record if a concurrent request queued it a moment ago.
  const runBody = (runId: string) => recordedRun(store, runId);

  // ---- Rename, deletion guard ----
  router.patch(
    "/connections/:id",
    route(async (req, res) => {
      const body = parse(renameConnectionBody, req.body);
      await loadConnection(store, req.params.id, viewerOf(req));
      const by = ownerSummary(currentUser(req));
      const renamed = await withConnection(store, req.params.id, async (c, write) => {
        assertConnectionActive(c);
        assertConnectionOwner(
          currentUser(req),
          c,
          body.displayName !== undefined
            ? "rename it"
            : body.deletionGuard
              ? "change its deletion guard"
              : "change its failure notices",
        );
        // The settings given replace those of the effective guard; the others keep their values.
        const guard = deletionGuardOf(c);
        const nextGuard = body.deletionGuard ? { ...guard, ...body.deletionGuard } : undefined;
        const change = {
          $set: {
            ...(body.displayName !== undefined ? { displayName: body.displayName } : {}),
            ...(nextGuard ? { deletionGuard: nextGuard } : {}),
            ...(body.failureNotices ? { failureNotices: { ...failureNoticesOf(c), ...body.failureNotices } } : {}),
          },
        };
        // Only what really changes leaves a trace in the timeline.
        const events: NewConnectionEvent[] = [];
        if (body.displayName !== undefined && body.displayName !== c.displayName)
          events.push({ type: "ConnectionRenamed", by, details: { from: c.displayName, to: body.displayName } });
        if (nextGuard && JSON.stringify(nextGuard) !== JSON.stringify(guard))
          events.push({ type: "DeletionGuardChanged", by, details: { from: guard, to: nextGuard } });
        if (body.failureNotices) {
          const notices = failureNoticesOf(c);
          const nextNotices = { ...notices, ...body.failureNotices };
          if (JSON.stringify(nextNotices) !== JSON.stringify(notices))
            events.push({ type: "FailureNoticesChanged", by, details: { from: notices, to: nextNotices } });
        }
        return events.length > 0 ? writeWithEvents(store, c, write, change, events) : write(change);
      });
      req.log.info(
        {
          connectionId: renamed._id,
          to: body.displayName,
          deletionGuard: body.deletionGuard,
          failureNotices: body.failureNotices,
        },
        "connection changed",
      );
      res.json({ connection: connectionJson(renamed, await fileStatesOf(renamed._id)) });
    }),
  );

  // ---- Delete ----
  router.delete(
    "/connections/:id",
    route(async (req, res) => {
      const { mode, dryRun } = parse(dataModeQuery, req.query);
      const found = await loadConnection(store, req.params.id, viewerOf(req));
      assertConnectionOwner(currentUser(req), found, "delete it");
      if (dryRun) {
        // The same refusals as the delete itself, on the records as they are; nothing is written.
        const iModel = await loadIModel(store, found.iModelId, viewerOf(req));
        if (assertConnectionDeletable(found, mode) === "delete") {
          const others = await store.connections.countDocuments({
            iModelId: found.iModelId,
            status: "Active",
            _id: { $ne: found._id },
          });
          assertGcsConnectionDeletable(found, iModel, others);
        }
        const files = connectionFiles(found, await fileStatesOf(found._id));
        const removal =
          mode === "deleteData"
            ? await runPreview(temporal, config.taskQueue, found, {
                kind: "removal",
                iModelId: found.iModelId,
                connectionId: found._id,
              })
            : undefined;
        req.log.info({ connectionId: found._id, mode }, "connection deletion previewed");
        res.json({
          preview: removalPreviewJson(
            found,
            iModel,
            mode,
            "connection",
            files,
            removal?.kind === "removal" ? removal.removal : undefined,
          ),
        });
        return;
      }
      const by = ownerSummary(currentUser(req));
      const { connection, resumed } = await withLock(
        store.db,
        iModelMappingLockKey(found.iModelId),
        () =>
          withConnection(store, found._id, async (c, write) => {
            // Asking again with deleteData resumes a delete job that failed or was never queued.
            if (assertConnectionDeletable(c, mode) === "resume") return { connection: c, resumed: true };
            const iModel = await loadIModel(store, c.iModelId, viewerOf(req));
            const others = await store.connections.countDocuments({
              iModelId: c.iModelId,
              status: "Active",
              _id: { $ne: c._id },
            });
            assertGcsConnectionDeletable(c, iModel, others);
            // No future syncs: not Active any more, and no schedule (removed from Temporal below).
            const written = await writeWithEvents(
              store,
              c,
              write,
              {
                $set: {
                  status: mode === "keepData" ? "Deleted" : "Deleting",
                  deletion: { mode, requestedDateTime: now() },
                },
                $unset: ["schedule"],
              },
              [{ type: "ConnectionDeleted", by, details: { mode } }],
            );
            return { connection: written, resumed: false };
          }),
        iModelMappingLockOptions(found.iModelId),
      );
      // A schedule firing meanwhile finds the connection not Active and does nothing; one not removed now (Temporal
      // down) removes itself at its next firing. Not awaited before the rest: both wait for Temporal at most 20 s.
      const scheduleRemoved = temporal.connection
        .withDeadline(Date.now() + RUN_REQUEST_DEADLINE_MS, () => removeSchedule(temporal, connection._id))
        .catch((err: Error) =>
          req.log.warn(
            { connectionId: connection._id, err: err.message },
            "schedule not removed now; it removes itself at its next firing",
          ),
        );
      if (mode === "keepData") {
        // The deletion is recorded: whatever Temporal answers, the active run stops at its next file (the worker checks).
        let cancelledRuns: string[] | undefined;
        const warnings = [];
        try {
          cancelledRuns = (
            await cancelRuns(temporal, connection, {
              reason: { code: "ConnectionDeleted", message: "the connection was deleted while the run was active" },
            })
          ).cancelled;
        } catch (err) {
          if (!(err instanceof ApiError && err.code === "DependencyUnavailable")) throw err;
          warnings.push({
            code: "RunNotCancelledYet",
            message: "Temporal did not answer in time; an active run of this connection stops before its next file",
          });
        }
        await scheduleRemoved;
        // Deleted now (with deleteData, the delete job's end emits it). A delivery that cannot be queued is recorded
        // Failed, to be redelivered; a database fault is logged and does not undo the answered delete.
        await emitter
          ?.emit(connectionDeletedEvent(connection))
          .catch((err: Error) =>
            req.log.error({ connectionId: connection._id, err: err.message }, "connection.deleted event not emitted"),
          );
        req.log.info({ connectionId: connection._id, mode, cancelledRuns }, "connection deleted");
        res.json({
          connection: connectionJson(connection, await fileStatesOf(connection._id)),
          ...(cancelledRuns ? { cancelledRuns } : {}),
          ...(warnings.length ? { warnings } : {}),
        });
        return;
      }
      // Temporal down: 503, the connection stays Deleting and asking again with deleteData queues the job.
      const { runId, created } = await requestRun(
        temporal,
        config.taskQueue,
        connection,
        "delete",
        randomUUID(),
        undefined,
        {
          kind: "delete",
          cancelSyncs: true,
          requestedBy: currentUser(req)._id,
        },
      );
      await scheduleRemoved;
      const recorded = await updateConnection(store, connection._id, (c) => ({
        $set: { deletion: { ...c.deletion!, runId } },
      }));
      req.log.info(
        { connectionId: connection._id, mode, runId, created, resumed },
        "connection deletion with data queued",
      );
      res
        .status(202)
        .location(runLocation({ connectionId: connection._id, _id: runId }))
        .json({ connection: connectionJson(recorded, await fileStatesOf(connection._id)), run: await runBody(runId) });
    }),
  );

  // ---- Change mapping: add ----
  router.post(
    "/connections/:id/sourceFiles",
    route(async (req, res) => {
      const body = parse(addSourceFilesBody, req.body);
      const found = await loadConnection(store, req.params.id, viewerOf(req));
      assertConnectionActive(found);
      assertConnectionOwner(currentUser(req), found, "change its mapping");
      const checked = await checkNewSourceFiles(
        found.source.path,
        body.sourceFiles,
        await realSourceRoots(config.sourceRoots),
      );
      const updated = await withLock(
        store.db,
        iModelMappingLockKey(found.iModelId),
        () =>
          withConnection(store, found._id, async (c, write) => {
            assertConnectionActive(c);
            const { connections: siblings, states: siblingStates } = await activeMappingOf(store, c.iModelId, c._id);
            assertFileNotAlreadyMapped(
              checked.byPath,
              await mappedFiles([c, ...siblings], siblingStates, c._id),
              c._id,
            );
            assertWithinLimits(c.iModelId, [c, ...siblings], { connections: 0, compositeModels: checked.files.length });
            // A path this connection knew keeps its id, so its data in the iModel is synchronized incrementally rather
            // than duplicated: a composite model unmapped with keepData, or a reference file of another composite.
            const states = await fileStatesOf(c._id);
            const reused: string[] = [];
            const files = checked.files.map((f) => {
              const kept = states.find((s) => s.path === f.path && s.unmapped?.mode === "keepData");
              const ref = states
                .flatMap((s) => (s.unmapped ? [] : (s.references ?? [])))
                .find((r) => r.resolved && r.path === f.path);
              const id = kept?.sourceFileId ?? ref?.id;
              if (!id) return f;
              if (kept) reused.push(kept._id);
              return { ...f, id };
            });
            const written = await writeWithEvents(
              store,
              c,
              write,
              { $set: { sourceFiles: [...c.sourceFiles, ...files] } },
              [
                {
                  type: "SourceFilesMapped",
                  by: ownerSummary(currentUser(req)),
                  details: {
                    sourceFiles: files.map((f) => ({ id: f.id, path: f.path, connectorType: f.connectorType })),
                  },
                },
              ],
            );
            for (const id of reused) await store.fileStates.updateOne({ _id: id }, { $unset: { unmapped: "" } });
            return written;
          }),
        iModelMappingLockOptions(found.iModelId),
      );
      req.log.info(
        { connectionId: updated._id, added: body.sourceFiles.map((f) => f.path) },
        "composite models mapped",
      );
      res.json({ connection: connectionJson(updated, await fileStatesOf(updated._id)) });
    }),
  );

  // ---- Change mapping: unmap ----
  router.delete(
    "/connections/:id/sourceFiles/:fileId",
    route(async (req, res) => {
      const { mode, dryRun } = parse(dataModeQuery, req.query);
      const fileId = req.params.fileId;
      const found = await loadConnection(store, req.params.id, viewerOf(req));
      assertConnectionActive(found);
      assertConnectionOwner(currentUser(req), found, "change its mapping");
      if (dryRun) {
        // The same refusals as the unmap itself, on the records as they are; nothing is written.
        const states = await fileStatesOf(found._id);
        const iModel = await loadIModel(store, found.iModelId, viewerOf(req));
        const pending = pendingUnmap(found, fileId, states);
        let going: string[];
        if (pending && mode === "deleteData") going = pending;
        else {
          const file = assertReferenceNotUnmappedAlone(found, fileId, states);
          assertNotLastCompositeModel(found, file);
          going = filesGoingWith(found, file.id, states);
          assertGcsFileNotUnmapped(iModel, found._id, file, going);
        }
        const removal =
          mode === "deleteData"
            ? await runPreview(temporal, config.taskQueue, found, {
                kind: "removal",
                iModelId: found.iModelId,
                connectionId: found._id,
                sourceFileIds: going,
              })
            : undefined;
        req.log.info({ connectionId: found._id, fileId, mode, files: going }, "unmap previewed");
        res.json({
          preview: removalPreviewJson(
            found,
            iModel,
            mode,
            "sourceFile",
            going.map((id) => fileOf(found, states, id)),
            removal?.kind === "removal" ? removal.removal : undefined,
          ),
        });
        return;
      }
      const { connection, removed, resumed } = await withLock(
        store.db,
        iModelMappingLockKey(found.iModelId),
        () =>
          withConnection(store, found._id, async (c, write) => {
            assertConnectionActive(c);
            const states = await fileStatesOf(c._id);
            // Unmapped with deleteData before, its delete job not queued (Temporal was down): asking again queues it.
            const pending = pendingUnmap(c, fileId, states);
            if (pending && mode === "deleteData") return { connection: c, removed: pending, resumed: true };
            const file = assertReferenceNotUnmappedAlone(c, fileId, states);
            assertNotLastCompositeModel(c, file);
            const going = filesGoingWith(c, file.id, states);
            assertGcsFileNotUnmapped(await loadIModel(store, c.iModelId, viewerOf(req)), c._id, file, going);
            const written = await writeWithEvents(
              store,
              c,
              write,
              { $set: { sourceFiles: c.sourceFiles.filter((f) => f.id !== file.id) } },
              [
                {
                  type: "SourceFileUnmapped",
                  by: ownerSummary(currentUser(req)),
                  details: { mode, sourceFileId: file.id, path: file.path, sourceFileIds: going },
                },
              ],
            );
            // The files' records say they are unmapped and how; the composite's also lists the files that went with it
            // (created when the file was never synchronized), so a retry or a later re-mapping finds them.
            const unmapped = { mode, dateTime: now() };
            for (const id of going) {
              const s = states.find((x) => x.sourceFileId === id);
              const own = id === file.id ? { ...unmapped, sourceFileIds: going } : unmapped;
              if (s) await store.fileStates.updateOne({ _id: s._id }, { $set: { unmapped: own } });
              else if (id === file.id) {
                const record: FileStateRecord = {
                  _id: fileStateId(c._id, id),
                  connectionId: c._id,
                  sourceFileId: id,
                  path: file.path,
                  role: "CompositeModel",
                  unmapped: own,
                };
                await store.fileStates.updateOne({ _id: record._id }, { $set: record }, { upsert: true });
              }
            }
            return { connection: written, removed: going, resumed: false };
          }),
        iModelMappingLockOptions(found.iModelId),
      );
      req.log.info({ connectionId: connection._id, fileId, mode, files: removed, resumed }, "composite model unmapped");
      const json = connectionJson(connection, await fileStatesOf(connection._id));
      if (mode === "keepData") {
        res.json({ connection: json, unmappedSourceFileIds: removed });
        return;
      }
      // Temporal down: 503; the file stays unmapped and asking again (same request) queues the delete job.
      const { runId } = await requestRun(
        temporal,
        config.taskQueue,
        connection,
        "mapping-change",
        randomUUID(),
        undefined,
        { kind: "delete", sourceFileIds: removed, requestedBy: currentUser(req)._id },
      );
      res
        .status(202)
        .location(runLocation({ connectionId: connection._id, _id: runId }))
        .json({ connection: json, unmappedSourceFileIds: removed, run: await runBody(runId) });
    }),
  );

  // ---- Cancel ----
  router.post(
    "/connections/:id/runs/:runId/cancel",
    route(async (req, res) => {
      const c = await loadConnection(store, req.params.id, viewerOf(req));
      const run = await findById(store.runs, req.params.runId, (r) => r.connectionId === c._id);
      if (!run) throw new ApiError("RunNotFound", `Run '${req.params.runId}' of connection '${c._id}' does not exist.`);
      assertRunCancellable(run);
      const me = currentUser(req);
      const result = await cancelRuns(temporal, c, {
        runId: run._id,
        reason: { code: "CancelledByUser", message: `cancelled by ${me.email ?? me._id}` },
      });
      // The iModel's run queue has the last word: it holds the run as a delete job, or no longer holds it.
      if (result.notCancellable.length > 0) assertRunCancellable({ ...run, kind: "delete" });
      if (result.cancelled.length === 0)
        assertRunCancellable((await store.runs.findOne({ _id: run._id })) ?? run, { queued: false });
      req.log.info({ connectionId: c._id, runId: run._id }, "run cancellation requested");
      res
        .status(202)
        .location(runLocation(run))
        .json({ run: await runBody(run._id) });
    }),
  );

  // ---- Synchronize several connections ----
  router.post(
    "/imodels/:id/run",
    route(async (req, res) => {
      const body = parse(bulkRunBody, req.body);
      const viewer = viewerOf(req);
      const iModel = await loadIModel(store, req.params.id, viewer);
      let connections: ConnectionRecord[];
      if (body.connectionIds) {
        const ids = [...new Set(body.connectionIds)];
        const records = await store.connections.find({ _id: { $in: ids } }).toArray();
        const visible = new Map<string, boolean>();
        for (const iModelId of new Set(records.map((r) => r.iModelId)))
          visible.set(iModelId, await viewer.canSee(iModelId));
        const problems = ids.flatMap((id, i) => {
          const target = `connectionIds.${body.connectionIds!.indexOf(id, i)}`;
          const c = records.find((r) => r._id === id);
          // A connection of an iModel the caller may not see does not exist for them.
          if (!c || !visible.get(c.iModelId))
            return [
              {
                status: 404,
                detail: { code: "ConnectionNotFound", message: `connection '${id}' does not exist`, target },
              },
            ];
          if (c.iModelId !== iModel._id)
            return [
              {
                status: 400,
                detail: {
                  code: "ConnectionOfAnotherIModel",
                  message: `connection '${id}' belongs to iModel '${c.iModelId}'`,
                  target,
                },
              },
            ];
          const refusal = connectionInactiveRefusal(c);
          if (refusal) return [{ status: 409, detail: { ...refusal, target } }];
          return [];
        });
        if (problems.length > 0) {
          const details = problems.map((p) => p.detail);
          if (problems.some((p) => p.status === 400))
            throw new ApiError(
              "InvalidRequest",
              "Some connections do not belong to this iModel; no run was started.",
              details,
            );
          if (problems.some((p) => p.status === 404))
            throw new ApiError("ConnectionNotFound", "Some connections do not exist; no run was started.", details);
          throw new ApiError("ConnectionDeleted", "Some connections are deleted; no run was started.", details);
        }
        connections = ids.map((id) => records.find((r) => r._id === id)!);
      } else {
        connections = await store.connections
          .find({ iModelId: iModel._id, status: "Active" })
          .sort({ createdDateTime: 1, _id: 1 })
          .toArray();
        if (connections.length === 0)
          throw new ApiError("NoActiveConnections", `iModel '${iModel.name}' has no active connection to synchronize.`);
      }
      // One request after the other, in order: the iModel's run queue serializes the runs themselves.
      const runs = [];
      for (const c of connections) {
        const { runId, created } = await requestRun(temporal, config.taskQueue, c, "manual", undefined, undefined, {
          requestedBy: viewer.user._id,
        });
        runs.push({
          connectionId: c._id,
          runId,
          created,
          run: await runBody(runId),
          _links: { run: { href: runLocation({ connectionId: c._id, _id: runId }) } },
        });
      }
      req.log.info(
        { iModelId: iModel._id, runs: runs.length, created: runs.filter((r) => r.created).length },
        "runs requested for several connections",
      );
      res.status(202).json({ runs });
    }),
  );

  return router;
}

/**
 * The files of a composite model unmapped with deleteData whose delete job was not queued (Temporal was down): asking
 * again queues it. Undefined when `fileId` is mapped or has no such pending unmap.
 */
function pendingUnmap(
  c: Pick<ConnectionRecord, "sourceFiles">,
  fileId: string,
  states: FileStateRecord[],
): string[] | undefined {
  if (c.sourceFiles.some((f) => f.id === fileId)) return undefined;
  return states.find((s) => s.sourceFileId === fileId && s.unmapped?.mode === "deleteData" && s.unmapped.sourceFileIds)
    ?.unmapped?.sourceFileIds;
}

/** A file of the connection by id, with its path and role as the service knows them (mapping, records, references). */
function fileOf(
  c: Pick<ConnectionRecord, "sourceFiles">,
  states: FileStateRecord[],
  id: string,
): { sourceFileId: string; path: string; role: SourceFileRole } {
  const mapped = c.sourceFiles.find((f) => f.id === id);
  if (mapped) return { sourceFileId: id, path: mapped.path, role: mapped.role };
  const state = states.find((s) => s.sourceFileId === id);
  if (state) return { sourceFileId: id, path: state.path, role: state.role };
  const ref = states.flatMap((s) => s.references ?? []).find((r) => r.id === id);
  return { sourceFileId: id, path: ref?.path ?? id, role: "ReferenceFile" };
}
