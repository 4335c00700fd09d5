/**
 * Source files on disk: checking a file before it is read, hashing its content, and resolving the reference files a
 * composite model names against its source.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import { connectorTypeOf, type ConnectionRecord, type ErrorInfo, type ReferenceRecord } from "../domain/model";
import { isInside, sourceFileAbsolutePath } from "../domain/paths";
import { referenceCandidates } from "../domain/references";
import type { Store } from "../lib/db";
import { activeMappingOf, mappedFiles } from "../lib/mapping";
import type { DiscoveredReference } from "./connectors/types";

/** Stable id of a reference file of a connection: the same resolved path gives the same id in every composite. */
export function referenceId(connectionId: string, resolvedPath: string): string {
  return `ref-${createHash("sha256").update(`${connectionId}\0${resolvedPath}`).digest("hex").slice(0, 24)}`;
}

/**
 * Checks a source file before reading it: it must be a regular file (a FIFO or device would block the reader) whose
 * real path (symlinks resolved) lies inside one of `roots`.
 * @returns undefined when it may be read, else the task error (`FileNotFound`, `FileUnreadable`, `FileOutsideSourceRoots`).
 */
export async function checkSourceFile(
  absolutePath: string,
  roots: string[],
  label: string,
): Promise<ErrorInfo | undefined> {
  let real: string;
  try {
    real = await fs.realpath(absolutePath);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    return {
      code: missing ? "FileNotFound" : "FileUnreadable",
      message: `${label}: ${missing ? "the file does not exist" : (err as Error).message}; its data in the iModel is kept`,
      target: label,
    };
  }
  const realRoots = await Promise.all(roots.map((r) => fs.realpath(r).catch(() => r)));
  if (!realRoots.some((root) => isInside(root, real))) {
    return {
      code: "FileOutsideSourceRoots",
      message: `${label}: the file resolves to a path outside SOURCE_ROOTS and is not read`,
      target: label,
    };
  }
  const stat = await fs.stat(real);
  if (!stat.isFile())
    return {
      code: "FileUnreadable",
      message: `${label}: not a regular file; its data in the iModel is kept`,
      target: label,
    };
  return undefined;
}

/** SHA-256 hex of a file's content (content, not dates or headers, decides whether a file changed). */
export async function hashFile(absolutePath: string): Promise<string> {
  const hash = createHash("sha256");
  const handle = await fs.open(absolutePath, "r");
  try {
    for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer);
  } finally {
    await handle.close().catch(() => undefined);
  }
  return hash.digest("hex");
}

/**
 * Resolves the references a composite names against the source, like CAD applications do (the saved path relative
 * to the composite, then the file name in the composite's folder; never outside the source; see
 * `referenceCandidates`): each becomes a resolved reference (a task of the ReferenceFile phase) or a warning on the
 * composite's task (`UnresolvedReference`, `UnsupportedReferenceFormat`, or `ReferenceMappedByAnotherConnection`: a
 * file is mapped by at most one connection of an iModel, docs/product-rules.md "Limits").
 * @param composite the composite model's path relative to the source.
 * @returns the references to record on the composite's file record, and the warnings for its task.
 */
export async function resolveReferences(
  store: Store,
  connection: ConnectionRecord,
  composite: { path: string },
  discovered: DiscoveredReference[],
): Promise<{ records: ReferenceRecord[]; warnings: ErrorInfo[] }> {
  const records: ReferenceRecord[] = [];
  const warnings: ErrorInfo[] = [];
  const sourceFolder = connection.source.path;
  const mappedElsewhere =
    discovered.length > 0 ? await filesOfOtherConnections(store, connection) : new Map<string, string>();
  // A reference that is itself a composite model of the connection keeps the composite's id (synchronized once).
  const idFor = (p: string) => connection.sourceFiles.find((f) => f.path === p)?.id ?? referenceId(connection._id, p);
  for (const ref of discovered) {
    let found: string | undefined;
    for (const candidate of referenceCandidates(composite.path, ref.path)) {
      const stat = await fs.stat(sourceFileAbsolutePath(sourceFolder, candidate)).catch(() => undefined);
      if (stat?.isFile()) {
        found = candidate;
        break;
      }
    }
    const connectorType = found ? connectorTypeOf(found) : undefined;
    const real = found
      ? await fs.realpath(sourceFileAbsolutePath(sourceFolder, found)).catch(() => undefined)
      : undefined;
    const owner = real ? mappedElsewhere.get(real) : undefined;
    if (found && owner) {
      // A file is mapped by at most one connection of an iModel: its data comes from that connection.
      if (records.some((r) => r.path === found)) continue;
      records.push({
        id: idFor(found),
        path: found,
        referencedAs: ref.path,
        attachment: ref.attachment,
        ...(connectorType ? { connectorType } : {}),
        resolved: false,
      });
      warnings.push({
        code: "ReferenceMappedByAnotherConnection",
        message: `reference '${ref.path}' (${found}) is mapped by connection ${owner} of this iModel; it is synchronized there, not here`,
        target: ref.path,
      });
    } else if (found && connectorType && found !== composite.path) {
      if (records.some((r) => r.path === found)) continue;
      records.push({
        id: idFor(found),
        path: found,
        referencedAs: ref.path,
        attachment: ref.attachment,
        connectorType,
        resolved: true,
      });
    } else {
      records.push({
        id: idFor(found ?? ref.path),
        path: found ?? ref.path,
        referencedAs: ref.path,
        attachment: ref.attachment,
        resolved: false,
      });
      warnings.push(
        found && !connectorType
          ? {
              code: "UnsupportedReferenceFormat",
              message: `reference '${ref.path}' (${found}) has a format no connector reads; it is not synchronized`,
              target: ref.path,
            }
          : {
              code: "UnresolvedReference",
              message: `reference '${ref.path}'${ref.name ? ` (${ref.name})` : ""} was not found in the source; it is not synchronized`,
              target: ref.path,
            },
      );
    }
  }
  return { records, warnings };
}

/**
 * Real paths of the files the iModel's other active connections map (composite models) or synchronize (resolved
 * reference files), each with that connection's name and id for messages.
 */
async function filesOfOtherConnections(store: Store, connection: ConnectionRecord): Promise<Map<string, string>> {
  const { connections, states } = await activeMappingOf(store, connection.iModelId, connection._id);
  return new Map(
    (await mappedFiles(connections, states)).map((f) => [
      f.real,
      `'${f.connection.displayName}' (${f.connection._id})`,
    ]),
  );
}
