/**
 * How long a run would take, estimated from the connection's past runs (README "Run control": the dry run of
 * `POST /connections/{id}/run`). Pure: the caller reads the past runs and tasks.
 */

/** A completed sync run of the connection (ISO 8601 UTC times). */
export interface PastRun {
  id: string;
  startDateTime?: string;
  endDateTime?: string;
}

/** A task of one of those runs. */
export interface PastTask {
  runId: string;
  sourceFileId: string;
  result: string;
  /** Wall time of the task, ms. */
  durationMs?: number;
}

/** The estimate and what it rests on. All durations in ms. */
export interface RunEstimate {
  durationMs: number;
  /** Files to synchronize whose own newest written task gave their duration. */
  filesWithHistory: number;
  /** Files to synchronize without one: each counts the median duration of the written tasks. */
  filesWithoutHistory: number;
  /** The median of the written tasks' durations (what a file without history counts). */
  medianFileMs: number;
  /** The run's own time besides its written files (planning, hashing unchanged files, scheduling between tasks). */
  overheadMs: number;
  /** How many past runs were considered. */
  runsConsidered: number;
  method: string;
}

/** The estimate's method, as the API states it. */
export const ESTIMATE_METHOD =
  "sum over the files to synchronize of the duration of each file's newest task that wrote it (result Success) in " +
  "the connection's last completed runs (a file without one counts the median of those tasks), plus the median " +
  "over those runs of the run's duration minus its written tasks' durations (planning, hashing, scheduling)";

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : Math.round((sorted[mid - 1] + sorted[mid]) / 2);
}

/**
 * Estimates a run's duration (see {@link ESTIMATE_METHOD}). A file's task is "written" when its result is Success (an
 * unchanged file's task is Skipped and costs only its share of planning, counted in the overhead).
 * @param files the ids of the files the run would parse and write.
 * @param runs the connection's completed sync runs, newest first (runs without start or end are ignored).
 * @param tasks the tasks of those runs.
 * @returns the estimate, or null when no past run wrote a file (nothing to estimate from). With no file to
 *   synchronize the estimate is the overhead alone.
 */
export function estimateRunDuration(
  files: readonly string[],
  runs: readonly PastRun[],
  tasks: readonly PastTask[],
): RunEstimate | null {
  const timed = runs.filter((r) => r.startDateTime && r.endDateTime);
  const order = new Map(timed.map((r, i) => [r.id, i]));
  const written = tasks.filter(
    (t) => t.result === "Success" && typeof t.durationMs === "number" && order.has(t.runId),
  ) as (PastTask & { durationMs: number })[];
  if (written.length === 0) return null;
  // Each file's newest written task.
  const newest = new Map<string, { at: number; durationMs: number }>();
  for (const t of written) {
    const at = order.get(t.runId)!;
    const known = newest.get(t.sourceFileId);
    if (!known || at < known.at) newest.set(t.sourceFileId, { at, durationMs: t.durationMs });
  }
  const medianFileMs = median(written.map((t) => t.durationMs));
  const overheads = timed
    .map((r) => {
      const own = written.filter((t) => t.runId === r.id).reduce((n, t) => n + t.durationMs, 0);
      return Math.max(0, Date.parse(r.endDateTime!) - Date.parse(r.startDateTime!) - own);
    })
    .filter((ms) => Number.isFinite(ms));
  const overheadMs = median(overheads);
  let filesWithHistory = 0;
  let durationMs = overheadMs;
  for (const id of new Set(files)) {
    const own = newest.get(id);
    if (own) filesWithHistory++;
    durationMs += own ? own.durationMs : medianFileMs;
  }
  return {
    durationMs,
    filesWithHistory,
    filesWithoutHistory: new Set(files).size - filesWithHistory,
    medianFileMs,
    overheadMs,
    runsConsidered: timed.length,
    method: ESTIMATE_METHOD,
  };
}
