/**
 * The rules about changing a connection, each in one place (docs/product-rules.md; the table "Where each rule is
 * implemented" lists them with their tests). Pure: every function gets the records it judges as arguments (the caller
 * reads them, under the iModel's mapping lock where the rule reads other connections) and either returns or throws
 * the rule's {@link ApiError} with its own code. A rule some part of the service applies without throwing (a delete
 * job recording a task error) has a non-throwing form, `...Refusal`, that the assert wraps.
 */
import { ApiError, type ErrorInfo } from "./errors";
import { LIMITS } from "./limits";
import type {
  ConnectionRecord,
  DataMode,
  FileStateRecord,
  IModelRecord,
  RunRecord,
  SourceFileRecord,
  TaskRecord,
} from "./model";
import { hasInteracted, isAdmin, type TeamMemberRecord, type UserRecord } from "./users";

/** What the rules read of a connection for messages: its id and display name. */
type Named = Pick<ConnectionRecord, "_id" | "displayName">;

/** What the mapping rules read of a connection (the iModel's other active connections, the changed one included). */
export type MappedConnection = Pick<ConnectionRecord, "_id" | "displayName" | "source" | "sourceFiles">;

/** A file a connection maps (composite model) or synchronizes (reference file), by absolute and real path. */
export interface MappedFile {
  connection: MappedConnection;
  /** Absolute path as mapped (source folder + relative path). */
  path: string;
  /** The path with symbolic links resolved (the path itself when it cannot be resolved). */
  real: string;
  asReference: boolean;
}

/** What a user's rights are judged on. */
type Actor = Pick<UserRecord, "_id" | "role">;

// ---- Delete, two modes ----

/**
 * Why no sync and no change of the connection may start, or undefined when it is Active: a deleted connection (or one
 * being deleted with its data) never synchronizes again and is not changed (docs/product-rules.md "Delete, two modes").
 * @returns `{code: "ConnectionDeleted", message}` for a connection that is Deleting or Deleted.
 */
export function connectionInactiveRefusal(
  c: Named & Pick<ConnectionRecord, "status">,
): (ErrorInfo & { code: "ConnectionDeleted" }) | undefined {
  if (c.status === "Active") return undefined;
  return {
    code: "ConnectionDeleted",
    message:
      c.status === "Deleting"
        ? `Connection '${c.displayName}' (${c._id}) is being deleted with its data; it cannot be synchronized or changed.`
        : `Connection '${c.displayName}' (${c._id}) is deleted.`,
  };
}

/**
 * Refuses a connection that is not Active (docs/product-rules.md "Delete, two modes": a delete stops future syncs at
 * once, whoever asks). See {@link connectionInactiveRefusal}.
 * @throws ApiError ConnectionDeleted (409).
 */
export function assertConnectionActive(c: Named & Pick<ConnectionRecord, "status">): void {
  const refusal = connectionInactiveRefusal(c);
  if (refusal) throw new ApiError(refusal.code, refusal.message);
}

/**
 * What a delete request does to the connection in its current status (docs/product-rules.md "Delete, two modes"): an
 * Active connection is deleted; asking `deleteData` again of one being deleted with its data resumes its delete job
 * (a job that failed or was never queued; every step of it is idempotent). A Deleted connection cannot be deleted
 * again, nor can one being deleted with its data be deleted with `keepData`.
 * @returns `"delete"` or `"resume"`.
 * @throws ApiError ConnectionDeleted (409).
 */
export function assertConnectionDeletable(
  c: Named & Pick<ConnectionRecord, "status" | "deletion">,
  mode: DataMode,
): "delete" | "resume" {
  if (c.status === "Deleted") {
    throw new ApiError(
      "ConnectionDeleted",
      `Connection '${c.displayName}' (${c._id}) is already deleted${c.deletion?.mode === "keepData" ? " (its data was kept; it cannot be removed through this connection any more)" : ""}.`,
    );
  }
  if (c.status === "Deleting" && mode === "deleteData") return "resume";
  assertConnectionActive(c);
  return "delete";
}

