/**
 * Loading records by id for the API, with the 404 every route answers for an unknown id, and for an id the caller may
 * not see: an iModel, its connections and its runs exist only for the members of its team and administrators
 * (docs/product-rules.md "Teams"), and to anyone else the answer is the one an unknown id gets, word for word.
 */
import * as fs from "node:fs/promises";
import { assertIModelVisible, iModelVisible } from "../domain/connection-rules";
import { ApiError } from "../domain/errors";
import { fileStateId, type ConnectionRecord, type FileStateRecord, type IModelRecord } from "../domain/model";
import { isAdmin, teamMemberId, type TeamMemberRecord, type UserRecord } from "../domain/users";
import type { PeopleCollections } from "../lib/collections";
import type { Store } from "../lib/db";
import { readRunTasks, type CompletedTasks } from "../lib/run-tasks";
import { memberIModelIds } from "../lib/teams";
import { runJson } from "./representations";

/**
 * Who is asking, and what they may see: the authenticated user and their team memberships, each read at most once per
 * request (one `_id` lookup). `api/auth.ts` creates one per request.
 */
export class Viewer {
  private readonly memberships = new Map<string, Promise<TeamMemberRecord | null>>();

  constructor(
    readonly user: UserRecord,
    private readonly people: PeopleCollections,
  ) {}

  /**
   * The user's team member record of the iModel, or null, as it was when first read in this request. The iModel the
   * request is about is read before this request's interaction is recorded (see `authenticate`), so a member's
   * `firstInteractionDateTime` here tells whether they had interacted before this request.
   */
  membership(iModelId: string): Promise<TeamMemberRecord | null> {
    let m = this.memberships.get(iModelId);
    if (!m) {
      m = this.people.teamMembers.findOne({ _id: teamMemberId(iModelId, this.user._id) });
      this.memberships.set(iModelId, m);
    }
    return m;
  }

  /** Whether the user may see the iModel (a member of its team or an administrator). */
  async canSee(iModelId: string): Promise<boolean> {
    return isAdmin(this.user) || iModelVisible(this.user, await this.membership(iModelId));
  }

  /**
   * The filter on `iModelId` (or `_id` of iModels) that keeps a list to what the user may see: none for an
   * administrator, the iModels of their teams otherwise.
   */
  async visibleIModels(): Promise<{ $in: string[] } | undefined> {
    if (isAdmin(this.user)) return undefined;
    return { $in: await memberIModelIds(this.people, this.user._id) };
  }
}

/** The answer to an unknown iModel id (and to one the caller may not see). */
export const iModelNotFound = (id: string) => new ApiError("IModelNotFound", `iModel '${id}' does not exist.`);

/** The answer to an unknown connection id (and to one the caller may not see). */
export const connectionNotFound = (id: string) =>
  new ApiError("ConnectionNotFound", `Connection '${id}' does not exist.`);

/**
 * The iModel with this id, if `viewer` may see it.
 * @throws ApiError IModelNotFound (404) when there is none or `viewer` may not see it (the same answer).
 */
export async function loadIModel(store: Store, id: string, viewer: Viewer): Promise<IModelRecord> {
  const m = await store.imodels.findOne({ _id: id });
  if (!m) throw iModelNotFound(id);
  assertIModelVisible(viewer.user, isAdmin(viewer.user) ? null : await viewer.membership(m._id), () =>
    iModelNotFound(id),
  );
  return m;
}

/**
 * The connection with this id, whatever its status, if `viewer` may see its iModel.
 * @throws ApiError ConnectionNotFound (404) when there is none or `viewer` may not see it (the same answer).
 */
export async function loadConnection(store: Store, id: string, viewer: Viewer): Promise<ConnectionRecord> {
  const c = await store.connections.findOne({ _id: id });
  if (!c) throw connectionNotFound(id);
  assertIModelVisible(viewer.user, isAdmin(viewer.user) ? null : await viewer.membership(c.iModelId), () =>
    connectionNotFound(id),
  );
  return c;
}

/** A run with its tasks as the API shows it (see `runJson`), or undefined when there is no such run record yet. */
export async function runWithTasks(
  store: Store,
  runId: string,
  cache?: CompletedTasks,
): Promise<ReturnType<typeof runJson> | undefined> {
  const run = await store.runs.findOne({ _id: runId });
  return run ? runJson(run, await readRunTasks(store, run, cache)) : undefined;
}

/** How long (ms) an answer waits for the record of a run the iModel's run queue has accepted. */
export const RUN_RECORD_WAIT_MS = 20_000;

/**
 * The run the iModel's run queue answered with, with its tasks, for the answer's body. The queue claims a new run before
 * its record is written, so a concurrent request answered with that run (`created: false`) can get here first: this
 * waits for the record (polling its `_id`, 5 ms growing to 100 ms apart).
 * @param waitMs longest wait, in ms.
 * @throws ApiError DependencyUnavailable (503) when the record is not written within `waitMs`.
 */
export async function recordedRun(
  store: Store,
  runId: string,
  waitMs = RUN_RECORD_WAIT_MS,
): Promise<NonNullable<Awaited<ReturnType<typeof runWithTasks>>>> {
  const deadline = Date.now() + waitMs;
  for (let pause = 5; ; pause = Math.min(100, pause * 2)) {
    const run = await runWithTasks(store, runId);
    if (run) return run;
    if (Date.now() >= deadline)
      throw new ApiError(
        "DependencyUnavailable",
        `Run '${runId}' was accepted but its record was not written within ${Math.round(waitMs / 1000)} s; read it later (GET its Location) or try again.`,
      );
    await new Promise((r) => setTimeout(r, pause));
  }
}

/** `realpath` of each SOURCE_ROOT; a root that does not exist keeps its path (nothing lies under it anyway). */
export async function realSourceRoots(sourceRoots: string[]): Promise<string[]> {
  return Promise.all(sourceRoots.map((root) => fs.realpath(root).catch(() => root)));
}

/**
 * The file records a connection's representation needs (`connectionJson`): those of its composite models and, level by
 * level, of the reference files they name (nested references), each read by `_id` (FerretDB serves only those from an
 * index: docs/architecture.md "Queries FerretDB serves by _id").
 */
export async function fileStatesOf(
  store: Pick<Store, "fileStates">,
  c: Pick<ConnectionRecord, "_id" | "sourceFiles">,
): Promise<FileStateRecord[]> {
  const found = new Map<string, FileStateRecord>();
  let ids = [...new Set(c.sourceFiles.map((f) => f.id))];
  while (ids.length > 0) {
    const records = await Promise.all(ids.map((id) => store.fileStates.findOne({ _id: fileStateId(c._id, id) })));
    const next = new Set<string>();
    for (const r of records) {
      if (!r || found.has(r.sourceFileId)) continue;
      found.set(r.sourceFileId, r);
      for (const ref of r.references ?? []) if (ref.resolved && !ref.circular) next.add(ref.id);
    }
    ids = [...next].filter((id) => !found.has(id));
  }
  return [...found.values()];
}
