/**
 * A connection's life after its creation (README.md "Connection life cycle"):
 * - `PATCH /connections/{id}` {displayName} → 200 {connection}: rename (the display name only);
 * - `DELETE /connections/{id}?mode=keepData|deleteData`: keepData → 200 {connection} (status Deleted); deleteData →
 *   202 {connection, run} with `Location` of the delete job (a run with trigger `delete`; status Deleting, then
 *   Deleted). Both remove the schedule and cancel the active sync first;
 * - `POST /connections/{id}/sourceFiles` {sourceFiles} → 200 {connection}: map more composite models;
 * - `DELETE /connections/{id}/sourceFiles/{fileId}?mode=keepData|deleteData`: unmap a composite model with its
 *   references; keepData → 200 {connection}; deleteData → 202 {connection, run} (trigger `mapping-change`);
 * - `POST /connections/{id}/runs/{runId}/cancel` → 202 {run}: the run ends Cancelled after the file being written;
 * - `POST /imodels/{id}/run` {connectionIds?} → 202 {runs}: a run for each selected (default: every active)
 *   connection, serialized by the iModel's run queue.
 *
 * Mapping changes and deletes of one iModel take its mapping lock (lib/locks.ts), so concurrent requests apply one
 * after the other on fresh records. The workflows hold the same rules (a deleted connection never synchronizes; a
 * delete job is never cancelled; an unmap job never removes the file defining the GCS).
 */
import { randomUUID } from "node:crypto";
import type { Client } from "@temporalio/client";
import { Router } from "express";
import { ApiError } from "../domain/errors";
import type { ConnectionRecord, FileStateRecord, RunRecord } from "../domain/model";
import { addSourceFilesBody, bulkRunBody, dataModeQuery, renameConnectionBody } from "../domain/schemas";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import { iModelMappingLockKey, withLock, type LockOptions } from "../lib/locks";
import { cancelRuns, requestRun } from "../lib/runs";
import { removeSchedule } from "../lib/schedules";
import { currentUser } from "./auth";
import { parse, route } from "./http";
import { assertActive, loadConnection, loadIModel, realSourceRoots } from "./lookups";
import { connectionJson, runJson } from "./representations";
import { assertCompositeLimit, assertNotMapped, checkNewSourceFiles } from "./source-files";

export interface LifecycleDeps {
  config: Config;
  store: Store;
  temporal: Client;
}

const now = () => new Date().toISOString();

/** Lock options of one change to an iModel's mapping (409 ConcurrentChange after 15 s of waiting). */
const lockOptions = (iModelId: string): LockOptions => ({
  leaseMs: 30_000,
  waitMs: 15_000,
  busyMessage: `Another change to iModel '${iModelId}' is in progress; retry.`,
});

/**
 * The files that go with a composite model when it is unmapped: itself and the resolved references found under it
 * at its last parse, except those another remaining composite model names too (they stay mapped through it) and those
 * that are composite models themselves (DESIGN.md: references go with their composite model).
 */
export function filesGoingWith(connection: ConnectionRecord, compositeId: string, states: FileStateRecord[]): string[] {
  const stateOf = (id: string) => states.find((s) => s.sourceFileId === id);
  const remaining = connection.sourceFiles.filter((f) => f.role === "CompositeModel" && f.id !== compositeId);
  const keptRefs = new Set(remaining.flatMap((f) => (stateOf(f.id)?.references ?? []).filter((r) => r.resolved).map((r) => r.id)));
  const composites = new Set(connection.sourceFiles.map((f) => f.id));
  const refs = (stateOf(compositeId)?.references ?? []).filter((r) => r.resolved && !keptRefs.has(r.id) && !composites.has(r.id)).map((r) => r.id);
  return [compositeId, ...new Set(refs)];
}

