/**
 * DATA_DIR is for the service's user only (issue: iModels, both databases with emails and key hashes, and logs were
 * world-readable): every folder the stack creates in it is 0700 and every file 0600, and the launcher closes an
 * existing DATA_DIR that others could enter.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { createConnection, makeSource, http, ROOT, SAMPLE, stack, waitForRun } from "./helpers";

/** Written into the test stack's DATA_DIR by the tests themselves (vitest processes), not by the service. */
const WRITTEN_BY_TESTS = new Set(["sources", "mail-received", "test-cache"]);

/** Every entry under `dir` with its permission bits, except the trees in `skip` (top level). */
function modes(dir: string, skip: Set<string>): { path: string; mode: number; folder: boolean }[] {
  const found: { path: string; mode: number; folder: boolean }[] = [];
  const walk = (p: string) => {
    for (const entry of fs.readdirSync(p, { withFileTypes: true })) {
      const full = path.join(p, entry.name);
      if (p === dir && skip.has(entry.name)) continue;
      const st = fs.lstatSync(full);
      if (st.isSymbolicLink()) continue;
      found.push({ path: path.relative(dir, full), mode: st.mode & 0o777, folder: st.isDirectory() });
      if (st.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return found;
}

describe("DATA_DIR", () => {
  it("holds only folders 0700 and files 0600: iModels, both databases, logs, pid and settings files", async () => {
    const source = makeSource("private", { "h.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc") });
    const { connection } = await createConnection(source, ["h.ifc"], "private data");
    const r = await http("POST", `/connections/${connection.id}/run`);
    expect((await waitForRun(r.location!)).run.result).toBe("Success");

    const dataDir = stack().dataDir;
    const entries = modes(dataDir, WRITTEN_BY_TESTS);
    const names = entries.map((e) => e.path);
    for (const expected of ["imodels", "temporal/temporal.db", "ferretdb", "logs/api.log", "logs/worker.log", "run"])
      expect(names, expected).toContain(expected);
    expect(names.some((n) => n.startsWith("imodels/") && n.endsWith(".bim"))).toBe(true);
    expect(names.some((n) => n.startsWith("ferretdb/sqlite/"))).toBe(true);
    const open = entries.filter((e) => e.mode !== (e.folder ? 0o700 : 0o600));
    expect(open.map((e) => `${e.path} ${e.mode.toString(8)}`)).toEqual([]);
    expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);
  });

  it("an existing DATA_DIR that others may enter is closed by the launcher", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-open-"));
    try {
      fs.chmodSync(dir, 0o755);
      execFileSync("bash", [path.join(ROOT, "scripts/stack.sh"), "status"], {
        cwd: ROOT,
        env: { ...process.env, DATA_DIR: dir, TEMPORAL_PORT: "1", FERRETDB_PORT: "2", API_PORT: "3" },
        stdio: "pipe",
      }).toString();
    } catch {
      // `status` exits non-zero when nothing runs there; only the folder's mode matters here.
    } finally {
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
      // The admin key the launcher generated for that DATA_DIR is private too.
      expect(fs.statSync(path.join(dir, "admin-api-key")).mode & 0o777).toBe(0o600);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
