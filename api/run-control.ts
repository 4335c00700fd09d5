/**
 * Run control beyond a plain run (README "Run control", "What a run changed", "Connection timeline", "Source files"):
 * - `POST /connections/{id}/runs/{runId}/retry` {confirmDeletions?} → 202 {run} (trigger `retry`, `retryOf`), or 303 to
 *   the connection's active run; 409 `RunStillActive`, `NoFailedTasks`, `RunNotRetryable`;
 * - `GET /connections/{id}/runs/{runId}/changes?$top&$skip&operation` → {changes, counts, _links}; 409
 *   `ChangeListNotKept`;
 * - `GET /connections/{id}/events?$top&$skip&kind` → {events, _links}: the connection's changes and runs, newest
 *   first;
 * - `GET /connections/{id}/sourceFiles?$top&$skip` → {sourceFiles, _links} and `GET /connections/{id}/sourceFiles/{fileId}`
 *   → {sourceFile}.
 * Connections and runs the caller may not see answer as unknown ids (api/lookups.ts); any member of the iModel's team
 * may retry (as they may run) and read these.
 */
import { randomUUID } from "node:crypto";
import type { Client } from "@temporalio/client";
import { Router, type Request } from "express";
import {
  assertConnectionActive,
  assertRunRetryable,
  filesToRetry,
  referencesReachable,
} from "../domain/connection-rules";
import { ApiError } from "../domain/errors";
import {
  CHANGE_OPERATIONS,
  taskId,
  type ConnectionRecord,
  type FileStateRecord,
  type RunRecord,
  type TaskRecord,
} from "../domain/model";
import { listChangesQuery, listEventsQuery, pagingQuery, retryRunBody } from "../domain/schemas";
import { ownerSummary, type OwnerSummary } from "../domain/users";
import { readChangePage } from "../lib/change-lists";
import { peopleCollections } from "../lib/collections";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import { requestRun } from "../lib/runs";
import { readRunTasks } from "../lib/run-tasks";
import { currentUser, viewerOf } from "./auth";
import { nextLink, parse, route } from "./http";
import { loadConnection, recordedRun } from "./lookups";
import { connectionEventJson, runEventJson, sourceFileJson } from "./representations";
import { findById } from "../lib/db";

export interface RunControlDeps {
  config: Config;
  store: Store;
  temporal: Client;
}

/** How many of a connection's newest runs are searched for a file's newest task. */
const LAST_TASK_RUNS = 20;

