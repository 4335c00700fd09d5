import * as path from "node:path";
import { ApiError } from "./errors";

/**
 * Path rules for local sources (pure: no file system access).
 *
 * A source folder must be absolute and inside one of the configured SOURCE_ROOTS; a source file path is relative to
 * its source, uses `/` separators, and never climbs out of it (`..` segments are refused, as are absolute paths).
 *
 * Symbolic links: the lexical checks here are not enough on their own. The caller resolves the real paths (`realpath`)
 * of the roots, of the source folder and of each file, and checks them with `checkRealSourceFolder` and
 * `checkRealSourceFile`: a link inside a root that points outside every root is refused.
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
  if (folder.includes("\0")) {
    throw new ApiError("InvalidSourcePath", "Source path must not contain a NUL character.", [
      { code: "InvalidSourcePath", message: "contains a NUL character", target: "source.path" },
    ]);
  }
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
  if (segments.some((s) => s === "..")) throw fail("'..' segments are not allowed in source file paths");
  if (segments.length === 0) throw fail("it names no file");
  return segments.join("/");
}

/** True when the real (symbolic-link-free) path `realPath` lies inside one of the real roots `realRoots`. */
export function insideSomeRoot(realPath: string, realRoots: readonly string[]): boolean {
  return realRoots.some((root) => isInside(root, realPath));
}

/**
 * Checks the real path of a source folder (after `checkSourceFolder` accepted the path as given).
 * @param given the path as the request gave it (for the message).
 * @param realFolder `realpath` of the folder.
 * @param realRoots `realpath` of each SOURCE_ROOT.
 * @throws ApiError `SourcePathNotAllowed` when a symbolic link leads the folder outside every root.
 */
export function checkRealSourceFolder(given: string, realFolder: string, realRoots: readonly string[]): void {
  if (insideSomeRoot(realFolder, realRoots)) return;
  throw new ApiError(
    "SourcePathNotAllowed",
    `Source path '${given}' leads through a symbolic link outside the folders this service may read (SOURCE_ROOTS).`,
    [{ code: "SourcePathNotAllowed", message: "resolves outside SOURCE_ROOTS", target: "source.path" }],
  );
}

/**
 * Checks the real path of a source file.
 * @param relativePath the normalised path relative to the source (for the message).
 * @param realFile `realpath` of the file.
 * @param realRoots `realpath` of each SOURCE_ROOT.
 * @param target the request field (`sourceFiles.<i>.path`).
 * @throws ApiError `SourceFileOutsideRoots` when a symbolic link (the file or a folder on its way) leads outside every
 *   root. The message does not reveal where the link points.
 */
export function checkRealSourceFile(
  relativePath: string,
  realFile: string,
  realRoots: readonly string[],
  target: string,
): void {
  if (insideSomeRoot(realFile, realRoots)) return;
  throw new ApiError(
    "SourceFileOutsideRoots",
    `Source file '${relativePath}' leads through a symbolic link outside the folders this service may read (SOURCE_ROOTS).`,
    [{ code: "SourceFileOutsideRoots", message: "resolves outside SOURCE_ROOTS", target }],
  );
}

/** Absolute path of a normalised source file inside its source folder. */
export function sourceFileAbsolutePath(sourceFolder: string, relativePath: string): string {
  return path.join(sourceFolder, ...relativePath.split("/"));
}