/**
 * A run can be cancelled while it is queued or executing, but a delete job is never cancelled half way, so that no
 * file is left half removed (docs/product-rules.md "Delete, two modes").
 * @param where.queued false when the iModel's run queue no longer holds the run (it completed meanwhile).
 * @throws ApiError RunNotCancellable (409) for a delete job; RunAlreadyCompleted (409) for a run that completed.
 */
export function assertRunCancellable(
  run: Pick<RunRecord, "_id" | "kind" | "state" | "result">,
  where: { queued: boolean } = { queued: true },
): void {
  if (run.kind === "delete") {
    throw new ApiError(
      "RunNotCancellable",
      `Run '${run._id}' is a delete job; it is never stopped half way, so that no file is left half removed.`,
    );
  }
  if (run.state === "Completed")
    throw new ApiError("RunAlreadyCompleted", `Run '${run._id}' already completed with result ${run.result}.`);
  if (!where.queued)
    throw new ApiError("RunAlreadyCompleted", `Run '${run._id}' is no longer active in its iModel's queue.`);
}

// ---- Run control ----

/**
 * A run is retried once it has completed with failed files: its failed files are synchronized again, nothing else
 * (docs/product-rules.md "Run control"). A delete job is not retried this way: deleting again with its data resumes it.
 * @param tasks the run's tasks.
 * @returns the tasks that ended with result Error, in run order.
 * @throws ApiError RunNotRetryable (409) for a delete job; RunStillActive (409) while the run is queued or executing;
 *   NoFailedTasks (409) when no task of the run failed.
 */
export function assertRunRetryable<T extends Pick<TaskRecord, "result" | "index">>(
  run: Pick<RunRecord, "_id" | "kind" | "state" | "result">,
  tasks: readonly T[],
): T[] {
  if (run.kind === "delete")
    throw new ApiError(
      "RunNotRetryable",
      `Run '${run._id}' is a delete job; delete again with mode=deleteData to resume it.`,
    );
  if (run.state !== "Completed")
    throw new ApiError(
      "RunStillActive",
      `Run '${run._id}' is still ${run.state}; its failed files can be retried once it has completed.`,
    );
  const failed = tasks.filter((t) => t.result === "Error").sort((a, b) => a.index - b.index);
  if (failed.length === 0)
    throw new ApiError(
      "NoFailedTasks",
      `Run '${run._id}' has no failed file to retry (result ${run.result}); run the connection again instead.`,
    );
  return failed;
}

/**
 * The files a retry synchronizes (docs/product-rules.md "Run control"): of the failed tasks' files, those the
 * connection still maps: its composite models, and reference files a mapped composite model reaches through the
 * references recorded at each file's last parse. Their own references follow them in the run.
 * @param failed the failed tasks (see {@link assertRunRetryable}).
 * @param states the connection's file records.
 * @returns source file ids, in the failed tasks' order.
 * @throws ApiError NoFailedTasks (409) when none of the failed files is mapped any more.
 */
export function filesToRetry(
  c: Pick<ConnectionRecord, "_id" | "displayName" | "sourceFiles">,
  failed: readonly Pick<TaskRecord, "sourceFileId" | "path">[],
  states: Pick<FileStateRecord, "sourceFileId" | "references" | "unmapped">[],
): string[] {
  const composites = c.sourceFiles.filter((f) => f.role === "CompositeModel").map((f) => f.id);
  const reachable = new Set([
    ...composites,
    ...referencesReachable(
      composites,
      states.filter((s) => !s.unmapped),
    ),
  ]);
  const ids = [...new Set(failed.map((t) => t.sourceFileId))].filter((id) => reachable.has(id));
  if (ids.length === 0)
    throw new ApiError(
      "NoFailedTasks",
      `None of the files that failed (${failed.map((t) => `'${t.path}'`).join(", ")}) is mapped by connection '${c.displayName}' any more; nothing to retry.`,
    );
  return ids;
}

