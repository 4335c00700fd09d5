/**
 * Dry runs (README "Run control"): what a run would synchronize and what a delete would remove, found by the worker
 * without changing anything. They run here rather than in the API because they read what only the worker reads: the
 * source files (hashed as a run's planning hashes them, `planFiles`) and the iModel (opened read-only under the
 * writer's per-path lock, with the iTwin.js host the worker runs; docs/architecture.md "Dry runs").
 */
import * as fs from "node:fs/promises";
import type { ConnectorType, ErrorInfo, SourceFileRole, TaskPhase } from "../domain/model";
import { sourceFileAbsolutePath } from "../domain/paths";
import type { Store } from "../lib/db";
import { activityLogger, type Logger } from "../lib/logger";
import { heldByIModel, planFiles } from "./file-sync";
import { previewRemoval, type RemovalPreview } from "./imodel/remove";

export interface PreviewDeps {
  store: Store;
  logger: Logger;
  /** SOURCE_ROOTS (absolute). */
  sourceRoots: string[];
}

/** One file of a run's dry run. */
export interface RunPreviewFile {
  sourceFileId: string;
  path: string;
  role: SourceFileRole;
  phase: TaskPhase;
  connectorType: ConnectorType;
  /** Reference files: the composite models they come from. */
  referencedBy?: string[];
  /**
   * False when its content hash equals the hash of its last successful synchronization and the iModel holds that
   * synchronization (see `fileUnchanged`).
   */
  changed: boolean;
  /** Whether the run would parse and write it: changed, or the run is forced. */
  synchronize: boolean;
  /** Why it is unchanged (`FileUnchanged`). */
  reason?: ErrorInfo;
  /** Why its task would fail as the file is now (`FileNotFound`, `FileUnreadable`, `FileOutsideSourceRoots`). */
  problem?: ErrorInfo;
  /** Its size in bytes now, when it can be read. */
  size?: number;
}

/** What a run would do, file by file (composite models, then reference files). */
export interface RunPreview {
  files: RunPreviewFile[];
}

export function createPreviewActivities({ store, logger, sourceRoots }: PreviewDeps) {
  const log = (extra: Record<string, unknown> = {}): Logger => activityLogger(logger, extra);
  return {
    /**
     * The dry run of `POST /connections/{id}/run`: plans the run as it would start now (the same planning as
     * `beginRun`, hashing the files), but follows the references recorded at the last parse of changed files too (a
     * run learns a changed file's references only when it parses it) and writes nothing.
     * @throws Error when the connection has no record.
     */
    async previewRun(input: { connectionId: string; sourceFileIds?: string[]; force?: boolean }): Promise<RunPreview> {
      const connection = await store.connections.findOne({ _id: input.connectionId });
      if (!connection) throw new Error(`connection ${input.connectionId} has no record`);
      const iModel = await store.imodels.findOne({ _id: connection.iModelId });
      // What the iModel holds of the files, read with the .bim opened read-only (the same rule as a run's planning).
      const held = await heldByIModel(
        iModel?.location.path,
        connection._id,
        log({ connectionId: connection._id }),
        true,
      );
      const states = await store.fileStates.find({ connectionId: connection._id }).toArray();
      const plan = await planFiles(sourceRoots, connection, states, held, {
        ...(input.sourceFileIds ? { sourceFileIds: input.sourceFileIds } : {}),
        force: input.force === true,
        preview: true,
      });
      const toSync = new Set(plan.tasks.map((t) => t.sourceFileId));
      const files = await Promise.all(
        plan.all.map(async (t): Promise<RunPreviewFile> => {
          const unchanged = plan.unchanged.get(t.sourceFileId);
          const problem = plan.problems.get(t.sourceFileId);
          const size = problem
            ? undefined
            : await fs
                .stat(sourceFileAbsolutePath(connection.source.path, t.path))
                .then((st) => st.size)
                .catch(() => undefined);
          return {
            sourceFileId: t.sourceFileId,
            path: t.path,
            role: t.role,
            phase: t.phase,
            connectorType: t.connectorType,
            ...(t.referencedBy ? { referencedBy: t.referencedBy } : {}),
            changed: unchanged === undefined,
            synchronize: toSync.has(t.sourceFileId),
            ...(unchanged ? { reason: unchanged.reason } : {}),
            ...(problem ? { problem } : {}),
            ...(size !== undefined ? { size } : {}),
          };
        }),
      );
      log({ connectionId: connection._id }).info(
        { files: files.length, toSynchronize: toSync.size, force: input.force === true },
        "run previewed",
      );
      return { files };
    },

    /**
     * The dry run of a delete with its data (`DELETE …?mode=deleteData&dryRun=true`): what the delete job would remove
     * from the iModel, counted there file by file (`previewRemoval`), changing nothing.
     * @throws Error when the iModel has no record.
     */
    async previewRemoval(input: {
      iModelId: string;
      connectionId: string;
      sourceFileIds?: string[];
    }): Promise<RemovalPreview> {
      const iModel = await store.imodels.findOne({ _id: input.iModelId });
      if (!iModel) throw new Error(`iModel ${input.iModelId} has no record`);
      const preview = await previewRemoval({
        bimPath: iModel.location.path,
        connectionId: input.connectionId,
        ...(input.sourceFileIds ? { sourceFileIds: input.sourceFileIds } : {}),
      });
      log({ connectionId: input.connectionId }).info({ files: preview.files.length }, "removal previewed");
      return preview;
    },
  };
}

export type PreviewActivities = ReturnType<typeof createPreviewActivities>;
