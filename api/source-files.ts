/**
 * Checks of composite models to map (creating a connection, adding files to one): shared so both follow the same rules.
 * - each path is relative, inside the source folder, a regular file whose real path (symbolic links resolved) lies in a
 *   SOURCE_ROOT, listed once (also through links): 400 `InvalidSourceFilePath`, `SourceFileNotFound`,
 *   `SourceFileIsFolder`, `SourceFileOutsideRoots`, `DuplicateSourceFile`;
 * - a file is mapped by at most one connection of an iModel, compared by mapped path and by real path: 409
 *   `SourceFileAlreadyMapped` (docs/product-rules.md "Limits");
 * - at most 250 composite models per iModel across its connections: 409 `MaxCompositeModelsPerIModelReached`.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import { ApiError } from "../domain/errors";
import { LIMITS } from "../domain/limits";
import type { ConnectorType, FileStateRecord, SourceFileRecord } from "../domain/model";
import { checkRealSourceFile, normaliseSourceFilePath, sourceFileAbsolutePath } from "../domain/paths";
import { mappedFiles, type MappedConnection } from "../lib/mapping";

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

/**
 * Refuses files already mapped by one of `connections` (the iModel's active connections, the one being changed
 * included), compared by path as mapped and by real path, so an alias through a symbolic link is refused too. With
 * `states` (the file records of the other connections), a reference file one of them synchronizes counts as mapped by
 * it too (a file is mapped by at most one connection of an iModel, composite model or reference).
 * @throws ApiError SourceFileAlreadyMapped (409).
 */
export async function assertNotMapped(
  checked: CheckedSourceFiles,
  connections: MappedConnection[],
  changing?: string,
  states: Pick<FileStateRecord, "connectionId" | "references" | "unmapped">[] = [],
): Promise<void> {
  for (const theirs of await mappedFiles(connections, states, changing)) {
    const mine = checked.byPath.get(theirs.path) ?? checked.byPath.get(theirs.real);
    if (!mine) continue;
    const other = theirs.connection;
    const by =
      other._id === changing ? "this connection" : `connection '${other.displayName}' (${other._id}) of this iModel`;
    throw new ApiError(
      "SourceFileAlreadyMapped",
      `Source file '${mine.file.path}' is already mapped by ${by}${theirs.asReference ? " as a reference file" : ""}.`,
      [{ code: "SourceFileAlreadyMapped", message: `mapped by connection ${other._id}`, target: mine.target }],
    );
  }
}

/**
 * Refuses a mapping that would pass 250 composite models in the iModel (docs/product-rules.md "Limits").
 * @throws ApiError MaxCompositeModelsPerIModelReached (409).
 */
export function assertCompositeLimit(iModelId: string, connections: MappedConnection[], adding: number): void {
  const composites = connections.reduce(
    (n, c) => n + c.sourceFiles.filter((f) => f.role === "CompositeModel").length,
    0,
  );
  if (composites + adding > LIMITS.compositeModelsPerIModel) {
    throw new ApiError(
      "MaxCompositeModelsPerIModelReached",
      `iModel '${iModelId}' would have ${composites + adding} composite models; at most ${LIMITS.compositeModelsPerIModel} are allowed across its connections.`,
    );
  }
}
