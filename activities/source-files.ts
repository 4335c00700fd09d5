/**
 * Source files on disk: checking a file before it is read, hashing its content, and resolving the reference files a
 * composite model names against its source.
 */
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import {
  connectorTypeOf,
  type ConnectionRecord,
  type ErrorInfo,
  type ReferenceRecord,
  type SourceFileRole,
} from "../domain/model";
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

/** SHA-256 hex of bytes: the content hash of a file read with {@link readSourceFileOnce}. */
export function contentHashOf(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The file changed (size, modification time or inode) while it was read: it is read again later. */
export class FileChangedDuringReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FileChangedDuringReadError";
  }
}

/**
 * Reads a source file's bytes once, for hashing and parsing the same bytes (README "Synchronization"): stat, read,
 * stat again.
 * @param label the file's name or path, for messages.
 * @returns the bytes, which the file held from the first stat to the second.
 * @throws FileChangedDuringReadError when its size, modification time (ns) or inode differ between the two stats or
 *   the bytes read are not its size (a copy or a CAD application is still writing it); the errno error of `fs`
 *   (e.g. ENOENT) when it cannot be read.
 */
export async function readSourceFileOnce(absolutePath: string, label: string): Promise<Buffer> {
  const handle = await fs.open(absolutePath, "r");
  let bytes: Buffer;
  let before: BigIntStats;
  try {
    before = await handle.stat({ bigint: true });
    bytes = await handle.readFile();
  } finally {
    await handle.close().catch(() => undefined);
  }
  const after = await fs.stat(absolutePath, { bigint: true });
  const changed: string[] = [];
  if (after.size !== before.size || BigInt(bytes.length) !== after.size)
    changed.push(
      `size ${before.size} → ${after.size} bytes${BigInt(bytes.length) !== after.size ? `, ${bytes.length} read` : ""}`,
    );
  if (after.mtimeNs !== before.mtimeNs) changed.push("modification time");
  if (after.ino !== before.ino) changed.push("inode (replaced)");
  if (changed.length > 0)
    throw new FileChangedDuringReadError(
      `${label}: the file changed while it was read (${changed.join(", ")}); it is read again later`,
    );
  return bytes;
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

/** The file whose references are resolved: a composite model, or a reference file (nested references). */
export interface ReferencingFile {
  sourceFileId: string;
  /** Path relative to the source. */
  path: string;
  role: SourceFileRole;
}

/**
 * Resolves the references a file names against the source, like CAD applications do (the saved path relative to the
 * file, then the file name in the file's folder; never outside the source; see `referenceCandidates`): each becomes
 * a resolved reference (a task of the ReferenceFile phase) or a warning on the file's task:
 * - `UnresolvedReference`: no candidate exists (the message names the paths looked for and the folders searched);
 * - `UnsupportedReferenceFormat`: no connector reads it (e.g. a `.dwg`);
 * - `ReferenceMappedByAnotherConnection`: a file is mapped by at most one connection of an iModel
 *   (docs/product-rules.md "Limits");
 * - `CircularReference`: the reference is the file itself, or a file that names this file again through the
 *   references recorded at the last parse of each file (`FileStateRecord.references`); the message names the chain
 *   (`host.dxf → b.dxf → host.dxf`). It is recorded with `circular: true` and not followed again; each file is
 *   synchronized once per run anyway;
 * - `NestedOverlayIgnored`: an overlay named by a reference file; CAD applications load overlays only from the drawing
 *   that attaches them, so it is not followed.
 * @param file the file naming the references (composite model or reference file).
 * @returns the references to record on the file's record, and the warnings for its task.
 */
export async function resolveReferences(
  store: Store,
  connection: ConnectionRecord,
  file: ReferencingFile,
  discovered: DiscoveredReference[],
): Promise<{ records: ReferenceRecord[]; warnings: ErrorInfo[] }> {
  const records: ReferenceRecord[] = [];
  const warnings: ErrorInfo[] = [];
  const sourceFolder = connection.source.path;
  const mappedElsewhere =
    discovered.length > 0 ? await filesOfOtherConnections(store, connection) : new Map<string, string>();
  // A reference that is itself a composite model of the connection keeps the composite's id (synchronized once).
  const idFor = (p: string) =>
    p === file.path
      ? file.sourceFileId
      : (connection.sourceFiles.find((f) => f.path === p)?.id ?? referenceId(connection._id, p));
  let graph: ReferenceGraph | undefined;
  for (const ref of discovered) {
    if (file.role === "ReferenceFile" && ref.attachment === "Overlay") {
      warnings.push({
        code: "NestedOverlayIgnored",
        message: `overlay reference '${ref.path}'${ref.name ? ` (${ref.name})` : ""} of the reference file ${file.path} is not followed: overlays are loaded only from the drawing that attaches them, as in CAD applications`,
        target: ref.path,
      });
      continue;
    }
    const candidates = referenceCandidates(file.path, ref.path);
    let found: string | undefined;
    for (const candidate of candidates) {
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
    if (found && records.some((r) => r.path === found)) continue; // named twice
    if (found && owner) {
      // A file is mapped by at most one connection of an iModel: its data comes from that connection.
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
    } else if (found && connectorType) {
      const id = idFor(found);
      let chain: string[] | undefined;
      if (found === file.path) chain = [file.path, file.path];
      else {
        graph ??= await referenceGraph(store, connection._id);
        const back = graph.path(id, file.sourceFileId);
        if (back) chain = [...back, found];
      }
      records.push({
        id,
        path: found,
        referencedAs: ref.path,
        attachment: ref.attachment,
        connectorType,
        resolved: true,
        ...(chain ? { circular: true } : {}),
      });
      if (chain) {
        warnings.push({
          code: "CircularReference",
          message: `circular reference: ${chain.join(" → ")}; ${file.path} names '${ref.path}' (${found}), which ${found === file.path ? "is the file itself" : `names ${file.path} again`}. The cycle is not followed again; each file is synchronized once per run`,
          target: ref.path,
        });
      }
    } else if (found) {
      records.push({
        id: idFor(found),
        path: found,
        referencedAs: ref.path,
        attachment: ref.attachment,
        resolved: false,
      });
      warnings.push({
        code: "UnsupportedReferenceFormat",
        message: `reference '${ref.path}' (${found}) has a format no connector reads; it is not synchronized`,
        target: ref.path,
      });
    } else {
      records.push({
        id: idFor(ref.path),
        path: ref.path,
        referencedAs: ref.path,
        attachment: ref.attachment,
        resolved: false,
      });
      warnings.push({
        code: "UnresolvedReference",
        message: `reference '${ref.path}'${ref.name ? ` (${ref.name})` : ""} was not found: ${lookedFor(sourceFolder, candidates)}; it is not synchronized`,
        target: ref.path,
      });
    }
  }
  return { records, warnings };
}

/** Where a reference was looked for, for the `UnresolvedReference` message. */
function lookedFor(sourceFolder: string, candidates: string[]): string {
  if (candidates.length === 0)
    return `its saved path leads outside the source ${sourceFolder}, and only files inside the source are read`;
  const folders = [...new Set(candidates.map((c) => path.posix.dirname(c)))].map((d) =>
    d === "." ? sourceFolder : sourceFileAbsolutePath(sourceFolder, d),
  );
  return `looked for ${candidates.map((c) => `'${c}'`).join(" and ")} in the source (folders searched: ${folders.join(", ")})`;
}

/** The references between the files of a connection, as recorded at each file's last parse. */
interface ReferenceGraph {
  /** The files from `from` to `to` along recorded references (both included); undefined when `to` is not reached. */
  path(from: string, to: string): string[] | undefined;
}

/** Reads the connection's file records into a {@link ReferenceGraph} (paths by file id for the chain). */
async function referenceGraph(store: Store, connectionId: string): Promise<ReferenceGraph> {
  const states = await store.fileStates.find({ connectionId }).toArray();
  const edges = new Map<string, string[]>();
  const pathOf = new Map<string, string>();
  for (const s of states) {
    if (s.unmapped) continue;
    pathOf.set(s.sourceFileId, s.path);
    const refs = (s.references ?? []).filter((r) => r.resolved);
    edges.set(
      s.sourceFileId,
      refs.map((r) => r.id),
    );
    for (const r of refs) if (!pathOf.has(r.id)) pathOf.set(r.id, r.path);
  }
  return {
    path(from, to) {
      const previous = new Map<string, string>([[from, from]]);
      const queue = [from];
      while (queue.length > 0) {
        const at = queue.shift()!;
        if (at === to) {
          const ids = [at];
          while (ids[0] !== from) ids.unshift(previous.get(ids[0])!);
          return ids.map((id) => pathOf.get(id) ?? id);
        }
        for (const next of edges.get(at) ?? []) {
          if (previous.has(next)) continue;
          previous.set(next, at);
          queue.push(next);
        }
      }
      return undefined;
    },
  };
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