/**
 * The composite models a run is limited to (`POST /connections/{id}/run {"sourceFileIds": [...]}`,
 * docs/product-rules.md "Run control"): each id must be a composite model the connection maps; their reference files
 * go with them. A reference file cannot be chosen on its own, as it cannot be unmapped on its own.
 * @param states the connection's file records (to recognise its reference files).
 * @returns the ids without repeats, in the order given.
 * @throws ApiError InvalidRequest (400) with a `NotACompositeModel` detail per reference file named; SourceFileNotMapped
 *   (404) with one detail per id the connection does not map. Details target `sourceFileIds.<index>`.
 */
export function assertCompositeModelsChosen(
  c: Named & Pick<ConnectionRecord, "sourceFiles">,
  ids: readonly string[],
  states: Pick<FileStateRecord, "references" | "unmapped">[],
): string[] {
  const mapped = new Set(c.sourceFiles.filter((f) => f.role === "CompositeModel").map((f) => f.id));
  const references = new Map(
    states.filter((s) => !s.unmapped).flatMap((s) => (s.references ?? []).map((r) => [r.id, r] as const)),
  );
  const notComposite: ErrorInfo[] = [];
  const unknown: ErrorInfo[] = [];
  ids.forEach((id, i) => {
    if (mapped.has(id)) return;
    const target = `sourceFileIds.${i}`;
    const ref = references.get(id);
    if (ref)
      notComposite.push({
        code: "NotACompositeModel",
        message: `'${ref.path}' is a reference file; choose the composite model that names it`,
        target,
      });
    else unknown.push({ code: "SourceFileNotMapped", message: `connection maps no source file '${id}'`, target });
  });
  if (notComposite.length > 0)
    throw new ApiError(
      "InvalidRequest",
      "A run can be limited to composite models only (their reference files go with them); no run was started.",
      notComposite,
    );
  if (unknown.length > 0)
    throw new ApiError(
      "SourceFileNotMapped",
      `Connection '${c.displayName}' (${c._id}) does not map ${unknown.length === 1 ? "one of the files" : `${unknown.length} of the files`} named; no run was started.`,
      unknown,
    );
  return [...new Set(ids)];
}

// ---- Teams ----

/**
 * Whether the user may see an iModel, its connections and its runs: a member of its team (any role, interacted or not)
 * or an administrator (docs/product-rules.md "Teams").
 * @param membership the user's team member record of the iModel, or null/undefined when there is none.
 */
export function iModelVisible(user: Actor, membership: TeamMemberRecord | null | undefined): boolean {
  return isAdmin(user) || (membership !== null && membership !== undefined);
}

/**
 * To anyone who is neither a member of its team nor an administrator, an iModel and its connections and runs do not
 * exist: the refusal is the very error an unknown id gets, so that ids cannot be probed (docs/product-rules.md
 * "Teams").
 * @param unknown the error the caller answers for an unknown id of what was asked (e.g. IModelNotFound,
 *   ConnectionNotFound, with the same message).
 * @throws `unknown()` (404).
 */
export function assertIModelVisible(
  user: Actor,
  membership: TeamMemberRecord | null | undefined,
  unknown: () => ApiError,
): void {
  if (!iModelVisible(user, membership)) throw unknown();
}

/**
 * Only a manager of the iModel's team or an administrator adds and removes members or changes their role
 * (docs/product-rules.md "Teams").
 * @param membership the user's team member record of the iModel, or null/undefined.
 * @throws ApiError NotTeamManager (403).
 */
export function assertTeamManager(
  user: Actor,
  iModel: Pick<IModelRecord, "_id" | "name">,
  membership: Pick<TeamMemberRecord, "role"> | null | undefined,
): void {
  if (isAdmin(user) || membership?.role === "manager") return;
  throw new ApiError(
    "NotTeamManager",
    `Only a manager of the team of iModel '${iModel.name}' (${iModel._id}) or an administrator may add or remove its members.`,
  );
}

