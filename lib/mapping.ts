/**
 * What the connections of an iModel map: shared by the API's mapping rules (create, add; the rule itself is
 * domain/connection-rules.ts `assertFileNotAlreadyMapped`) and the worker's reference resolution, so both see the same
 * files (docs/product-rules.md "Limits": a file is mapped by at most one connection of an iModel).
 */
import * as fs from "node:fs/promises";
import type { MappedConnection, MappedFile } from "../domain/connection-rules";
import type { FileStateRecord } from "../domain/model";
import { sourceFileAbsolutePath } from "../domain/paths";
import type { Store } from "./db";

/**
 * The iModel's active connections (but `exceptConnectionId`) and their file records.
 */
export async function activeMappingOf(
  store: Store,
  iModelId: string,
  exceptConnectionId?: string,
): Promise<{ connections: MappedConnection[]; states: FileStateRecord[] }> {
  const connections = await store.connections
    .find(
      { iModelId, status: "Active", ...(exceptConnectionId ? { _id: { $ne: exceptConnectionId } } : {}) },
      { projection: { displayName: 1, source: 1, sourceFiles: 1 } },
    )
    .toArray();
  const states = connections.length
    ? await store.fileStates.find({ connectionId: { $in: connections.map((c) => c._id) } }).toArray()
    : [];
  return { connections, states };
}

/**
 * The files `connections` map: their composite models and, unless `compositesOnly` names the connection, the resolved
 * reference files of their mapped composites found in `states`.
 */
export async function mappedFiles(
  connections: MappedConnection[],
  states: Pick<FileStateRecord, "connectionId" | "references" | "unmapped">[],
  compositesOnly?: string,
): Promise<MappedFile[]> {
  const files = connections.flatMap((connection) => [
    ...connection.sourceFiles.map((f) => ({
      connection,
      path: sourceFileAbsolutePath(connection.source.path, f.path),
      asReference: false,
    })),
    ...states
      .filter((s) => s.connectionId === connection._id && connection._id !== compositesOnly && !s.unmapped)
      .flatMap((s) => (s.references ?? []).filter((r) => r.resolved))
      .map((r) => ({ connection, path: sourceFileAbsolutePath(connection.source.path, r.path), asReference: true })),
  ]);
  const reals = await Promise.all(files.map((f) => fs.realpath(f.path).catch(() => f.path)));
  return files.map((f, i) => ({ ...f, real: reals[i] }));
}
