/**
 * Crash injection for tests of crash recovery (test/crash-recovery.test.ts). Inactive unless the environment variable
 * `IMODEL_SYNC_TEST_CRASH` is set, which the service never does: tests start a worker with it.
 */
import * as fs from "node:fs";

/**
 * When `IMODEL_SYNC_TEST_CRASH` names this point, kills the process at once with SIGKILL (no cleanup, as a power cut
 * or the OOM killer would), once: the file `IMODEL_SYNC_TEST_CRASH_MARKER` is created first (exclusively), and a point
 * whose marker exists does nothing, so the restarted process runs through. Without a marker file nothing happens.
 * @param point the name of the place in the code, e.g. `delete:after-removal-commit`.
 */
export function crashPointForTests(point: string): void {
  const marker = process.env.IMODEL_SYNC_TEST_CRASH_MARKER;
  if (process.env.IMODEL_SYNC_TEST_CRASH !== point || !marker) return;
  try {
    fs.writeFileSync(marker, `${process.pid}\n`, { flag: "wx" });
  } catch {
    return; // crashed here before (or the marker cannot be written): run through
  }
  process.kill(process.pid, "SIGKILL");
}