/**
 * A member who owns connections of the iModel cannot be removed from its team until each of those connections has
 * another owner: scheduled syncs run on the owner's behalf, and ownership stays inside the team
 * (docs/product-rules.md "Teams").
 * @param owned the iModel's Active connections the member owns.
 * @throws ApiError MemberOwnsConnections (409), with one detail per connection (target: its path in the API).
 */
export function assertMemberRemovable(
  member: Pick<UserRecord, "_id" | "name" | "email">,
  iModel: Pick<IModelRecord, "_id" | "name">,
  owned: readonly Named[],
): void {
  if (owned.length === 0) return;
  throw new ApiError(
    "MemberOwnsConnections",
    `${member.name} <${member.email}> owns ${owned.length} connection(s) of iModel '${iModel.name}'; give each of them another owner first (POST /connections/{id}/owner), then remove the member.`,
    owned.map((c) => ({
      code: "MemberOwnsConnections",
      message: `owns connection '${c.displayName}'`,
      target: `/connections/${c._id}`,
    })),
  );
}

// ---- Owner and token ----

/**
 * Only the connection's owner or an administrator may change it (its schedule, name, mapping, or delete it): scheduled
 * syncs run on the owner's behalf, with the owner's rights (docs/product-rules.md "Owner and token").
 * @param what what the user tried, for the message (e.g. "change its schedule").
 * @throws ApiError NotConnectionOwner (403).
 */
export function assertConnectionOwner(
  user: Actor,
  c: Pick<ConnectionRecord, "displayName" | "ownerId" | "owner">,
  what: string,
): void {
  if (isAdmin(user) || (c.ownerId !== undefined && c.ownerId === user._id)) return;
  throw new ApiError(
    "NotConnectionOwner",
    `Only the owner of connection '${c.displayName}'${c.owner ? ` (${c.owner.email})` : ""} or an administrator may ${what}: scheduled syncs run on the owner's behalf.`,
  );
}

/**
 * Who may change a connection's owner (docs/product-rules.md "Owner and token"): its owner or an administrator may
 * give it to someone; a team member may take it for themselves (`newOwner` is the user asking). Whether the new owner
 * may own it at all is {@link assertOwnerIsTeamMember}.
 * @throws ApiError OwnershipChangeForbidden (403).
 */
export function assertOwnershipChangeAllowed(
  user: Actor,
  c: Pick<ConnectionRecord, "displayName" | "ownerId">,
  newOwner: Pick<UserRecord, "_id">,
): void {
  if (isAdmin(user) || (c.ownerId !== undefined && c.ownerId === user._id) || newOwner._id === user._id) return;
  throw new ApiError(
    "OwnershipChangeForbidden",
    `Only the owner of connection '${c.displayName}' (or an administrator) may give it to someone else; a team member may take it for themselves.`,
  );
}

/**
 * The new owner must be a member of the iModel's team who has interacted with the iModel since being added
 * (docs/product-rules.md "Owner and token", "Teams"). A user taking a connection is judged on their membership as it
 * was before that very request (the request itself does not count as their interaction).
 * @param membership the new owner's team member record of the iModel, or null/undefined when there is none.
 * @throws ApiError NotATeamMember (409) when they are not a member; TeamMemberNeverInteracted (409) when they are a
 *   member who has made no request on the iModel since being added. Both with a detail targeting `userId`.
 */
