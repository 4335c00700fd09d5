/**
 * Checks of composite models to map (creating a connection, adding files to one): shared so both follow the same rules.
 * Each path is relative, inside the source folder, a regular file whose real path (symbolic links resolved) lies in a
 * SOURCE_ROOT, listed once (also through links): 400 `InvalidSourceFilePath`, `SourceFileNotFound`,
 * `SourceFileIsFolder`, `SourceFileOutsideRoots`, `DuplicateSourceFile`. The files found here are then held against
 * the iModel's other connections by domain/connection-rules.ts (`assertFileNotAlreadyMapped`, `assertWithinLimits`).
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import { ApiError } from "../domain/errors";
import type { ConnectorType, SourceFileRecord } from "../domain/model";
import { checkRealSourceFile, normaliseSourceFilePath, sourceFileAbsolutePath } from "../domain/paths";

/** Files that passed {@link checkNewSourceFiles}, each under its absolute path as mapped and its real path. */
export interface CheckedSourceFiles {
  files: SourceFileRecord[];
  byPath: Map<string, { file: SourceFileRecord; target: string }>;
}

/**
 * Checks the files to map in `sourceFolder` (a real path) and gives each a new id.
 * @param targetPrefix the request field listing them (error detail targets are `${targetPrefix}.${i}.path`).
 * @throws ApiError 400 (see the module comment).
 */
export async function checkNewSourceFiles(
  sourceFolder: string,
  inputs: { path: string; connectorType: ConnectorType }[],
  realRoots: string[],
  targetPrefix = "sourceFiles",
): Promise<CheckedSourceFiles> {
  const files: SourceFileRecord[] = [];
  const byPath = new Map<string, { file: SourceFileRecord; target: string }>();
  const seen = new Set<string>();
  const realSeen = new Map<string, string>();
  for (const [i, f] of inputs.entries()) {
    const target = `${targetPrefix}.${i}.path`;
    const rel = normaliseSourceFilePath(f.path, target);
    if (seen.has(rel)) {
      throw new ApiError("DuplicateSourceFile", `Source file '${rel}' is listed twice.`, [
        { code: "DuplicateSourceFile", message: "listed twice", target },
      ]);
    }
    seen.add(rel);
    const absolute = sourceFileAbsolutePath(sourceFolder, rel);
    const real = await fs.realpath(absolute).catch(() => undefined);
    if (real === undefined) {
      throw new ApiError("SourceFileNotFound", `Source file '${rel}' does not exist in source '${sourceFolder}'.`, [
        { code: "SourceFileNotFound", message: "no such file", target },
      ]);
    }
    checkRealSourceFile(rel, real, realRoots, target);
    const stat = await fs.stat(real).catch(() => undefined);
    if (stat?.isDirectory()) {
      throw new ApiError(
        "SourceFileIsFolder",
        `Source file '${rel}' is a folder, not a file; map the files inside it one by one.`,
        [{ code: "SourceFileIsFolder", message: "is a folder, not a file", target }],
      );
    }
    if (!stat?.isFile()) {
      throw new ApiError(
        "SourceFileNotFound",
        `Source file '${rel}' in source '${sourceFolder}' is not a regular file.`,
        [{ code: "SourceFileNotFound", message: "not a regular file", target }],
      );
    }
    const sameAs = realSeen.get(real);
    if (sameAs !== undefined) {
      throw new ApiError(
        "DuplicateSourceFile",
        `Source file '${rel}' is the same file as '${sameAs}' (through a symbolic link).`,
        [{ code: "DuplicateSourceFile", message: `same file as '${sameAs}'`, target }],
      );
    }
    realSeen.set(real, rel);
    const file: SourceFileRecord = {
      id: randomUUID(),
      path: rel,
      connectorType: f.connectorType,
      role: "CompositeModel",
    };
    files.push(file);
    byPath.set(absolute, { file, target });
    byPath.set(real, { file, target });
  }
  return { files, byPath };
}
