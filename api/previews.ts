/**
 * Dry runs from the API (README "Run control"): a short `previewWorkflow` on the worker, awaited here, and the JSON
 * of what it found. The worker does the reading (source files, the iModel opened read-only): the API process runs no
 * iTwin.js host (docs/architecture.md "Dry runs").
 */
import { randomUUID } from "node:crypto";
import { WorkflowFailedError, type Client } from "@temporalio/client";
import type { RemovalCounts, RemovalPreview } from "../activities/imodel/remove";
import { ApiError } from "../domain/errors";
import type { ConnectionRecord, FileStateRecord, IModelRecord, SourceFileRecord } from "../domain/model";
import { SEARCH_ATTRIBUTES } from "../domain/search-attributes";
import { RUN_REQUEST_DEADLINE_MS, UNAVAILABLE } from "../lib/runs";
import { previewWorkflow, type PreviewInput, type PreviewOutput } from "../workflows/preview";

/**
 * Runs a dry run on the worker and waits for its answer (at most {@link RUN_REQUEST_DEADLINE_MS}).
 * @throws ApiError DependencyUnavailable (503) when Temporal or the worker does not answer in time, or the worker could
 *   not complete it (e.g. the iModel could not be opened).
 */
export async function runPreview(
  temporal: Client,
  taskQueue: string,
  connection: Pick<ConnectionRecord, "_id" | "iModelId">,
  input: PreviewInput,
): Promise<PreviewOutput> {
  try {
    return await temporal.connection.withDeadline(Date.now() + RUN_REQUEST_DEADLINE_MS, () =>
      temporal.workflow.execute(previewWorkflow, {
        workflowId: `preview/${connection._id}/${randomUUID()}`,
        taskQueue,
        args: [input],
        // Nobody waits longer than the request: a dry run the worker picks up late must not linger.
        workflowExecutionTimeout: "5 minutes",
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTES.connectionId, value: connection._id },
          { key: SEARCH_ATTRIBUTES.iModelId, value: connection.iModelId },
        ],
      }),
    );
  } catch (err) {
    if (UNAVAILABLE(err))
      throw new ApiError(
        "DependencyUnavailable",
        "Temporal or its worker did not answer the dry run in time; nothing was changed. Try again.",
      );
    if (err instanceof WorkflowFailedError)
      throw new ApiError(
        "DependencyUnavailable",
        `The worker could not complete the dry run (${err.cause?.message ?? err.message}); nothing was changed. Try again.`,
      );
    throw err;
  }
}

const ZERO: RemovalCounts = {
  elements: 0,
  definitions: 0,
  models: 0,
  partitions: 0,
  aspects: 0,
  links: 0,
  externalSources: 0,
};

/** Sums removal counts. */
function add(a: RemovalCounts, b: Partial<RemovalCounts>): RemovalCounts {
  return {
    elements: a.elements + (b.elements ?? 0),
    definitions: a.definitions + (b.definitions ?? 0),
    models: a.models + (b.models ?? 0),
    partitions: a.partitions + (b.partitions ?? 0),
    aspects: a.aspects + (b.aspects ?? 0),
    links: a.links + (b.links ?? 0),
    externalSources: a.externalSources + (b.externalSources ?? 0),
  };
}

/**
 * The answer to a delete's dry run (`DELETE …?mode=…&dryRun=true`): per file what would be removed (nothing with
 * keepData), the connection's Subject for a whole delete with its data, the totals, and whether the iModel's
 * georeference would be cleared.
 * @param files the files the request is about, in order: id, path and role as the service knows them.
 * @param removal what the worker counted in the iModel (absent for keepData: nothing is removed).
 * @param scope `connection` (a delete) or `sourceFile` (an unmap).
 */
export function removalPreviewJson(
  connection: Pick<ConnectionRecord, "_id">,
  iModel: Pick<IModelRecord, "gcs">,
  mode: "keepData" | "deleteData",
  scope: "connection" | "sourceFile",
  files: { sourceFileId: string; path: string; role: SourceFileRecord["role"] }[],
  removal?: RemovalPreview,
) {
  const counted = new Map((removal?.files ?? []).map((f) => [f.sourceFileId, f]));
  // Files with data in the iModel that the service no longer lists (a whole delete removes them too).
  const extra = (removal?.files ?? [])
    .filter((f) => !files.some((x) => x.sourceFileId === f.sourceFileId))
    .map((f) => ({ sourceFileId: f.sourceFileId, path: f.path ?? f.sourceFileId, role: "ReferenceFile" as const }));
  const rows = [...files, ...extra].map((f) => {
    const c = counted.get(f.sourceFileId);
    const { elements, definitions, models, partitions, aspects, links, externalSources } = c ?? ZERO;
    return {
      sourceFileId: f.sourceFileId,
      path: c?.path ?? f.path,
      role: f.role,
      // Whether the iModel holds data of the file: known only when counted (deleteData); null with keepData.
      hasData: removal ? (c?.found ?? false) : null,
      removes: { elements, definitions, models, partitions, aspects, links, externalSources },
    };
  });
  let totals = rows.reduce((t, r) => add(t, r.removes), ZERO);
  const subject = removal?.subject;
  if (subject) totals = add(totals, { elements: subject.elements, models: subject.models, aspects: subject.aspects });
  return {
    connectionId: connection._id,
    mode,
    scope,
    removesData: mode === "deleteData",
    files: rows,
    ...(subject && mode === "deleteData"
      ? {
          subject: {
            exists: subject.found,
            elements: subject.elements,
            models: subject.models,
            aspects: subject.aspects,
          },
        }
      : {}),
    totals,
    clearsGeoreference: mode === "deleteData" && scope === "connection" && iModel.gcs?.connectionId === connection._id,
  };
}

/** The files a whole delete concerns: mapped composite models, then the other files the service has records of. */
export function connectionFiles(
  c: Pick<ConnectionRecord, "sourceFiles">,
  states: Pick<FileStateRecord, "sourceFileId" | "path" | "role">[],
): { sourceFileId: string; path: string; role: SourceFileRecord["role"] }[] {
  const files = c.sourceFiles.map((f) => ({ sourceFileId: f.id, path: f.path, role: f.role }));
  for (const s of states)
    if (!files.some((f) => f.sourceFileId === s.sourceFileId))
      files.push({ sourceFileId: s.sourceFileId, path: s.path, role: s.role });
  return files;
}
