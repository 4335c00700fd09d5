/**
 * Activities of delete jobs: removing the data of source files (a whole connection's, or the files of an unmapped
 * composite model) from the iModel, one file per transaction, and then the connection itself.
 *
 * Rules (docs/product-rules.md "Delete, two modes" / "Change mapping"): `deleteData` removes every element, model,
 * aspect, `ExternalSource` and `RepositoryLink` that came from those files, and nothing else (categories are shared by
 * every connection and stay). The file that defines the iModel's geographic coordinate system is never removed by an
 * unmap job.
 */
import { Context } from "@temporalio/activity";
import { gcsFileUnmapRefusal } from "../domain/connection-rules";
import {
  connectorTypeOf,
  ZERO_COUNTS,
  type ConnectionRecord,
  type ErrorInfo,
  type SourceFileRole,
} from "../domain/model";
import { updateConnection } from "../lib/connection-writes";
import { bulkWriteInChunks, type Store } from "../lib/db";
import { crashPointForTests } from "../lib/crash-points";
import { activityLogger, type Logger } from "../lib/logger";
import { readRunTasks } from "../lib/run-tasks";
import type { WorkerMetrics } from "../lib/metrics";
import { connectionDeletedEvent, type WebhookEmitter } from "../lib/webhooks";
import { fileStateId, listRunTasks, taskId, taskRecords, type PlannedTask } from "./run-records";
import { listSourceFilesInIModel, removeConnectionSubject, removeSourceFileData } from "./imodel/remove";
import type { WorkerAffinity } from "./worker-queue";

export interface DeletionDeps {
  store: Store;
  logger: Logger;
  /** Emits `connection.deleted` when a delete job ends with the connection Deleted (README.md "Webhooks"). */
  emitter?: WebhookEmitter;
  /** Runs started, elements deleted (README.md "Metrics"). */
  metrics?: WorkerMetrics;
  /** This worker's runs (activities/worker-queue.ts): a delete job's plan names its own queue when it has room. */
  affinity?: WorkerAffinity;
}

/** The files a delete job removes, in order (composite models first), or why it cannot run. */
export type DeletePlan =
  | {
      ok: true;
      tasks: PlannedTask[];
      wholeConnection: boolean;
      /** The own task queue of the worker that planned the job (activities/worker-queue.ts). */
      workerTaskQueue?: string;
      /** The planning worker serves other runs: the workflow asks the shared queue for a worker with room. */
      workerBusy?: boolean;
    }
  | { ok: false; error: ErrorInfo };

const now = () => new Date().toISOString();

