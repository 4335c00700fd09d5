import * as path from "node:path";
import { ApiError } from "./errors";

/**
 * Path rules for local sources (pure: no file system access).
 *
 * A source folder must be absolute and inside one of the configured SOURCE_ROOTS; a source file path is relative to
 * its source, uses `/` separators, and never climbs out of it (`..` segments are refused, as are absolute paths).
 */

/** True when `child` is `root` or lies below it (both absolute, normalised). */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * Normalises a source folder and checks it lies inside one of `roots`.
 * @returns the absolute, normalised folder path.
 * @throws ApiError `InvalidSourcePath` if not absolute; `SourcePathNotAllowed` if outside every root.
 */
export function checkSourceFolder(folder: string, roots: readonly string[]): string {
  if (!path.isAbsolute(folder)) {
    throw new ApiError("InvalidSourcePath", `Source path '${folder}' must be an absolute folder path.`, [
      { code: "InvalidSourcePath", message: "must be absolute", target: "source.path" },
    ]);
  }
  const normalised = path.resolve(folder);
  if (!roots.some((root) => isInside(path.resolve(root), normalised))) {
    throw new ApiError(
      "SourcePathNotAllowed",
      `Source path '${folder}' is outside the folders this service may read (SOURCE_ROOTS).`,
      [{ code: "SourcePathNotAllowed", message: "outside SOURCE_ROOTS", target: "source.path" }],
    );
  }
  return normalised;
}

/**
 * Normalises a source file path (relative to its source) to `/`-separated form.
 * @throws ApiError `InvalidSourceFilePath` for empty, absolute, `..`-containing or NUL-containing paths.
 */
export function normaliseSourceFilePath(filePath: string, target = "sourceFiles.path"): string {
  const fail = (why: string) =>
    new ApiError("InvalidSourceFilePath", `Source file path '${filePath}' is not allowed: ${why}.`, [
      { code: "InvalidSourceFilePath", message: why, target },
    ]);
  if (filePath.length === 0) throw fail("it is empty");
  if (filePath.includes("\0")) throw fail("it contains a NUL character");
  const slashed = filePath.replace(/\\/g, "/");
  if (slashed.startsWith("/") || /^[A-Za-z]:/.test(slashed)) throw fail("it must be relative to the source");
  const segments = slashed.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.some((s) => s === "..")) throw fail("'..' segments may not leave the source");
  if (segments.length === 0) throw fail("it names no file");
  return segments.join("/");
}

/** Absolute path of a normalised source file inside its source folder. */
export function sourceFileAbsolutePath(sourceFolder: string, relativePath: string): string {
  return path.join(sourceFolder, ...relativePath.split("/"));
}
