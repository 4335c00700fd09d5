/** Loading records by id for the API, with the 404 every route answers for an unknown id. */
import * as fs from "node:fs/promises";
import { ApiError } from "../domain/errors";
import type { ConnectionRecord, IModelRecord } from "../domain/model";
import type { Store } from "../lib/db";
import { runJson } from "./representations";

/**
 * The iModel with this id.
 * @throws ApiError IModelNotFound (404).
 */
export async function loadIModel(store: Store, id: string): Promise<IModelRecord> {
  const m = await store.imodels.findOne({ _id: id });
  if (!m) throw new ApiError("IModelNotFound", `iModel '${id}' does not exist.`);
  return m;
}

/**
 * The connection with this id, whatever its status.
 * @throws ApiError ConnectionNotFound (404).
 */
export async function loadConnection(store: Store, id: string): Promise<ConnectionRecord> {
  const c = await store.connections.findOne({ _id: id });
  if (!c) throw new ApiError("ConnectionNotFound", `Connection '${id}' does not exist.`);
  return c;
}

/** A run with its tasks as the API shows it (see `runJson`), or undefined when there is no such run record yet. */
export async function runWithTasks(store: Store, runId: string): Promise<ReturnType<typeof runJson> | undefined> {
  const run = await store.runs.findOne({ _id: runId });
  return run ? runJson(run, await store.tasks.find({ runId }).toArray()) : undefined;
}

/** `realpath` of each SOURCE_ROOT; a root that does not exist keeps its path (nothing lies under it anyway). */
export async function realSourceRoots(sourceRoots: string[]): Promise<string[]> {
  return Promise.all(sourceRoots.map((root) => fs.realpath(root).catch(() => root)));
}