export function assertOwnerIsTeamMember(
  c: Pick<ConnectionRecord, "iModelId">,
  newOwner: Pick<UserRecord, "name" | "email">,
  membership: Pick<TeamMemberRecord, "firstInteractionDateTime"> | null | undefined,
): void {
  if (!membership) {
    throw new ApiError(
      "NotATeamMember",
      `${newOwner.name} <${newOwner.email}> is not a member of the team of iModel '${c.iModelId}'; ownership can go only to a team member who has interacted with the iModel.`,
      [{ code: "NotATeamMember", message: "not a team member of the iModel", target: "userId" }],
    );
  }
  if (hasInteracted(membership)) return;
  throw new ApiError(
    "TeamMemberNeverInteracted",
    `${newOwner.name} <${newOwner.email}> has not interacted with iModel '${c.iModelId}' since being added to its team; ownership can go only to a team member who has.`,
    [{ code: "TeamMemberNeverInteracted", message: "has not interacted with the iModel", target: "userId" }],
  );
}

/**
 * Ownership cannot change while a synchronization of the connection is in progress (docs/product-rules.md "Owner and
 * token").
 * @param activeRunId the connection's queued or executing run, as the iModel's run queue answers, or undefined.
 * @throws ApiError RunInProgress (409), with a detail targeting the run.
 */
export function assertNoRunInProgress(c: Named, activeRunId: string | undefined): void {
  if (!activeRunId) return;
  throw new ApiError(
    "RunInProgress",
    `Connection '${c.displayName}' has a run in progress (${activeRunId}); ownership cannot change until it completes.`,
    [{ code: "RunInProgress", message: "run in progress", target: `/connections/${c._id}/runs/${activeRunId}` }],
  );
}

// ---- Change mapping ----

/**
 * The composite model `fileId` names, to unmap. A reference file cannot be unmapped on its own, only together with its
 * composite model (docs/product-rules.md "Change mapping": reference files go with their composite model).
 * @param states the connection's file records (their `references` tell which composite models name `fileId`).
 * @returns the connection's source file with that id.
 * @throws ApiError ReferenceFileNotUnmappable (409) when `fileId` is a reference file of one of the connection's
 *   mapped composite models; SourceFileNotMapped (404) when the connection maps no such file.
 */
export function assertReferenceNotUnmappedAlone(
  c: Named & Pick<ConnectionRecord, "sourceFiles">,
  fileId: string,
  states: Pick<FileStateRecord, "path" | "references" | "unmapped">[],
): SourceFileRecord {
  const file = c.sourceFiles.find((f) => f.id === fileId);
  if (file) return file;
  const parents = states.filter((s) => !s.unmapped && (s.references ?? []).some((r) => r.id === fileId));
  if (parents.length > 0) {
    const ref = parents[0].references!.find((r) => r.id === fileId)!;
    const names = parents.map((p) => `'${p.path}'`).join(", ");
    throw new ApiError(
      "ReferenceFileNotUnmappable",
      `'${ref.path}' is a reference file of composite model ${names}; a reference file cannot be unmapped on its own. Change the composite model (remove the reference from it, or unmap the composite model with its references).`,
    );
  }
  throw new ApiError(
    "SourceFileNotMapped",
    `Connection '${c.displayName}' (${c._id}) maps no source file '${fileId}'.`,
  );
}

/**
 * Removing every file means deleting the connection: its last composite model cannot be unmapped
 * (docs/product-rules.md "Change mapping").
 * @param file the composite model to unmap.
 * @throws ApiError LastCompositeModel (409).
 */
export function assertNotLastCompositeModel(
  c: Named & Pick<ConnectionRecord, "sourceFiles">,
  file: Pick<SourceFileRecord, "path">,
): void {
  if (c.sourceFiles.filter((f) => f.role === "CompositeModel").length > 1) return;
  throw new ApiError(
    "LastCompositeModel",
    `'${file.path}' is the last composite model of connection '${c.displayName}'; removing every file means deleting the connection (DELETE /connections/${c._id}?mode=keepData|deleteData).`,
  );
}

/**
 * The reference files reachable from `fromIds` through the resolved references recorded at each file's last parse,
 * to any depth (nested references), in breadth-first order, without `fromIds` themselves.
 */
