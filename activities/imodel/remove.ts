/**
 * Removal of what the iModel writer (./writer) put into an iModel, for `deleteData`: removes every element, model,
 * aspect and RepositoryLink that came from a connection's files, and nothing else. SpatialCategories (dictionary model)
 * are shared by every file and connection and are never removed; the root Subject and other connections' Subjects,
 * links, models and elements are never touched.
 *
 * Layout removed (see the writer's module comment), per connection and source file:
 * - the `RepositoryLink` (repository model, code value `${connectionId}/${sourceFileId}`) with its ExternalSourceAspect
 *   Kind "DocumentWithBeGuid", and the `ExternalSource`(s) whose Repository is that link;
 * - the `PhysicalPartition` + `PhysicalModel` of the file (child of the connection's Subject, code value = file path),
 *   with its ExternalSourceAspect Kind "Model" (Scope = the link), and the `DefinitionPartition` + `DefinitionModel`
 *   of its types and materials (ExternalSourceAspect Kind "Model", identifier `${sourceFileId}#definitions`);
 * - the elements with an ExternalSourceAspect Kind "Element" scoped to the link (`Generic:PhysicalObject`s and the
 *   spatial structure elements of `ImodelSync`, children of their aggregating spatial element), with their
 *   `ImodelSync:PropertyValue` aspects; their link-table relationships (containment, material uses, deleted by
 *   core-backend with either end) go with them;
 * and, once no file of the connection is left, the connection's `Subject` (child of the root Subject, code value =
 * connectionId).
 *
 * How core-backend 5.7.3 deletes (lib/cjs/IModelDb.js `Models.deleteModel` / `Elements.deleteElement` only forward to
 * the native library; behaviour below checked against that library, and the bottom-up order is the one of
 * lib/cjs/ElementTreeWalker.js `ElementTreeDeleter`: elements of a model, then the model, then its modeled element):
 * - `deleteElement(id)` deletes the element's aspects (ElementOwnsMultiAspects / ElementOwnsUniqueAspect are
 *   embedding) and its child elements; passing a child after its parent throws ("missing id");
 * - `deleteModel(id)` deletes the model and every element still in it, but not its modeled element (the partition);
 * - `deleteElement(partition)` throws while the partition still has its sub-model, and `deleteElement(subject)` throws
 *   while the Subject has such a partition as child: the model must be deleted first;
 * - deleting a RepositoryLink does not delete the ExternalSource pointing at it, and deleting an ExternalSource does
 *   not delete aspects whose Source points at it (both leave dangling ids): elements go first, then ExternalSources,
 *   then the link.
 *
 * Georeference: core-backend keeps the EcefLocation in the file property `dgn_Db`/`Units` (JSON member
 * `ecefLocation`) and the geographic coordinate system in `dgn_Db`/`DgnGCS`; `IModel.isGeoLocated` is
 * `ecefLocation !== undefined`, filled at open from the stored location (or computed from a stored GCS).
 * `updateIModelProps()` cannot unset it: the native side only applies `ecefLocation` / `geographicCoordinateSystem`
 * when they are present and rewrites the location it holds. So clearing rewrites `Units` without `ecefLocation` and
 * deletes `DgnGCS` with the public file-property API (as iTwin.js' own editor backend does for the GCS), in the same
 * transaction as the rest, after any project-extents update (which would write the old location back).
 *
 * Every function runs under the writer's per-path lock (never overlaps a write to the same .bim in the process) and
 * writes through the writer's `writableInLock` (the .bim opened read-write, or kept open from the last write). A change is one
 * transaction: one `saveChanges` at the end; on any error `abandonChanges()` and the error is rethrown, so the iModel
 * never holds half a removal.
 */
import * as fs from "node:fs";
import {
  DefinitionModel,
  ExternalSource,
  ExternalSourceAspect,
  InformationPartitionElement,
  LinkElement,
  StandaloneDb,
  Subject,
} from "@itwin/core-backend";
import { type Id64String, OpenMode } from "@itwin/core-bentley";
import { type FilePropertyProps, IModel, type RepositoryLinkProps } from "@itwin/core-common";
import { queryRows, requireHost, withPathLock, writableInLock } from "./writer";

