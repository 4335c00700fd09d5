/**
 * The folders a connection may read, for choosing a source and its composite models (the portal's folder browser):
 * - `GET /sources` → 200 {folder: null, folders, files: []}: the SOURCE_ROOTS themselves;
 * - `GET /sources?path=<absolute folder>` → 200 {folder, folders, files}: the subfolders and files of a folder inside
 *   SOURCE_ROOTS, each file with the connector type a connection would use for it (`null` when no connector reads it).
 *
 * A folder is checked like a connection's source (api/app.ts `POST /connections`): the path as given must lie inside a
 * SOURCE_ROOT (`..` segments are resolved first), and so must its real path (symbolic links resolved): 400
 * `InvalidSourcePath` (not absolute), `SourcePathNotAllowed` (outside every root); 404 `SourceFolderNotFound` (missing or
 * not a folder). Entries whose real path leads outside every root (symbolic links) are left out of the listing, so
 * nothing outside the roots is revealed, not even where a link points.
 */
import type { Dirent } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Router } from "express";
import { ApiError } from "../domain/errors";
import { connectorTypeOf, type ConnectorType } from "../domain/model";
import { checkRealSourceFolder, checkSourceFolder, insideSomeRoot, isInside } from "../domain/paths";
import { sourcesQuery } from "../domain/schemas";
import type { Config } from "../lib/config";
import { parse, route } from "./http";
import { realSourceRoots } from "./lookups";

/** Most entries (folders and files together) one listing returns; `truncated: true` says more were left out. */
export const MAX_SOURCE_ENTRIES = 5000;

/** A subfolder in a listing: its absolute path as a connection's `source.path` would name it. */
export interface SourceFolderEntry {
  name: string;
  path: string;
}

/** A file in a listing. `size` in bytes, `modifiedDateTime` ISO 8601 UTC, `connectorType` null when none reads it. */
export interface SourceFileEntry {
  name: string;
  path: string;
  size: number;
  modifiedDateTime: string;
  connectorType: ConnectorType | null;
}

/** The listed folder: its path, the SOURCE_ROOT it lies in, and its parent (null at a root). */
export interface SourceFolderInfo {
  path: string;
  root: string;
  parent: string | null;
}

export interface SourcesDeps {
  config: Config;
}

/** The request's `path` checked as a source folder; ApiErrors name the query parameter `path` as their target. */
function checkedFolder(given: string, roots: string[]): string {
  try {
    return checkSourceFolder(given, roots);
  } catch (err) {
    if (err instanceof ApiError && err.details)
      throw new ApiError(
        err.code,
        err.message,
        err.details.map((d) => ({ ...d, target: "path" })),
      );
    throw err;
  }
}

/**
 * Lists a folder inside SOURCE_ROOTS (see the module comment): subfolders first, then files, each sorted by name.
 * @param folder absolute, normalised, lexically inside a root (`checkSourceFolder`).
 * @param configuredRoots the SOURCE_ROOTS (and their real paths), absolute.
 * @throws ApiError SourceFolderNotFound (404), SourcePathNotAllowed (400, through a symbolic link).
 */
export async function listSourceFolder(
  folder: string,
  configuredRoots: string[],
): Promise<{ folder: SourceFolderInfo; folders: SourceFolderEntry[]; files: SourceFileEntry[]; truncated: boolean }> {
  const notFound = () =>
    new ApiError("SourceFolderNotFound", `Source folder '${folder}' does not exist or is not a folder.`, [
      { code: "SourceFolderNotFound", message: "no such folder", target: "path" },
    ]);
  const realRoots = await realSourceRoots(configuredRoots);
  const real = await fs.realpath(folder).catch(() => undefined);
  if (real === undefined) throw notFound();
  try {
    checkRealSourceFolder(folder, real, realRoots);
  } catch (err) {
    throw err instanceof ApiError
      ? new ApiError(err.code, err.message, [
          { code: err.code, message: "resolves outside SOURCE_ROOTS", target: "path" },
        ])
      : err;
  }
  let dirents: Dirent[];
  try {
    dirents = await fs.readdir(real, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOTDIR" || (err as NodeJS.ErrnoException).code === "ENOENT")
      throw notFound();
    throw err;
  }
  dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const folders: SourceFolderEntry[] = [];
  const files: SourceFileEntry[] = [];
  let truncated = false;
  for (const d of dirents) {
    if (folders.length + files.length >= MAX_SOURCE_ENTRIES) {
      truncated = true;
      break;
    }
    const entryPath = path.join(folder, d.name);
    // The entry's real path: a symbolic link (or one on the folder's way) may lead outside every root.
    const entryReal = await fs.realpath(path.join(real, d.name)).catch(() => undefined);
    if (entryReal === undefined || !insideSomeRoot(entryReal, realRoots)) continue;
    const stat = await fs.stat(entryReal).catch(() => undefined);
    if (stat?.isDirectory()) folders.push({ name: d.name, path: entryPath });
    else if (stat?.isFile())
      files.push({
        name: d.name,
        path: entryPath,
        size: stat.size,
        modifiedDateTime: stat.mtime.toISOString(),
        connectorType: connectorTypeOf(d.name) ?? null,
      });
  }
  // The innermost root holding the folder (roots may nest).
  const root = configuredRoots.filter((r) => isInside(r, folder)).sort((a, b) => b.length - a.length)[0];
  const parent = root === undefined || folder === root ? null : path.dirname(folder);
  return { folder: { path: folder, root: root ?? folder, parent }, folders, files, truncated };
}

export function sourcesRouter({ config }: SourcesDeps): Router {
  const router = Router();

  router.get(
    "/sources",
    route(async (req, res) => {
      const q = parse(sourcesQuery, req.query);
      if (q.path === undefined) {
        res.json({
          folder: null,
          folders: config.sourceRoots.map((r) => ({ name: r, path: r })),
          files: [],
          truncated: false,
        });
        return;
      }
      // A root's real path counts as the root (a connection stores its source's real path).
      const roots = [...new Set([...config.sourceRoots, ...(await realSourceRoots(config.sourceRoots))])];
      res.json(await listSourceFolder(checkedFolder(q.path, roots), roots));
    }),
  );

  return router;
}
