/**
 * `previewWorkflow`: one per dry run, id `preview/<connectionId>/<uuid>`, started by the API and awaited by it
 * (README "Run control"): it runs one read-only activity on the worker (the worker reads the source files and opens the
 * iModel; docs/architecture.md "Dry runs") and returns what it found. It is not part of the iModel's run queue: it
 * writes nothing, and reads the iModel between two file transactions (the writer's per-path lock). Deterministic code
 * only.
 */
import { proxyActivities } from "@temporalio/workflow";
import type { PreviewActivities, RunPreview } from "../activities/previews";
import type { RemovalPreview } from "../activities/imodel/remove";

/** Read-only and short: a few attempts, then the API's caller gets the failure. */
const previews = proxyActivities<PreviewActivities>({
  startToCloseTimeout: "2 minutes",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "10 seconds", maximumAttempts: 3 },
});

/** What to preview: a run (`POST …/run {"dryRun": true}`) or a removal (`DELETE …?mode=deleteData&dryRun=true`). */
export type PreviewInput =
  | { kind: "run"; connectionId: string; sourceFileIds?: string[]; force?: boolean }
  | { kind: "removal"; iModelId: string; connectionId: string; sourceFileIds?: string[] };

/** The activity's answer, by kind. */
export type PreviewOutput = { kind: "run"; run: RunPreview } | { kind: "removal"; removal: RemovalPreview };

/** See the module comment. */
export async function previewWorkflow(input: PreviewInput): Promise<PreviewOutput> {
  if (input.kind === "run") {
    const { kind: _kind, ...request } = input;
    return { kind: "run", run: await previews.previewRun(request) };
  }
  const { kind: _kind, ...request } = input;
  return { kind: "removal", removal: await previews.previewRemoval(request) };
}