export function createDeletionActivities({ store, logger, emitter, metrics, affinity }: DeletionDeps) {
  const log = (extra: Record<string, unknown> = {}): Logger => activityLogger(logger, extra);
  const { finishTask, newTask, ensureTask } = taskRecords(store);

  async function load(runId: string) {
    const run = await store.runs.findOne({ _id: runId });
    if (!run) throw new Error(`run ${runId} has no record`);
    const [connection, iModel] = await Promise.all([
      store.connections.findOne({ _id: run.connectionId }),
      store.imodels.findOne({ _id: run.iModelId }),
    ]);
    return { run, connection, iModel };
  }

  return {
    /**
     * Plans a delete job (idempotent): marks the run Executing and creates one task per file whose data it removes.
     * A whole-connection job (the run has no `sourceFileIds`) covers every file the connection ever synchronized:
     * the union of its mapped files, its file records (references and files unmapped with keepData included) and the
     * `RepositoryLink`s of the connection found in the iModel itself.
     */
    async beginDeleteJob(input: { runId: string }): Promise<DeletePlan> {
      const { run, connection, iModel } = await load(input.runId);
      if (!connection || !iModel)
        return {
          ok: false,
          error: { code: "ConnectionNotFound", message: `connection ${run.connectionId} or its iModel has no record` },
        };
      const wholeConnection = !run.sourceFileIds;
      if (wholeConnection && connection.status === "Active") {
        // Only the API's delete (which first marks the connection Deleting) asks for this job.
        return {
          ok: false,
          error: {
            code: "ConnectionNotDeleted",
            message: `connection ${connection._id} is active; delete it with mode=deleteData`,
          },
        };
      }
      if (!run.startDateTime) {
        await store.runs.updateOne({ _id: run._id }, { $set: { state: "Executing", startDateTime: now() } });
        metrics?.runsStarted.inc({ trigger: run.trigger, kind: "delete" });
      }

      const states = await store.fileStates.find({ connectionId: connection._id }).toArray();
      const inIModel = await listSourceFilesInIModel(iModel.location.path, connection._id);
      const files = new Map<string, { path: string; role: SourceFileRole }>();
      const add = (id: string, path: string, role?: SourceFileRole) => {
        const known = files.get(id);
        files.set(id, { path: known?.path ?? path, role: role ?? known?.role ?? "ReferenceFile" });
      };
      for (const f of connection.sourceFiles) add(f.id, f.path, "CompositeModel");
      for (const s of states) add(s.sourceFileId, s.path, s.role);
      for (const l of inIModel) add(l.sourceFileId, l.path);
      const wanted = run.sourceFileIds ? new Set(run.sourceFileIds) : undefined;
      const ids = [...files.keys()].filter((id) => !wanted || wanted.has(id));
      // Asked-for files the service knows nothing about still get a task (it will find no data).
      for (const id of wanted ?? []) {
        if (files.has(id)) continue;
        ids.push(id);
        files.set(id, { path: id, role: "ReferenceFile" });
      }
      ids.sort(
        (a, b) => Number(files.get(a)!.role !== "CompositeModel") - Number(files.get(b)!.role !== "CompositeModel"),
      );
      const tasks: PlannedTask[] = ids.map((id, index) => {
        const f = files.get(id)!;
        const connectorType =
          connectorTypeOf(f.path) ?? connection.sourceFiles.find((x) => x.id === id)?.connectorType ?? "IFC";
        return {
          sourceFileId: id,
          path: f.path,
          connectorType,
          role: f.role,
          phase: f.role === "CompositeModel" ? "MasterFile" : "ReferenceFile",
          index,
        };
      });
      // The run lists its tasks before their records exist (lib/run-tasks.ts reads them by these ids).
      await listRunTasks(
        store,
        run._id,
        tasks.map((t) => t.sourceFileId),
      );
      await bulkWriteInChunks(
        store.tasks,
        tasks.map((t) => ({
          updateOne: {
            filter: { _id: taskId(run._id, t.sourceFileId) },
            update: { $setOnInsert: newTask(run._id, connection._id, t) },
            upsert: true,
          },
        })),
      );
      log({ runId: run._id, connectionId: connection._id }).info(
        { files: tasks.length, wholeConnection },
        "delete job started",
      );
      const workerTaskQueue = affinity?.claim(input.runId);
      return {
        ok: true,
        tasks,
        wholeConnection,
        ...(workerTaskQueue ? { workerTaskQueue } : affinity ? { workerBusy: true } : {}),
      };
    },

    /**
     * Removes one file's data from the iModel (one transaction; idempotent, so a retry after a crash finishes the job)
     * and forgets the file's record. Refuses, as a task error, to remove the file that defines the iModel's GCS
     * in an unmap job (docs/product-rules.md "GCS-defining connection": that file cannot be unmapped once synchronized).
     */
    async removeFileData(input: {
      runId: string;
      connectionId: string;
      iModelId: string;
      task: PlannedTask;
    }): Promise<void> {
      const { runId, task } = input;
      const l = log({ runId, connectionId: input.connectionId, file: task.path });
      affinity?.note(runId);
      const existing = await ensureTask(runId, input.connectionId, task);
      if (existing.state === "Completed") return;
      const startDateTime = existing.startDateTime ?? now();
      await store.tasks.updateOne(
        { _id: taskId(runId, task.sourceFileId) },
        // every attempt counts, also across a hand-over to another worker (workflows/worker-pin.ts)
        { $set: { state: "Executing", attempts: (existing.attempts ?? 0) + 1, startDateTime } },
      );
      const [run, iModel] = await Promise.all([
        store.runs.findOne({ _id: runId }),
        store.imodels.findOne({ _id: input.iModelId }),
      ]);
      if (!run || !iModel) throw new Error(`run ${runId} or iModel ${input.iModelId} has no record`);
      // An unmap job (it names its files) never removes the file that defined the GCS; a whole-connection job may.
      const error = run.sourceFileIds
        ? gcsFileUnmapRefusal(iModel, input.connectionId, { id: task.sourceFileId, path: task.path }, [
            task.sourceFileId,
          ])
        : undefined;
      if (error) {
        l.warn({ error }, "delete task refused");
        await finishTask(runId, task.sourceFileId, { result: "Error", error }, startDateTime);
        return;
      }
      Context.current().heartbeat("removing");
      // The counts are recorded in the iModel with the removal itself, so a retry after a crash here reports them.
      const removed = await removeSourceFileData({
        bimPath: iModel.location.path,
        connectionId: input.connectionId,
        sourceFileId: task.sourceFileId,
        runId,
      });
      crashPointForTests("delete:after-removal-commit");
      await store.fileStates.deleteOne({ _id: fileStateId(input.connectionId, task.sourceFileId) });
      const elements = { ...ZERO_COUNTS, deleted: removed.elementsDeleted };
      await finishTask(
        runId,
        task.sourceFileId,
        {
          result: "Success",
          elements,
          ...(removed.found
            ? {}
            : { reason: { code: "NoDataInIModel", message: `${task.path} had no data in the iModel` } }),
          ...(removed.path && removed.path !== task.path ? { path: removed.path } : {}),
        },
        startDateTime,
      );
      if (elements.deleted > 0)
        metrics?.elementsWritten.inc({ connector_type: task.connectorType, change: "deleted" }, elements.deleted);
      l.info({ elements, found: removed.found, replayed: removed.replayed ?? false }, "file data removed");
    },

    /**
     * Ends a delete job. A whole-connection job whose every file was removed also removes the connection's `Subject`,
     * clears the iModel's georeference when this connection had defined it, forgets its file records and marks the
     * connection Deleted. When a file failed the connection stays Deleting: deleting it again with its data runs the
     * job again (every step is idempotent).
     * @returns whether the connection is now Deleted (false for unmap jobs).
     */
    async finishDeleteJob(input: { runId: string }): Promise<boolean> {
      const { run, connection, iModel } = await load(input.runId);
      if (run.sourceFileIds || !connection || !iModel) return false;
      if ((await readRunTasks(store, run)).some((t) => t.result === "Error")) return false;
      const definedGcs = iModel.gcs?.connectionId === connection._id;
      await removeConnectionSubject({
        bimPath: iModel.location.path,
        connectionId: connection._id,
        clearGeoreference: definedGcs,
      });
      if (definedGcs) await store.imodels.updateOne({ _id: iModel._id }, { $unset: { gcs: "" } });
      await store.fileStates.deleteMany({ connectionId: connection._id });
      await markDeleted(store, connection, now());
      const deleted = await store.connections.findOne({ _id: connection._id });
      if (deleted && emitter) await emitter.emit(connectionDeletedEvent(deleted));
      log({ runId: run._id, connectionId: connection._id }).info(
        { clearedGeoreference: definedGcs },
        "connection deleted with its data",
      );
      return true;
    },
  };
}

/** Marks a connection Deleted (from Deleting), recording when. */
async function markDeleted(store: Store, connection: ConnectionRecord, at: string): Promise<void> {
  await updateConnection(store, connection._id, (c) => ({
    $set: {
      status: "Deleted",
      definesGcs: false,
      deletion: { mode: "deleteData", requestedDateTime: at, ...c.deletion, completedDateTime: at },
    },
  }));
}
