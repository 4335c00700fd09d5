/**
 * A run's current `phase` on the real stack (README.md "Errors of tasks and runs"): polled while the run goes, it is
 * the phase of the task executing (`MasterFile` for the composite models, then `ReferenceFile` for their reference
 * file), never goes back, stays on the last phase once completed, and is absent while the run waits in its iModel's
 * queue behind another run. The composites and their XREF are the DXF fixtures of test/references.test.ts.
 */
import { describe, expect, it } from "vitest";
import { FIXTURE, http, makeSource, SAMPLE, tasksOf } from "./helpers";

const XREF = (f: string) => FIXTURE(`dxf-xref/${f}`);
const HVAC = "ifc4_hvac_air_terminal_duct.ifc";

interface Snapshot {
  state: string;
  phase?: string;
  /** Phases of the tasks executing (or waiting to be retried) at that moment. */
  executing: string[];
}

/** Polls a run every 20 ms until it is Completed; every answer is kept. */
async function pollRun(location: string, timeoutMs = 150_000): Promise<{ run: any; seen: Snapshot[] }> {
  const seen: Snapshot[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await http("GET", location);
    expect(status, JSON.stringify(body)).toBe(200);
    const run = body.run;
    seen.push({
      state: run.state,
      ...(run.phase !== undefined ? { phase: run.phase } : {}),
      executing: tasksOf(run)
        .filter((t: any) => t.state === "Executing" || t.state === "WaitingToRetry")
        .map((t: any) => t.phase),
    });
    if (run.state === "Completed") return { run, seen };
    if (Date.now() > deadline) throw new Error(`run ${location} did not complete: ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The values in order, each repetition once. */
const distinctInOrder = (values: (string | undefined)[]) =>
  values.filter((v, i) => v !== undefined && v !== values[i - 1]);

describe("the run's phase", () => {
  it("is the executing task's phase while the run goes, absent while it waits in the queue", async () => {
    const source = makeSource("phase", {
      "plans/host_a.dxf": XREF("xref_host_attached_r2000.dxf"),
      "plans/host_b.dxf": XREF("xref_host_attached_r2000.dxf"),
      "plans/xref_target_grid_r2000.dxf": XREF("xref_target_grid_r2000.dxf"),
      [HVAC]: SAMPLE(HVAC),
    });
    const iModel = (await http("POST", "/imodels", { name: "phase" })).body.iModel;
    const connect = async (displayName: string, files: [string, string][]) => {
      const c = await http("POST", "/connections", {
        iModelId: iModel.id,
        displayName,
        source: { type: "local", path: source },
        sourceFiles: files.map(([p, connectorType]) => ({ path: p, connectorType })),
      });
      expect(c.status, JSON.stringify(c.body)).toBe(201);
      return c.body.connection;
    };
    const plans = await connect("phase plans", [
      ["plans/host_a.dxf", "DXF"],
      ["plans/host_b.dxf", "DXF"],
    ]);
    const hvac = await connect("phase hvac", [[HVAC, "IFC"]]);

    // Two runs on one iModel: the second waits in the iModel's queue while the first executes.
    const first = await http("POST", `/connections/${plans.id}/run`);
    expect(first.status).toBe(202);
    const second = await http("POST", `/connections/${hvac.id}/run`);
    expect(second.status).toBe(202);
    const [a, b] = await Promise.all([pollRun(first.location!), pollRun(second.location!)]);

    // The first run: composites (MasterFile), then their reference (ReferenceFile).
    expect(a.run.result).toBe("Success");
    expect(tasksOf(a.run).map((t: any) => [t.path, t.phase])).toEqual([
      ["plans/host_a.dxf", "MasterFile"],
      ["plans/host_b.dxf", "MasterFile"],
      ["plans/xref_target_grid_r2000.dxf", "ReferenceFile"],
    ]);
    // Whenever a task was executing, the run's phase was that task's.
    const whileExecuting = a.seen.filter((s) => s.executing.length > 0);
    expect(whileExecuting.length).toBeGreaterThan(0);
    for (const s of whileExecuting) expect(s, JSON.stringify(s)).toMatchObject({ phase: s.executing[0] });
    // Seen executing in the MasterFile phase; then ReferenceFile, and never back.
    expect(whileExecuting.some((s) => s.state === "Executing" && s.phase === "MasterFile")).toBe(true);
    expect(distinctInOrder(a.seen.map((s) => s.phase))).toEqual(["MasterFile", "ReferenceFile"]);
    expect(a.run.phase).toBe("ReferenceFile");
    // Before its first task started, no phase.
    for (const s of a.seen.filter((x) => x.state === "Queued" || x.state === "NotStarted"))
      expect(s.phase).toBeUndefined();

    // The second run waited in the queue without a phase, then executed its composite model.
    const waiting = b.seen.filter((s) => s.state === "Queued" || s.state === "NotStarted");
    expect(waiting.length, JSON.stringify(b.seen.slice(0, 3))).toBeGreaterThan(0);
    for (const s of waiting) expect(s.phase).toBeUndefined();
    expect(b.run.result).toBe("Success");
    expect(b.run.phase).toBe("MasterFile");
  });
});
