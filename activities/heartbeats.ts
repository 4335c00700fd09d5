/**
 * Heartbeats of long activities (docs/architecture.md "Heartbeats"). Temporal's heartbeat is recorded on the activity's
 * context, on the main thread; the SDK's core then sends it to the server from its own threads, at most every 80 % of
 * the heartbeat timeout. A heartbeat timer on the main thread therefore keeps beating only while that thread's event
 * loop turns: the long synchronous parse of a design file runs in a parser thread (`connectors/parse-in-thread.ts`) and
 * the iModel writer beats from its element loop, so a heartbeat timeout of seconds tells a dead worker from a long file.
 */
import { Context } from "@temporalio/activity";

/** How often (ms) a running file activity records a heartbeat (its heartbeat timeout is 30 s, `workflows/sync.ts`). */
export const HEARTBEAT_INTERVAL_MS = 5000;

/**
 * Runs `work` inside the current activity while a timer records a heartbeat with `details()` every
 * {@link HEARTBEAT_INTERVAL_MS} ms (and once at the start). Outside an activity `work` just runs.
 */
export async function whileBeating<T>(details: () => unknown, work: () => Promise<T>): Promise<T> {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return work();
  }
  const beat = () => context.heartbeat(details());
  beat();
  const timer = setInterval(beat, HEARTBEAT_INTERVAL_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * A heartbeat for synchronous loops on the main thread (the iModel writer's element loop): each call records a
 * heartbeat with `details` when {@link HEARTBEAT_INTERVAL_MS} ms have passed since the last one; cheap otherwise.
 * Outside an activity it does nothing.
 */
export function loopHeartbeat(details: unknown): () => void {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return () => undefined;
  }
  let last = Date.now();
  return () => {
    const now = Date.now();
    if (now - last < HEARTBEAT_INTERVAL_MS) return;
    last = now;
    context.heartbeat(details);
  };
}