export function referencesReachable(
  fromIds: string[],
  states: Pick<FileStateRecord, "sourceFileId" | "references">[],
): string[] {
  const refsOf = new Map(states.map((s) => [s.sourceFileId, s.references ?? []]));
  const seen = new Set(fromIds);
  const out: string[] = [];
  const queue = [...fromIds];
  while (queue.length > 0) {
    for (const r of refsOf.get(queue.shift()!) ?? []) {
      if (!r.resolved || seen.has(r.id)) continue;
      seen.add(r.id);
      out.push(r.id);
      queue.push(r.id);
    }
  }
  return out;
}

/**
 * The files that go with a composite model when it is unmapped: itself and the resolved references found under it at
 * the last parse of each file, to any depth (nested references), except those another remaining composite model
 * reaches too (they stay mapped through it) and those that are composite models themselves (docs/product-rules.md
 * "Change mapping": reference files go with their composite model).
 * @param states the connection's file records.
 * @returns source file ids, the composite model's first, without duplicates.
 */
export function filesGoingWith(
  connection: Pick<ConnectionRecord, "sourceFiles">,
  compositeId: string,
  states: Pick<FileStateRecord, "sourceFileId" | "references">[],
): string[] {
  const composites = new Set(connection.sourceFiles.map((f) => f.id));
  const remaining = connection.sourceFiles.filter((f) => f.role === "CompositeModel" && f.id !== compositeId);
  // Through the remaining composites only: a path through the unmapped composite does not keep a file mapped.
  const others = states.filter((s) => s.sourceFileId !== compositeId);
  const kept = new Set(
    referencesReachable(
      remaining.map((f) => f.id),
      others,
    ),
  );
  const refs = referencesReachable([compositeId], states).filter((id) => !kept.has(id) && !composites.has(id));
  return [compositeId, ...refs];
}

// ---- GCS-defining connection ----

/**
 * Whether the connection defines the iModel's geographic coordinate system: the iModel names it, or the connection
 * says so (docs/product-rules.md "GCS-defining connection").
 */
export function definesIModelGcs(
  iModel: Pick<IModelRecord, "gcs">,
  c: Pick<ConnectionRecord, "_id"> & Partial<Pick<ConnectionRecord, "definesGcs">>,
): boolean {
  return iModel.gcs?.connectionId === c._id || c.definesGcs === true;
}

/**
 * When an iModel has more than one connection, the connection that defines its geographic coordinate system cannot be
 * deleted; with a single connection it can (docs/product-rules.md "GCS-defining connection").
 * @param otherActiveConnections how many Active connections the iModel has besides `c`.
 * @throws ApiError GcsDefiningConnection (409).
 */
export function assertGcsConnectionDeletable(
  c: Pick<ConnectionRecord, "_id" | "displayName" | "definesGcs">,
  iModel: Pick<IModelRecord, "name" | "gcs">,
  otherActiveConnections: number,
): void {
  if (otherActiveConnections === 0 || !definesIModelGcs(iModel, c)) return;
  throw new ApiError(
    "GcsDefiningConnection",
    `Connection '${c.displayName}' defines the geographic coordinate system of iModel '${iModel.name}', which has ${otherActiveConnections} other connection(s); it can be deleted only once it is the iModel's last connection.`,
  );
}

/**
 * Why the files `sourceFileIds` of a connection cannot be unmapped, or undefined when they can: the file that defined
 * the iModel's geographic coordinate system cannot be unmapped once synchronized, and a delete job of unmapped files
 * never removes it (docs/product-rules.md "GCS-defining connection").
 * @param composite the composite model being unmapped (a delete job passes the file of its task).
 * @param sourceFileIds the files unmapped with it (see {@link filesGoingWith}).
 * @returns `{code: "GcsDefiningFile", message, target}` (target: the GCS-defining file's path), or undefined.
 */