export function lifecycleRouter({ config, store, temporal }: LifecycleDeps): Router {
  const router = Router();
  const fileStatesOf = (connectionId: string) => store.fileStates.find({ connectionId }).toArray();
  const runLocation = (r: { connectionId: string; _id: string }) => `/connections/${r.connectionId}/runs/${r._id}`;
  const runBody = async (runId: string) => {
    const run = await store.runs.findOne({ _id: runId });
    return run ? runJson(run, await store.tasks.find({ runId }).toArray()) : undefined;
  };

  // ---- Rename ----
  router.patch(
    "/connections/:id",
    route(async (req, res) => {
      const body = parse(renameConnectionBody, req.body);
      const c = await loadConnection(store, req.params.id);
      assertActive(c);
      // Conditional on Active: a rename racing a delete never touches the deleted record.
      const r = await store.connections.updateOne({ _id: c._id, status: "Active" }, { $set: { displayName: body.displayName } });
      if (r.matchedCount === 0) assertActive(await loadConnection(store, c._id));
      const renamed = await loadConnection(store, c._id);
      req.log.info({ connectionId: c._id, from: c.displayName, to: body.displayName }, "connection renamed");
      res.json({ connection: connectionJson(renamed, await fileStatesOf(c._id)) });
    }),
  );

  // ---- Delete ----
  router.delete(
    "/connections/:id",
    route(async (req, res) => {
      const { mode } = parse(dataModeQuery, req.query);
      const found = await loadConnection(store, req.params.id);
      const { connection, resumed } = await withLock(
        store.db,
        iModelMappingLockKey(found.iModelId),
        async (lease) => {
          const c = await loadConnection(store, found._id); // fresh, under the lock
          if (c.status === "Deleted") throw new ApiError("ConnectionDeleted", `Connection '${c.displayName}' (${c._id}) is already deleted.`);
          if (c.status === "Deleting") {
            // Asking again with deleteData resumes a delete job that failed or was never queued (every step is idempotent).
            if (mode === "deleteData") return { connection: c, resumed: true };
            assertActive(c);
          }
          const iModel = await loadIModel(store, c.iModelId);
          if (iModel.gcs?.connectionId === c._id || c.definesGcs) {
            const others = await store.connections.countDocuments({ iModelId: c.iModelId, status: "Active", _id: { $ne: c._id } });
            if (others > 0) {
              throw new ApiError(
                "GcsDefiningConnection",
                `Connection '${c.displayName}' defines the geographic coordinate system of iModel '${iModel.name}', which has ${others} other connection(s); it can be deleted only once it is the iModel's last connection.`,
              );
            }
          }
          const deletion = { mode, requestedDateTime: now() };
          const status = mode === "keepData" ? ("Deleted" as const) : ("Deleting" as const);
          lease.assertHeld();
          const r = await store.connections.updateOne({ _id: c._id, status: "Active" }, { $set: { status, deletion } });
          if (r.matchedCount === 0) throw new ApiError("ConcurrentChange", `Connection '${c._id}' changed meanwhile; read it and try again.`);
          return { connection: { ...c, status, deletion } as ConnectionRecord, resumed: false };
        },
        lockOptions(found.iModelId),
      );
      // No future syncs: the schedule goes now (one firing meanwhile finds the connection not Active and does nothing).
      await removeSchedule(temporal, connection._id).catch((err: Error) =>
        req.log.warn({ connectionId: connection._id, err: err.message }, "schedule not removed now; it removes itself at its next firing"),
      );
      if (mode === "keepData") {
        const { cancelled } = await cancelRuns(temporal, connection, { reason: { code: "ConnectionDeleted", message: "the connection was deleted while the run was active" } });
        req.log.info({ connectionId: connection._id, mode, cancelled }, "connection deleted");
        res.json({ connection: connectionJson(connection, await fileStatesOf(connection._id)), cancelledRuns: cancelled });
        return;
      }
      const { runId, created } = await requestRun(temporal, config.taskQueue, connection, "delete", randomUUID(), undefined, {
        kind: "delete",
        cancelSyncs: true,
      });
      const deletion = { ...connection.deletion!, runId };
      await store.connections.updateOne({ _id: connection._id }, { $set: { deletion } });
      req.log.info({ connectionId: connection._id, mode, runId, created, resumed }, "connection deletion with data queued");
      res
        .status(202)
        .location(runLocation({ connectionId: connection._id, _id: runId }))
        .json({ connection: connectionJson({ ...connection, deletion }, await fileStatesOf(connection._id)), run: await runBody(runId) });
    }),
  );

  // ---- Change mapping: add ----
  router.post(
    "/connections/:id/sourceFiles",
    route(async (req, res) => {
      const body = parse(addSourceFilesBody, req.body);
      const found = await loadConnection(store, req.params.id);
      assertActive(found);
      const checked = await checkNewSourceFiles(found.source.path, body.sourceFiles, await realSourceRoots(config.sourceRoots));
      const updated = await withLock(
        store.db,
        iModelMappingLockKey(found.iModelId),
        async (lease) => {
          const c = await loadConnection(store, found._id);
          assertActive(c);
          const siblings = await store.connections
            .find({ iModelId: c.iModelId, status: "Active" }, { projection: { displayName: 1, source: 1, sourceFiles: 1 } })
            .toArray();
          const mine = siblings.find((s) => s._id === c._id) ?? c;
          await assertNotMapped(checked, [mine, ...siblings.filter((s) => s._id !== c._id)], c._id);
          assertCompositeLimit(c.iModelId, siblings, checked.files.length);
          // A path this connection knew keeps its id, so its data in the iModel is synchronized incrementally rather
          // than duplicated: a composite model unmapped with keepData, or a reference file of another composite.
          const states = await fileStatesOf(c._id);
          const reused: string[] = [];
          const files = checked.files.map((f) => {
            const kept = states.find((s) => s.path === f.path && s.unmapped?.mode === "keepData");
            const ref = states.flatMap((s) => (s.unmapped ? [] : s.references ?? [])).find((r) => r.resolved && r.path === f.path);
            const id = kept?.sourceFileId ?? ref?.id;
            if (!id) return f;
            if (kept) reused.push(kept._id);
            return { ...f, id };
          });
          lease.assertHeld();
          const sourceFiles = [...c.sourceFiles, ...files];
          const r = await store.connections.updateOne({ _id: c._id, status: "Active" }, { $set: { sourceFiles } });
          if (r.matchedCount === 0) assertActive(await loadConnection(store, c._id));
          for (const id of reused) await store.fileStates.updateOne({ _id: id }, { $unset: { unmapped: "" } });
          return { ...c, sourceFiles };
        },
        lockOptions(found.iModelId),
      );
      req.log.info({ connectionId: updated._id, added: body.sourceFiles.map((f) => f.path) }, "composite models mapped");
      res.json({ connection: connectionJson(updated, await fileStatesOf(updated._id)) });
    }),
  );

  // ---- Change mapping: unmap ----
  router.delete(
    "/connections/:id/sourceFiles/:fileId",
    route(async (req, res) => {
      const { mode } = parse(dataModeQuery, req.query);
      const found = await loadConnection(store, req.params.id);
      assertActive(found);
      const { connection, removed } = await withLock(
        store.db,
        iModelMappingLockKey(found.iModelId),
        async (lease) => {
          const c = await loadConnection(store, found._id);
          assertActive(c);
          const states = await fileStatesOf(c._id);
          const file = c.sourceFiles.find((f) => f.id === req.params.fileId);
          if (!file) throw notMapped(c, req.params.fileId, states);
          const composites = c.sourceFiles.filter((f) => f.role === "CompositeModel");
          if (composites.length <= 1) {
            throw new ApiError(
              "LastCompositeModel",
              `'${file.path}' is the last composite model of connection '${c.displayName}'; removing every file means deleting the connection (DELETE /connections/${c._id}?mode=keepData|deleteData).`,
            );
          }
          const going = filesGoingWith(c, file.id, states);
          const iModel = await loadIModel(store, c.iModelId);
          if (iModel.gcs?.connectionId === c._id && going.includes(iModel.gcs.sourceFileId)) {
            const through = iModel.gcs.sourceFileId === file.id ? "" : ` (through its reference file '${iModel.gcs.path}')`;
            throw new ApiError(
              "GcsDefiningFile",
              `'${file.path}'${through} defined the geographic coordinate system of iModel '${iModel.name}' and cannot be unmapped once synchronized.`,
            );
          }
          lease.assertHeld();
          const sourceFiles = c.sourceFiles.filter((f) => f.id !== file.id);
          const r = await store.connections.updateOne({ _id: c._id, status: "Active" }, { $set: { sourceFiles } });
          if (r.matchedCount === 0) assertActive(await loadConnection(store, c._id));
          const unmapped = { mode, dateTime: now() };
          for (const id of going) {
            const s = states.find((x) => x.sourceFileId === id);
            if (s) await store.fileStates.updateOne({ _id: s._id }, { $set: { unmapped } });
          }
          return { connection: { ...c, sourceFiles }, removed: going };
        },
        lockOptions(found.iModelId),
      );
      req.log.info({ connectionId: connection._id, fileId: req.params.fileId, mode, files: removed }, "composite model unmapped");
      const json = connectionJson(connection, await fileStatesOf(connection._id));
      if (mode === "keepData") {
        res.json({ connection: json, unmappedSourceFileIds: removed });
        return;
      }
      const { runId } = await requestRun(temporal, config.taskQueue, connection, "mapping-change", randomUUID(), undefined, { kind: "delete", sourceFileIds: removed });
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
      const run = await store.runs.findOne({ _id: req.params.runId, connectionId: req.params.id });
      const c = await loadConnection(store, req.params.id);
      if (!run) throw new ApiError("RunNotFound", `Run '${req.params.runId}' of connection '${c._id}' does not exist.`);
      const notCancellable = () =>
        new ApiError("RunNotCancellable", `Run '${run._id}' is a delete job; it is never stopped half way, so that no file is left half removed.`);
      const completed = (r: RunRecord) => new ApiError("RunAlreadyCompleted", `Run '${r._id}' already completed with result ${r.result}.`);
      if (run.kind === "delete") throw notCancellable();
      if (run.state === "Completed") throw completed(run);
      const me = currentUser(req);
      const result = await cancelRuns(temporal, c, { runId: run._id, reason: { code: "CancelledByUser", message: `cancelled by ${me.email ?? me._id}` } });
      if (result.notCancellable.length > 0) throw notCancellable();
      if (result.cancelled.length === 0) {
        const now = (await store.runs.findOne({ _id: run._id })) ?? run;
        if (now.state === "Completed") throw completed(now);
        throw new ApiError("RunAlreadyCompleted", `Run '${run._id}' is no longer active in its iModel's queue.`);
      }
      req.log.info({ connectionId: c._id, runId: run._id }, "run cancellation requested");
      res.status(202).location(runLocation(run)).json({ run: await runBody(run._id) });
    }),
  );

  // ---- Synchronize several connections ----
  router.post(
    "/imodels/:id/run",
    route(async (req, res) => {
      const body = parse(bulkRunBody, req.body);
      const iModel = await loadIModel(store, req.params.id);
      let connections: ConnectionRecord[];
      if (body.connectionIds) {
        const ids = [...new Set(body.connectionIds)];
        const records = await store.connections.find({ _id: { $in: ids } }).toArray();
        const problems = ids.flatMap((id, i) => {
          const target = `connectionIds.${body.connectionIds!.indexOf(id, i)}`;
          const c = records.find((r) => r._id === id);
          if (!c) return [{ status: 404, detail: { code: "ConnectionNotFound", message: `connection '${id}' does not exist`, target } }];
          if (c.iModelId !== iModel._id) return [{ status: 400, detail: { code: "ConnectionOfAnotherIModel", message: `connection '${id}' belongs to iModel '${c.iModelId}'`, target } }];
          if (c.status !== "Active") return [{ status: 409, detail: { code: "ConnectionDeleted", message: `connection '${c.displayName}' (${id}) is deleted`, target } }];
          return [];
        });
        if (problems.length > 0) {
          const details = problems.map((p) => p.detail);
          if (problems.some((p) => p.status === 400)) throw new ApiError("InvalidRequest", "Some connections do not belong to this iModel; no run was started.", details);
          if (problems.some((p) => p.status === 404)) throw new ApiError("ConnectionNotFound", "Some connections do not exist; no run was started.", details);
          throw new ApiError("ConnectionDeleted", "Some connections are deleted; no run was started.", details);
        }
        connections = ids.map((id) => records.find((r) => r._id === id)!);
      } else {
        connections = await store.connections.find({ iModelId: iModel._id, status: "Active" }).sort({ createdDateTime: 1, _id: 1 }).toArray();
        if (connections.length === 0) throw new ApiError("NoActiveConnections", `iModel '${iModel.name}' has no active connection to synchronize.`);
      }
      // One request after the other, in order: the iModel's run queue serializes the runs themselves.
      const runs = [];
      for (const c of connections) {
        const { runId, created } = await requestRun(temporal, config.taskQueue, c, "manual");
        runs.push({ connectionId: c._id, runId, created, _links: { run: { href: runLocation({ connectionId: c._id, _id: runId }) } } });
      }
      req.log.info({ iModelId: iModel._id, runs: runs.length, created: runs.filter((r) => r.created).length }, "runs requested for several connections");
      res.status(202).json({ runs });
    }),
  );

  return router;
}

/** 404 for a file id the connection does not map, or 409 when it is one of its reference files (never unmapped alone). */
function notMapped(c: ConnectionRecord, fileId: string, states: FileStateRecord[]): ApiError {
  const parents = states.filter((s) => !s.unmapped && (s.references ?? []).some((r) => r.id === fileId));
  if (parents.length > 0) {
    const ref = parents[0].references!.find((r) => r.id === fileId)!;
    const names = parents.map((p) => `'${p.path}'`).join(", ");
    return new ApiError(
      "ReferenceFileNotUnmappable",
      `'${ref.path}' is a reference file of composite model ${names}; a reference file cannot be unmapped on its own. Change the composite model (remove the reference from it, or unmap the composite model with its references).`,
    );
  }
  return new ApiError("SourceFileNotMapped", `Connection '${c.displayName}' (${c._id}) maps no source file '${fileId}'.`);
}
