/**
 * Builds the portal (web/) into web/dist with Vite, which the API serves at `/` (api/portal.ts).
 *
 * Usage: `tsx scripts/portal.ts` (always builds; `make portal`) or `tsx scripts/portal.ts --if-stale` (builds only
 * when web/dist is missing or older than a source of the portal or the lock file; `make demo` and the test setup).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const WEB = path.join(ROOT, "web");
/** The file a finished build writes last (Vite writes index.html after the assets). */
export const PORTAL_INDEX = path.join(WEB, "dist", "index.html");

/** Newest modification time (ms) of the files under `dir` (recursively), or of `dir` itself when it is a file. */
function newestMtime(dir: string): number {
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of fs.readdirSync(dir)) newest = Math.max(newest, newestMtime(path.join(dir, entry)));
  return newest;
}

/** True when web/dist is missing or older than the portal's sources, its build settings or package-lock.json. */
export function portalIsStale(): boolean {
  const built = fs.statSync(PORTAL_INDEX, { throwIfNoEntry: false })?.mtimeMs;
  if (built === undefined) return true;
  const sources = [
    path.join(WEB, "src"),
    path.join(WEB, "index.html"),
    path.join(WEB, "vite.config.mts"),
    path.join(ROOT, "package-lock.json"),
  ];
  return sources.some((s) => newestMtime(s) > built);
}

/**
 * Runs `vite build` (a few seconds).
 * @throws Error when the build fails (its output is on stderr).
 */
export function buildPortal(): void {
  const started = Date.now();
  execFileSync(
    path.join(ROOT, "node_modules", ".bin", "vite"),
    ["build", "--config", path.join(WEB, "vite.config.mts")],
    {
      cwd: ROOT,
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  console.log(
    `portal built into ${path.relative(ROOT, path.dirname(PORTAL_INDEX))}/ in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

if (typeof module !== "undefined" && require.main === module) {
  const ifStale = process.argv.includes("--if-stale");
  if (!ifStale || portalIsStale()) buildPortal();
}
