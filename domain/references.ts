import * as path from "node:path";

/**
 * Where to look for a reference file a composite model names, in order (pure; the caller checks which exists).
 *
 * Mirrors how CAD applications resolve XREFs: first the path as saved, relative to the composite's folder; then the
 * file name alone in the composite's folder (the usual fallback when the saved path was absolute or moved).
 * Paths that would leave the source are never candidates.
 * @param compositePath the composite's path relative to the source, `/`-separated.
 * @param referencedAs the path as written in the composite (may use `\`, be absolute, or start with `..`).
 * @returns source-relative `/`-separated paths, without duplicates.
 */
export function referenceCandidates(compositePath: string, referencedAs: string): string[] {
  const raw = referencedAs.trim().replace(/\\/g, "/");
  if (raw === "") return [];
  const folder = path.posix.dirname(compositePath);
  const base = path.posix.basename(raw);
  const absolute = raw.startsWith("/") || /^[A-Za-z]:\//.test(raw) || raw.startsWith("//");
  const candidates = absolute ? [base] : [path.posix.join(folder, raw), path.posix.join(folder, base)];
  return [...new Set(candidates.map((c) => path.posix.normalize(c)))].filter(
    (c) => c !== "." && c !== "" && !c.startsWith("../") && c !== ".." && !c.startsWith("/"),
  );
}