/** One source file of a connection with data in the iModel. */
export interface SourceFileInIModel {
  /** Stable id of the file within the connection (the part of the RepositoryLink code value after `${connectionId}/`). */
  sourceFileId: string;
  /** The file path as last written (RepositoryLink Url). */
  path: string;
}

/** What {@link removeSourceFileData} needs. */
export interface RemoveSourceFileInput {
  /** Absolute path of the iModel (.bim, StandaloneDb). Not created when missing. */
  bimPath: string;
  connectionId: string;
  sourceFileId: string;
  /** Id of the run, recorded in the transaction description. */
  runId: string;
}

/** Outcome of {@link removeSourceFileData}. */
export interface RemoveSourceFileResult {
  /**
   * False when the file had no RepositoryLink in the iModel (or the .bim does not exist) and no removal of it by the
   * same run is recorded: nothing was written.
   */
  found: boolean;
  /**
   * True when the data had already been removed by an earlier attempt of the same run: the counts are the ones that
   * attempt recorded in the iModel with its removal (see {@link removalRecordOf}); nothing was written now.
   */
  replayed?: boolean;
  /** The file path recorded in the iModel (RepositoryLink Url), when found. */
  path?: string;
  /** Elements removed from the file's physical model (source elements, spatial structure elements and anything else
   * left in it), plus elements of the file found by provenance outside it; definitions (types, materials), partitions,
   * the link and the ExternalSource are not counted. */
  elementsDeleted: number;
  /** Models removed: the file's PhysicalModel and, when it has types or materials, its DefinitionModel. */
  modelsDeleted: number;
  /** Types and materials removed with the file's definition model (absent when nothing was removed). */
  definitionsDeleted?: number;
}

/** What {@link removeConnectionSubject} needs. */
export interface RemoveConnectionSubjectInput {
  /** Absolute path of the iModel (.bim, StandaloneDb). Not created when missing. */
  bimPath: string;
  connectionId: string;
  /** Also remove the iModel's EcefLocation and geographic coordinate system, so it is no longer geolocated. */
  clearGeoreference?: boolean;
}

/** Thrown by {@link removeConnectionSubject} while source files of the connection still have data in the iModel. */
export class ConnectionFilesRemainError extends Error {
  constructor(
    public readonly connectionId: string,
    public readonly files: SourceFileInIModel[],
  ) {
    super(
      `connection ${connectionId}: ${files.length} source file(s) still have data in the iModel ` +
        `(${files.map((f) => `${f.path} [${f.sourceFileId}]`).join(", ")}); remove their data before the connection's Subject`,
    );
    this.name = "ConnectionFilesRemainError";
  }
}

/**
 * The record of a file's removal, kept in the iModel as a file property written in the removal's own transaction
 * (namespace `imodelSync`, name `removed/<connectionId>/<sourceFileId>`, JSON {@link RemovalRecord}): an attempt that
 * crashed after the commit but before its task was recorded leaves it, and the retry reports its counts.
 */
export function removalRecordOf(connectionId: string, sourceFileId: string): FilePropertyProps {
  return { namespace: "imodelSync", name: `removed/${connectionId}/${sourceFileId}` };
}

/** What {@link removalRecordOf} holds: the run that removed the file, what it removed, and when (ISO 8601 UTC). */
export interface RemovalRecord {
  runId: string;
  path: string;
  elementsDeleted: number;
  modelsDeleted: number;
  definitionsDeleted?: number;
  dateTime: string;
}

const KIND_DOCUMENT = "DocumentWithBeGuid";
const KIND_MODEL = "Model";
const KIND_ELEMENT = ExternalSourceAspect.Kind.Element;
const UNITS_PROPERTY: FilePropertyProps = { namespace: "dgn_Db", name: "Units" };
const GCS_PROPERTY: FilePropertyProps = { namespace: "dgn_Db", name: "DgnGCS" };

// ---------------------------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------------------------