export function gcsFileUnmapRefusal(
  iModel: Pick<IModelRecord, "name" | "gcs">,
  connectionId: string,
  composite: Pick<SourceFileRecord, "id" | "path">,
  sourceFileIds: readonly string[],
): (ErrorInfo & { code: "GcsDefiningFile" }) | undefined {
  const gcs = iModel.gcs;
  if (gcs?.connectionId !== connectionId || !sourceFileIds.includes(gcs.sourceFileId)) return undefined;
  const through = gcs.sourceFileId === composite.id ? "" : ` (through its reference file '${gcs.path}')`;
  return {
    code: "GcsDefiningFile",
    message: `'${composite.path}'${through} defined the geographic coordinate system of iModel '${iModel.name}' and cannot be unmapped once synchronized.`,
    target: gcs.path,
  };
}

/**
 * Refuses to unmap the file that defined the iModel's geographic coordinate system (see {@link gcsFileUnmapRefusal};
 * docs/product-rules.md "GCS-defining connection").
 * @throws ApiError GcsDefiningFile (409).
 */
export function assertGcsFileNotUnmapped(
  iModel: Pick<IModelRecord, "name" | "gcs">,
  connectionId: string,
  composite: Pick<SourceFileRecord, "id" | "path">,
  sourceFileIds: readonly string[],
): void {
  const refusal = gcsFileUnmapRefusal(iModel, connectionId, composite, sourceFileIds);
  if (refusal) throw new ApiError(refusal.code, refusal.message);
}

// ---- Limits ----

/**
 * At most 100 connections per iModel and 250 composite models per iModel across its connections
 * (docs/product-rules.md "Limits").
 * @param connections the iModel's Active connections (the changed one included when composite models are added to it).
 * @param adding what the change adds: new connections (0 or 1) and new composite models.
 * @throws ApiError MaxConnectionsPerIModelReached (409); MaxCompositeModelsPerIModelReached (409).
 */
export function assertWithinLimits(
  iModelId: string,
  connections: Pick<ConnectionRecord, "sourceFiles">[],
  adding: { connections: number; compositeModels: number },
): void {
  if (adding.connections > 0 && connections.length + adding.connections > LIMITS.connectionsPerIModel) {
    throw new ApiError(
      "MaxConnectionsPerIModelReached",
      `iModel '${iModelId}' already has ${LIMITS.connectionsPerIModel} connections, the most allowed.`,
    );
  }
  const composites = connections.reduce(
    (n, c) => n + c.sourceFiles.filter((f) => f.role === "CompositeModel").length,
    0,
  );
  if (composites + adding.compositeModels > LIMITS.compositeModelsPerIModel) {
    throw new ApiError(
      "MaxCompositeModelsPerIModelReached",
      `iModel '${iModelId}' would have ${composites + adding.compositeModels} composite models; at most ${LIMITS.compositeModelsPerIModel} are allowed across its connections.`,
    );
  }
}

/**
 * A file is mapped by at most one connection of an iModel, as a composite model or as a reference file that connection
 * synchronizes (docs/product-rules.md "Limits"). Files are compared by path as mapped and by real path (the caller
 * resolves both), so an alias through a symbolic link is refused too.
 * @param adding the files to map, under their absolute path as mapped and under their real path, each with the request
 *   field naming it (the error detail's target).
 * @param mapped what the iModel's active connections map (lib/mapping.ts `mappedFiles`).
 * @param changing the connection the files are added to, if any (its own files are "already mapped by this connection").
 * @throws ApiError SourceFileAlreadyMapped (409), with a detail targeting the refused file.
 */
export function assertFileNotAlreadyMapped(
  adding: ReadonlyMap<string, { file: Pick<SourceFileRecord, "path">; target: string }>,
  mapped: readonly MappedFile[],
  changing?: string,
): void {
  for (const theirs of mapped) {
    const mine = adding.get(theirs.path) ?? adding.get(theirs.real);
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
