/**
 * Workflow code changes must not break running histories (a `imodel/<id>` queue lives as long as its iModel). These
 * histories were recorded from released workflow code; the current code must replay them exactly. A change that
 * fails here needs `patched()` (Temporal's workflow versioning), not a new recording.
 * - v0.1 (first release): an iModel queue with two runs and a 303 answered while the first was active; a run with a
 *   DXF reference file.
 * - v0.2 (connection life cycle): an iModel queue with a queued run cancelled, an unmap delete job, a connection
 *   deleted with its data; the two delete jobs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Worker } from "@temporalio/worker";
import { describe, expect, it } from "vitest";

const HISTORIES = path.join(__dirname, "fixtures", "histories");

const RECORDED = [
  ["imodel-queue-v0.1.json", "imodel/4d9d56d1-8561-4099-9db5-83307b7f0461"],
  ["sync-run-v0.1.json", "sync/48a70998-19ae-412a-a1aa-472eaa108c46/da09f36d-78c4-4a57-8c4d-99bb03d884a7"],
  ["imodel-queue-v0.2.json", "imodel/5eaca184-fbb5-4ca3-a607-091be9f951ac"],
  ["delete-unmapped-v0.2.json", "delete/5d7288bf-a670-45f4-aa13-e3443bc47cca/61e296f8-a570-403d-97c4-84a666a20a5d"],
  ["delete-connection-v0.2.json", "delete/5d7288bf-a670-45f4-aa13-e3443bc47cca/9353b6dc-a58a-4111-9978-04bca62eefd3"],
] as const;

describe("replaying recorded histories with the current workflow code", () => {
  // One replay worker for every history (creating one per history in a process is not reliable in the SDK's bridge).
  it("replays every recorded history without a nondeterminism error", { timeout: 180_000 }, async () => {
    const histories = RECORDED.map(([file, workflowId]) => {
      const history = JSON.parse(fs.readFileSync(path.join(HISTORIES, file), "utf8"));
      expect(history.events.length, file).toBeGreaterThan(20);
      return { workflowId, history };
    });
    const outcomes: Record<string, string> = {};
    for await (const result of Worker.runReplayHistories(
      { workflowsPath: path.join(__dirname, "../workflows/index.ts") },
      histories,
    )) {
      outcomes[result.workflowId] = result.error ? String(result.error) : "ok";
    }
    expect(outcomes).toEqual(Object.fromEntries(RECORDED.map(([, id]) => [id, "ok"])));
  });
});