/**
 * Runs `work` on the .bim opened read-write, under the writer's per-path lock; `missing` is returned (and nothing is
 * created) when the file does not exist. On error the open transaction is abandoned and the error rethrown; the db is
 * closed, or kept open for the next write (writer.ts `keepIModelsOpen`).
 */
async function withOpenDb<T>(bimPath: string, missing: T, work: (db: StandaloneDb) => Promise<T>): Promise<T> {
  requireHost();
  return withPathLock(bimPath, async () => {
    if (!fs.existsSync(bimPath)) return missing;
    return writableInLock(bimPath, work);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Finding a connection's data
// ---------------------------------------------------------------------------------------------------------

function subjectIdOf(db: StandaloneDb, connectionId: string): Id64String | undefined {
  return db.elements.queryElementIdByCode(Subject.createCode(db, IModel.rootSubjectId, connectionId));
}

/** Scope ids of the link's "DocumentWithBeGuid" aspects (the writer scopes them to the connection's Subject). */
async function documentScopes(db: StandaloneDb, linkId: Id64String): Promise<Id64String[]> {
  const rows = await queryRows(db, "SELECT Scope.Id FROM BisCore.ExternalSourceAspect WHERE Element.Id=? AND Kind=?", [
    linkId,
    KIND_DOCUMENT,
  ]);
  return rows.map((r) => r[0] as Id64String);
}

/**
 * A link belongs to the connection when its code value is `${connectionId}/${sourceFileId}` and its provenance (if
 * any) is scoped to the connection's Subject; the second test keeps apart connections whose ids prefix each other
 * across a "/" (e.g. "a" + file "b/c" and "a/b" + file "c").
 */
async function belongsToConnection(
  db: StandaloneDb,
  linkId: Id64String,
  subjectId: Id64String | undefined,
): Promise<boolean> {
  const scopes = await documentScopes(db, linkId);
  return scopes.length === 0 || scopes.some((s) => s === subjectId);
}

async function findLink(
  db: StandaloneDb,
  connectionId: string,
  sourceFileId: string,
  subjectId: Id64String | undefined,
): Promise<Id64String | undefined> {
  const linkId = db.elements.queryElementIdByCode(
    LinkElement.createCode(db, IModel.repositoryModelId, `${connectionId}/${sourceFileId}`),
  );
  if (!linkId) return undefined;
  return (await belongsToConnection(db, linkId, subjectId)) ? linkId : undefined;
}

async function sourceFilesOf(
  db: StandaloneDb,
  connectionId: string,
): Promise<(SourceFileInIModel & { linkId: Id64String })[]> {
  const subjectId = subjectIdOf(db, connectionId);
  const prefix = `${connectionId}/`;
  const rows = await queryRows(
    db,
    "SELECT ECInstanceId, CodeValue, Url FROM BisCore.RepositoryLink WHERE Model.Id=? ORDER BY CodeValue",
    [IModel.repositoryModelId],
  );
  const files: (SourceFileInIModel & { linkId: Id64String })[] = [];
  for (const [linkId, codeValue, url] of rows as [Id64String, string | undefined, string | undefined][]) {
    if (!codeValue || !codeValue.startsWith(prefix) || codeValue.length === prefix.length) continue;
    if (!(await belongsToConnection(db, linkId, subjectId))) continue;
    const sourceFileId = codeValue.slice(prefix.length);
    files.push({ linkId, sourceFileId, path: url ?? sourceFileId });
  }
  return files;
}

/** Project extents = range of what is left (the writer's rule); the default extents when nothing is left. */
function recomputeProjectExtents(db: StandaloneDb): void {
  const { extents } = db.computeProjectExtents();
  if (!extents.isNull && !extents.isAlmostEqual(db.projectExtents)) db.updateProjectExtents(extents);
}

/** Deletes an element bottom-up: its sub-model's elements and the sub-model, its children, then itself. */
async function deleteElementTree(
  db: StandaloneDb,
  elementId: Id64String,
  counts: { elements: number; models: number },
): Promise<void> {
  if (db.models.tryGetModelProps(elementId)) {
    const top = await queryRows(db, "SELECT ECInstanceId FROM bis.Element WHERE Model.Id=? AND Parent.Id IS NULL", [
      elementId,
    ]);
    for (const [id] of top as [Id64String][]) await deleteElementTree(db, id, counts);
    counts.elements += countElementsIn(
      await queryRows(db, "SELECT count(*) FROM bis.Element WHERE Model.Id=?", [elementId]),
    );
    db.models.deleteModel(elementId); // also deletes elements still in it (children whose parent is elsewhere)
    counts.models++;
  }
  for (const child of db.elements.queryChildren(elementId)) await deleteElementTree(db, child, counts);
  counts.elements++;
  db.elements.deleteElement(elementId);
}

function hasAncestorIn(db: StandaloneDb, elementId: Id64String, ids: Set<Id64String>): boolean {
  for (
    let parent = db.elements.queryParent(elementId);
    parent !== undefined;
    parent = db.elements.queryParent(parent)
  ) {
    if (ids.has(parent)) return true;
  }
  return false;
}

function countElementsIn(rows: unknown[][]): number {
  return Number(rows[0]?.[0] ?? 0);
}

// ---------------------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------------------

/**
 * The source files of a connection that have data in the iModel: one per RepositoryLink of the connection (code value
 * `${connectionId}/${sourceFileId}`, path = its Url), ordered by code value. This is what `deleteData` has to remove
 * before {@link removeConnectionSubject} can succeed.
 *
 * Read only (nothing is saved). Empty when the .bim file does not exist (it is not created).
 * @throws Error when the host is not started; IModelError from core-backend (e.g. the file is locked by another process).
 */
export async function listSourceFilesInIModel(
  bimPath: string,
  connectionId: string,
): Promise<{ sourceFileId: string; path: string }[]> {
  return withOpenDb(bimPath, [], async (db) =>
    (await sourceFilesOf(db, connectionId)).map(({ sourceFileId, path }) => ({ sourceFileId, path })),
  );
}

/**
 * Removes everything one source file of a connection put into the iModel, in ONE transaction (one `saveChanges`; on
 * error `abandonChanges()` and the error is rethrown, so the iModel never holds half a removal), serving the rule
 * "deleteData removes every element, model, aspect and RepositoryLink that came from that connection's files, and
 * nothing else":
 * 1. the file's elements, found by their ExternalSourceAspect Kind "Element" scoped to the file's RepositoryLink (their
 *    aspects and child elements go with them);
 * 2. its PhysicalPartition(s), found by the Kind "Model" aspect scoped to the link, else by partition code (code value
 *    = the link's Url) under the connection's Subject unless another link's Kind "Model" aspect claims it: any element
 *    still left in its PhysicalModel, the model, then the partition (with its aspect);
 * 3. the ExternalSource(s) whose Repository is the link; 4. the RepositoryLink (with its "DocumentWithBeGuid" aspect).
 * The project extents are then recomputed from what is left. SpatialCategories, the connection's Subject and other
 * files' data are not touched.
 *
 * The counts are recorded in the same transaction (file property {@link removalRecordOf}, with `runId`), so that they
 * are never lost to a crash between this commit and the task's record.
 *
 * Idempotent: a file without RepositoryLink returns, when the same `runId` removed it (a retried attempt), the recorded
 * counts with `replayed: true`; otherwise (removed by another run, or never synchronized) `found: false`. Either way
 * nothing is written; a missing .bim file is not created.
 * @returns `{ found, replayed?, path (the link's Url), elementsDeleted, modelsDeleted }` (see
 *   {@link RemoveSourceFileResult}).
 * @throws Error when the host is not started; IModelError / core-backend errors from opening or deleting (the
 *   transaction is then abandoned).
 */
export async function removeSourceFileData(input: RemoveSourceFileInput): Promise<RemoveSourceFileResult> {
  const none: RemoveSourceFileResult = { found: false, elementsDeleted: 0, modelsDeleted: 0 };
  return withOpenDb(input.bimPath, none, async (db) => {
    const subjectId = subjectIdOf(db, input.connectionId);
    const linkId = await findLink(db, input.connectionId, input.sourceFileId, subjectId);
    if (!linkId) {
      const recorded = db.queryFilePropertyString(removalRecordOf(input.connectionId, input.sourceFileId));
      const record = recorded ? (JSON.parse(recorded) as RemovalRecord) : undefined;
      if (record?.runId !== input.runId) return none;
      const { path, elementsDeleted, modelsDeleted, definitionsDeleted } = record;
      return {
        found: true,
        replayed: true,
        path,
        elementsDeleted,
        modelsDeleted,
        ...(definitionsDeleted !== undefined ? { definitionsDeleted } : {}),
      };
    }
    const plan = await planFileRemoval(db, linkId, subjectId, input.sourceFileId);
    const { filePath, partitions, models, elementsDeleted, definitionsDeleted } = plan;

    // 1. elements (an element with an ancestor that is deleted too goes with it: deleting it again would throw).
    if (plan.topLevel.length > 0) db.elements.deleteElement(plan.topLevel);

    // 2. what is left in the model(s), the model(s), the partition(s).
    let modelsDeleted = 0;
    for (const modelId of models) {
      const left = await queryRows(db, "SELECT ECInstanceId FROM bis.Element WHERE Model.Id=? AND Parent.Id IS NULL", [
        modelId,
      ]);
      if (left.length > 0) db.elements.deleteElement(left.map(([id]) => id as Id64String));
      db.models.deleteModel(modelId);
      modelsDeleted++;
    }
    for (const partitionId of partitions) db.elements.deleteElement(partitionId);

    // 3. ExternalSource(s) of the link, 4. the link.
    if (plan.sources.length > 0) db.elements.deleteElement(plan.sources);
    db.elements.deleteElement(linkId);

    recomputeProjectExtents(db);
    const record: RemovalRecord = {
      runId: input.runId,
      path: filePath,
      elementsDeleted,
      modelsDeleted,
      definitionsDeleted,
      dateTime: new Date().toISOString(),
    };
    db.saveFileProperty(removalRecordOf(input.connectionId, input.sourceFileId), JSON.stringify(record));
    db.saveChanges(
      `imodel-sync run ${input.runId}: remove ${filePath} (-${elementsDeleted} elements, -${modelsDeleted} models)`,
    );
    return { found: true, path: filePath, elementsDeleted, modelsDeleted, definitionsDeleted };
  });
}

/** What removing one file's data takes (see {@link removeSourceFileData}); found without writing anything. */
interface FileRemovalPlan {
  filePath: string;
  /** The file's PhysicalPartitions (by provenance, else by code). */
  partitions: Set<Id64String>;
  /** The partitions' models that exist. */
  models: Id64String[];
  /** The file's elements found by provenance: id, parent, model. */
  elementRows: [Id64String, Id64String | undefined, Id64String][];
  /** Those without an ancestor among them (deleting these deletes the others). */
  topLevel: Id64String[];
  /**
   * Elements in the models (but the definition model's) plus the file's elements outside them: the count its delete
   * task reports.
   */
  elementsDeleted: number;
  /** Types and materials in the file's definition model. */
  definitionsDeleted: number;
  /** The ExternalSources whose Repository is the link. */
  sources: Id64String[];
}

/** Finds what removing the data of the file whose RepositoryLink is `linkId` removes; reads only. */
async function planFileRemoval(
  db: StandaloneDb,
  linkId: Id64String,
  subjectId: Id64String | undefined,
  sourceFileId: string,
): Promise<FileRemovalPlan> {
  const link = db.elements.getElementProps<RepositoryLinkProps>(linkId);
  const filePath = link.url ?? link.code.value ?? sourceFileId;

  // The file's partition(s): by provenance, else by code under the connection's Subject.
  const partitions = new Set<Id64String>();
  for (const [id] of (await queryRows(
    db,
    "SELECT Element.Id FROM BisCore.ExternalSourceAspect WHERE Scope.Id=? AND Kind=?",
    [linkId, KIND_MODEL],
  )) as [Id64String][]) {
    partitions.add(id);
  }
  if (partitions.size === 0 && subjectId) {
    const byCode = db.elements.queryElementIdByCode(InformationPartitionElement.createCode(db, subjectId, filePath));
    if (byCode) {
      const claims = await queryRows(
        db,
        "SELECT Scope.Id FROM BisCore.ExternalSourceAspect WHERE Element.Id=? AND Kind=?",
        [byCode, KIND_MODEL],
      );
      if (claims.every(([scope]) => scope === linkId)) partitions.add(byCode);
    }
  }
  const models = [...partitions].filter((id) => db.models.tryGetModelProps(id) !== undefined);

  // The file's elements, by provenance.
  const elementRows = (await queryRows(
    db,
    `SELECT a.Element.Id, e.Parent.Id, e.Model.Id FROM BisCore.ExternalSourceAspect a JOIN bis.Element e ON e.ECInstanceId=a.Element.Id
        WHERE a.Scope.Id=? AND a.Kind=? ORDER BY a.Element.Id`,
    [linkId, KIND_ELEMENT],
  )) as [Id64String, Id64String | undefined, Id64String][];
  const elementIds = new Set(elementRows.map(([id]) => id));
  const modelSet = new Set(models);

  let elementsDeleted = 0;
  let definitionsDeleted = 0;
  for (const modelId of models) {
    const n = countElementsIn(await queryRows(db, "SELECT count(*) FROM bis.Element WHERE Model.Id=?", [modelId]));
    if (db.models.getModelProps(modelId).classFullName === DefinitionModel.classFullName) definitionsDeleted += n;
    else elementsDeleted += n;
  }
  elementsDeleted += elementRows.filter(([, , modelId]) => !modelSet.has(modelId)).length;
  const topLevel = elementRows
    .filter(([id, parentId]) => !parentId || !hasAncestorIn(db, id, elementIds))
    .map(([id]) => id);
  const sources = [...db.queryEntityIds({ from: ExternalSource.classFullName, where: `Repository.Id=${linkId}` })];
  return { filePath, partitions, models, elementRows, topLevel, elementsDeleted, definitionsDeleted, sources };
}

/**
 * Removes the connection's Subject once no RepositoryLink of the connection is left, together with anything else left
 * under it (empty partitions and their models; elements still in such a model, being the connection's data, go with
 * it), in ONE transaction (one `saveChanges`; on error `abandonChanges()` and the error is rethrown). Serves the rule
 * "deleteData removes every element, model, aspect and RepositoryLink that came from that connection's files, and
 * nothing else": SpatialCategories, the root Subject and other connections' data are not touched.
 *
 * With `clearGeoreference: true` the iModel's EcefLocation (file property `dgn_Db`/`Units`, member `ecefLocation`) and
 * geographic coordinate system (`dgn_Db`/`DgnGCS`), if any, are removed in the same transaction, so that the iModel is
 * no longer geolocated (`isGeoLocated` false after reopening). This happens whether or not the Subject still exists.
 *
 * Idempotent: returns `found: false` when the connection has no Subject (or the .bim does not exist; it is not
 * created); nothing is written when there is nothing to remove.
 * @returns `{ found }`: whether the connection's Subject was there (and has been removed).
 * @throws ConnectionFilesRemainError (an Error naming the files) while source files of the connection still have data
 *   in the iModel (remove them with {@link removeSourceFileData} first), so that no data is ever orphaned; nothing is
 *   written then. Error when the host is not started; core-backend errors from opening or deleting.
 */
export async function removeConnectionSubject(input: RemoveConnectionSubjectInput): Promise<{ found: boolean }> {
  return withOpenDb(input.bimPath, { found: false }, async (db) => {
    const remaining = await sourceFilesOf(db, input.connectionId);
    if (remaining.length > 0)
      throw new ConnectionFilesRemainError(
        input.connectionId,
        remaining.map(({ sourceFileId, path }) => ({ sourceFileId, path })),
      );

    const subjectId = subjectIdOf(db, input.connectionId);
    const counts = { elements: 0, models: 0 };
    if (subjectId) {
      await deleteElementTree(db, subjectId, counts);
      recomputeProjectExtents(db); // before clearing the georeference: updating the extents writes the held location back
    }
    const georeferenceCleared = input.clearGeoreference === true && clearGeoreference(db);
    if (subjectId || georeferenceCleared) {
      const what = [
        subjectId ? `Subject and ${counts.elements - 1} element(s) under it, ${counts.models} model(s)` : "",
        georeferenceCleared ? "georeference" : "",
      ];
      db.saveChanges(`imodel-sync: remove connection ${input.connectionId}: ${what.filter(Boolean).join("; ")}`);
    }
    return { found: subjectId !== undefined };
  });
}

/**
 * Removes the stored EcefLocation and GCS inside the open transaction; true when something was removed. Must come after
 * any `updateProjectExtents` / `updateIModelProps` of the transaction (they save the location core-backend holds).
 */
function clearGeoreference(db: StandaloneDb): boolean {
  let changed = false;
  if (
    db.geographicCoordinateSystem !== undefined ||
    db.queryFilePropertyBlob(GCS_PROPERTY) !== undefined ||
    db.queryFilePropertyString(GCS_PROPERTY) !== undefined
  ) {
    db.deleteFileProperty(GCS_PROPERTY);
    db.geographicCoordinateSystem = undefined;
    changed = true;
  }
  const units = db.queryFilePropertyString(UNITS_PROPERTY);
  if (units !== undefined) {
    const json = JSON.parse(units) as Record<string, unknown>;
    if (json.ecefLocation !== undefined) {
      delete json.ecefLocation;
      db.saveFileProperty(UNITS_PROPERTY, JSON.stringify(json));
      changed = true;
    }
  }
  db.ecefLocation = undefined; // the open session agrees with the stored state
  return changed;
}

// ---------------------------------------------------------------------------------------------------------
// Preview (dry run)
// ---------------------------------------------------------------------------------------------------------

/**
 * What removing data takes away from the iModel, counted in the iModel itself. `elements`: the file's elements, the
 * number its delete task reports (`elements.deleted`); `models`: its PhysicalModels and `partitions` their
 * PhysicalPartitions; `links`: its RepositoryLinks; `externalSources`: the ExternalSources of those links; `aspects`:
 * every aspect (ElementMultiAspect and ElementUniqueAspect) of everything removed. Rows removed from `bis.Element`:
 * elements + partitions + links + externalSources.
 */
export interface RemovalCounts {
  /** The file's elements (the delete task's `elements.deleted`). */
  elements: number;
  /** Its types and materials (its definition model's elements). */
  definitions: number;
  models: number;
  partitions: number;
  aspects: number;
  links: number;
  externalSources: number;
}

/** What {@link previewRemoval} finds. */
export interface RemovalPreview {
  /** False when the .bim does not exist (nothing to remove). */
  bimExists: boolean;
  /** One per file asked for (or per file of the connection with data in the iModel), in that order. */
  files: (RemovalCounts & { sourceFileId: string; path?: string; found: boolean })[];
  /**
   * Whole-connection previews: the connection's Subject and what is left under it once its files are removed
   * (`elements` counts the Subject itself); absent otherwise.
   */
  subject?: { found: boolean; elements: number; models: number; aspects: number };
}

const ZERO_REMOVAL: RemovalCounts = {
  elements: 0,
  definitions: 0,
  models: 0,
  partitions: 0,
  aspects: 0,
  links: 0,
  externalSources: 0,
};

/** Aspects (multi and unique) per element id, for the whole iModel. */
async function aspectsPerElement(db: StandaloneDb): Promise<Map<Id64String, number>> {
  const counts = new Map<Id64String, number>();
  for (const cls of ["bis.ElementMultiAspect", "bis.ElementUniqueAspect"])
    for (const [id, n] of (await queryRows(db, `SELECT Element.Id, count(*) FROM ${cls} GROUP BY Element.Id`, [])) as [
      Id64String,
      number,
    ][])
      counts.set(id, (counts.get(id) ?? 0) + Number(n));
  return counts;
}

/**
 * Counts, read only, what {@link removeSourceFileData} (for `sourceFileIds`) or a whole delete job (every file of the
 * connection with data in the iModel, then {@link removeConnectionSubject}; `sourceFileIds` undefined) would remove:
 * the same planning as the removal itself, so the counts are what the removal then reports. Opens the .bim read-only
 * under the writer's per-path lock, so it counts a committed state between two file transactions of this process.
 * @throws Error when the host is not started; core-backend errors from opening or querying.
 */
export async function previewRemoval(input: {
  bimPath: string;
  connectionId: string;
  /** The files whose data would be removed (an unmap); absent: the whole connection. */
  sourceFileIds?: string[];
}): Promise<RemovalPreview> {
  requireHost();
  return withPathLock(input.bimPath, async () => {
    const empty = (ids: string[]): RemovalPreview => ({
      bimExists: false,
      files: ids.map((sourceFileId) => ({ sourceFileId, found: false, ...ZERO_REMOVAL })),
      ...(input.sourceFileIds ? {} : { subject: { found: false, elements: 0, models: 0, aspects: 0 } }),
    });
    if (!fs.existsSync(input.bimPath)) return empty(input.sourceFileIds ?? []);
    const db = StandaloneDb.openFile(input.bimPath, OpenMode.Readonly);
    try {
      const subjectId = subjectIdOf(db, input.connectionId);
      const aspects = await aspectsPerElement(db);
      const aspectsOf = (ids: Iterable<Id64String>) => {
        let n = 0;
        for (const id of ids) n += aspects.get(id) ?? 0;
        return n;
      };
      const targets: { sourceFileId: string; linkId?: Id64String }[] = input.sourceFileIds
        ? await Promise.all(
            input.sourceFileIds.map(async (sourceFileId) => ({
              sourceFileId,
              linkId: await findLink(db, input.connectionId, sourceFileId, subjectId),
            })),
          )
        : await sourceFilesOf(db, input.connectionId);
      const claimedPartitions = new Set<Id64String>();
      const files: RemovalPreview["files"] = [];
      for (const { sourceFileId, linkId } of targets) {
        if (!linkId) {
          files.push({ sourceFileId, found: false, ...ZERO_REMOVAL });
          continue;
        }
        const plan = await planFileRemoval(db, linkId, subjectId, sourceFileId);
        const removed = new Set<Id64String>([linkId, ...plan.partitions, ...plan.sources]);
        for (const [id] of plan.elementRows) removed.add(id);
        for (const modelId of plan.models)
          for (const [id] of (await queryRows(db, "SELECT ECInstanceId FROM bis.Element WHERE Model.Id=?", [
            modelId,
          ])) as [Id64String][])
            removed.add(id);
        for (const p of plan.partitions) claimedPartitions.add(p);
        files.push({
          sourceFileId,
          path: plan.filePath,
          found: true,
          elements: plan.elementsDeleted,
          definitions: plan.definitionsDeleted,
          models: plan.models.length,
          partitions: plan.partitions.size,
          aspects: aspectsOf(removed),
          links: 1,
          externalSources: plan.sources.length,
        });
      }
      if (input.sourceFileIds) return { bimExists: true, files };
      // The Subject with what is left under it once the files' partitions are gone (as removeConnectionSubject walks).
      const subject = { found: subjectId !== undefined, elements: 0, models: 0, aspects: 0 };
      if (subjectId) {
        const ids = new Set<Id64String>();
        const walk = async (elementId: Id64String): Promise<void> => {
          if (claimedPartitions.has(elementId)) return;
          if (db.models.tryGetModelProps(elementId)) {
            for (const [id] of (await queryRows(db, "SELECT ECInstanceId FROM bis.Element WHERE Model.Id=?", [
              elementId,
            ])) as [Id64String][])
              ids.add(id);
            subject.models++;
          }
          for (const child of db.elements.queryChildren(elementId)) await walk(child);
          ids.add(elementId);
        };
        await walk(subjectId);
        subject.elements = ids.size;
        subject.aspects = aspectsOf(ids);
      }
      return { bimExists: true, files, subject };
    } finally {
      db.close();
    }
  });
}