export function runControlRouter({ config, store, temporal }: RunControlDeps): Router {
  const router = Router();
  const users = peopleCollections(store).users;

  const runOf = async (c: ConnectionRecord, runId: string): Promise<RunRecord> => {
    const run = await findById(store.runs, runId, (r) => r.connectionId === c._id);
    if (!run) throw new ApiError("RunNotFound", `Run '${runId}' of connection '${c._id}' does not exist.`);
    return run;
  };

  // ---- Retry the failed files of a run ----
  router.post(
    "/connections/:id/runs/:runId/retry",
    route(async (req, res) => {
      const body = parse(retryRunBody, req.body);
      const c = await loadConnection(store, req.params.id, viewerOf(req));
      const run = await runOf(c, req.params.runId);
      assertConnectionActive(c);
      const failed = assertRunRetryable(run, await readRunTasks(store, run));
      const sourceFileIds = filesToRetry(c, failed, await store.fileStates.find({ connectionId: c._id }).toArray());
      // A connection with an active run gets that run (303), as for any run request.
      const { runId, created } = await requestRun(temporal, config.taskQueue, c, "retry", randomUUID(), undefined, {
        sourceFileIds,
        retryOf: run._id,
        requestedBy: currentUser(req)._id,
        ...(body.confirmDeletions ? { confirmDeletions: true } : {}),
      });
      req.log.info(
        { connectionId: c._id, retryOf: run._id, runId, created, sourceFileIds },
        created ? "retry requested" : "run already active",
      );
      res
        .status(created ? 202 : 303)
        .location(`/connections/${c._id}/runs/${runId}`)
        .json({ run: await recordedRun(store, runId) });
    }),
  );

  // ---- What a run changed ----
  router.get(
    "/connections/:id/runs/:runId/changes",
    route(async (req, res) => {
      const c = await loadConnection(store, req.params.id, viewerOf(req));
      const run = await runOf(c, req.params.runId);
      const q = parse(listChangesQuery, req.query);
      if (run.changeList !== "kept")
        throw new ApiError(
          "ChangeListNotKept",
          run.changeList === "pruned"
            ? `The change list of run '${run._id}' was removed: lists are kept for the last ${config.changeListsKept} runs of each connection.`
            : run.kind === "delete"
              ? `Run '${run._id}' is a delete job; its tasks give the counts of what it removed.`
              : `Run '${run._id}' has no change list (it has not started, or it ran before change lists were recorded).`,
        );
      const tasks = await readRunTasks(store, run);
      const operations = q.operation ? [q.operation as (typeof CHANGE_OPERATIONS)[number]] : CHANGE_OPERATIONS;
      const { total, changes } = await readChangePage(store, run._id, tasks, operations, q.$skip, q.$top);
      const written = tasks.filter((t) => t.state === "Completed" && t.result === "Success");
      const next = nextLink(req, q.$top, q.$skip, changes.length, total, { operation: q.operation });
      res.json({
        changes,
        counts: Object.fromEntries(
          CHANGE_OPERATIONS.map((op) => [op, written.reduce((n, t) => n + t.elements[op], 0)]),
        ),
        _links: next ? { next } : {},
      });
    }),
  );

  // ---- The connection's timeline ----
  router.get(
    "/connections/:id/events",
    route(async (req, res) => {
      const c = await loadConnection(store, req.params.id, viewerOf(req));
      const q = parse(listEventsQuery, req.query);
      const want = q.$skip + q.$top;
      type Entry = ReturnType<typeof connectionEventJson> | ReturnType<typeof runEventJson>;
      const entries: Entry[] = [];
      let total = 0;
      if (q.kind !== "run") {
        const recorded = await store.connectionEvents
          .find({ connectionId: c._id })
          .sort({ seq: -1 })
          .limit(want)
          .toArray();
        // The events of the last change are on the connection itself; their copy may not be made yet (the next change
        // makes it): those are shown from the connection.
        const missing = [];
        for (const e of c.lastEvents ?? [])
          if (!(await store.connectionEvents.findOne({ _id: e._id }, { projection: { _id: 1 } }))) missing.push(e);
        total += (await store.connectionEvents.countDocuments({ connectionId: c._id })) + missing.length;
        for (const e of [...missing, ...recorded].sort((a, b) => b.seq - a.seq).slice(0, want))
          entries.push(connectionEventJson(e));
      }
      if (q.kind !== "change") {
        const runs = await store.runs
          .find({ connectionId: c._id })
          .sort({ queuedDateTime: -1, _id: 1 })
          .limit(want)
          .toArray();
        total += await store.runs.countDocuments({ connectionId: c._id });
        const people = new Map<string, OwnerSummary | null>();
        for (const r of runs) {
          const userId = r.requestedBy ?? r.ownerId;
          if (userId && !people.has(userId)) {
            const u = await users.findOne({ _id: userId });
            people.set(userId, u ? ownerSummary(u) : { id: userId, email: "", name: "" });
          }
          entries.push(runEventJson(r, userId ? (people.get(userId) ?? null) : null));
        }
      }
      // Newest first; at the same instant a change before a run (a change's run is queued after it).
      entries.sort((a, b) =>
        a.dateTime !== b.dateTime
          ? a.dateTime < b.dateTime
            ? 1
            : -1
          : a.kind !== b.kind
            ? a.kind === "change"
              ? -1
              : 1
            : a.id < b.id
              ? 1
              : -1,
      );
      const page = entries.slice(q.$skip, want);
      const next = nextLink(req, q.$top, q.$skip, page.length, total, { kind: q.kind });
      res.json({ events: page, _links: next ? { next } : {} });
    }),
  );

  // ---- Source files ----

  /**
   * The connection's files: its mapped composite models in mapping order, then the reference files they reach
   * through the references recorded at each file's last parse (breadth first), each with the composite models it
   * comes from.
   */
  function filesOf(c: ConnectionRecord, states: FileStateRecord[]) {
    const active = states.filter((s) => !s.unmapped);
    const composites = c.sourceFiles.filter((f) => f.role === "CompositeModel");
    const files: { id: string; path: string; connectorType?: string; role: string; referencedBy?: string[] }[] =
      composites.map((f) => ({ id: f.id, path: f.path, connectorType: f.connectorType, role: f.role }));
    const refRecords = new Map(
      active.flatMap((s) => (s.references ?? []).filter((r) => r.resolved).map((r) => [r.id, r] as const)),
    );
    for (const id of referencesReachable(
      composites.map((f) => f.id),
      active,
    )) {
      if (files.some((f) => f.id === id)) continue;
      const ref = refRecords.get(id)!;
      files.push({
        id,
        path: ref.path,
        ...(ref.connectorType ? { connectorType: ref.connectorType } : {}),
        role: "ReferenceFile",
        referencedBy: composites.filter((f) => referencesReachable([f.id], active).includes(id)).map((f) => f.id),
      });
    }
    return files;
  }

  /**
   * Each file's newest task: the task of the newest of the connection's last {@link LAST_TASK_RUNS} runs that has one
   * (a sync run has a task for every file it covers, Skipped ones included), found by `_id`.
   */
  async function lastTasks(c: ConnectionRecord, fileIds: string[]): Promise<Map<string, TaskRecord>> {
    const found = new Map<string, TaskRecord>();
    const runs = await store.runs
      .find({ connectionId: c._id }, { projection: { _id: 1 } })
      .sort({ queuedDateTime: -1, _id: 1 })
      .limit(LAST_TASK_RUNS)
      .toArray();
    for (const run of runs) {
      const missing = fileIds.filter((id) => !found.has(id));
      if (missing.length === 0) break;
      const tasks = await Promise.all(missing.map((id) => store.tasks.findOne({ _id: taskId(run._id, id) })));
      tasks.forEach((t, i) => {
        if (t) found.set(missing[i], t);
      });
    }
    return found;
  }

  const fileStatesOf = (c: ConnectionRecord) => store.fileStates.find({ connectionId: c._id }).toArray();

  router.get(
    "/connections/:id/sourceFiles",
    route(async (req: Request, res) => {
      const c = await loadConnection(store, req.params.id, viewerOf(req));
      const q = parse(pagingQuery, req.query);
      const states = await fileStatesOf(c);
      const all = filesOf(c, states);
      const page = all.slice(q.$skip, q.$skip + q.$top);
      const tasks = await lastTasks(
        c,
        page.map((f) => f.id),
      );
      const next = nextLink(req, q.$top, q.$skip, page.length, all.length);
      res.json({
        sourceFiles: page.map((f) => sourceFileJson(c, f, states, tasks.get(f.id))),
        _links: next ? { next } : {},
      });
    }),
  );

  router.get(
    "/connections/:id/sourceFiles/:fileId",
    route(async (req: Request, res) => {
      const c = await loadConnection(store, req.params.id, viewerOf(req));
      const states = await fileStatesOf(c);
      const file = filesOf(c, states).find((f) => f.id === req.params.fileId);
      if (!file)
        throw new ApiError(
          "SourceFileNotMapped",
          `Connection '${c.displayName}' (${c._id}) maps no source file '${req.params.fileId}'.`,
        );
      const tasks = await lastTasks(c, [file.id]);
      res.json({ sourceFile: sourceFileJson(c, file, states, tasks.get(file.id)) });
    }),
  );

  return router;
}
