/**
 * What the codes of tasks mean, in a sentence each, shown next to the API's own message (README.md "Synchronization"
 * and "Codes of tasks"). A code without an entry is shown with its message only.
 */

/** Task errors (`error.code`, result Error) and task reasons (`reason.code`). */
const TASK_CODES: Record<string, string> = {
  FileNotFound: "The file is missing from the source folder. Its data already in the iModel is kept.",
  FileUnreadable: "The file could not be opened or is not a regular file. Its data already in the iModel is kept.",
  FileOutsideSourceRoots:
    "The file leads (through a symbolic link) outside the folders the service may read. Its data in the iModel is kept.",
  InvalidFileFormat: "The file is not in the format its connector reads. Its data already in the iModel is kept.",
  FileIncomplete:
    "The file is incomplete, as a file still being written by a CAD application or a copy looks. Nothing was written and nothing deleted; the next complete version synchronizes normally.",
  FileChangedDuringRead:
    "The file changed while it was read (a CAD application or a copy is still writing it), so it was not synchronized. It is read again after a pause.",
  InsufficientStorage:
    "There is no space left to write the iModel. The file is tried again with growing pauses and resumes by itself once space is freed.",
  AttemptFailed:
    "An attempt failed because a service was unavailable (the database, the iModel, a worker). The file is tried again after a pause; nothing of it was written.",
  DeletionGuard:
    "The deletion guard held the file: writing it would delete a large share of its elements. Nothing of the file was written.",
  ConnectorFailed: "The connector failed on this file. Its data already in the iModel is kept.",
  TaskFailed: "The file's retries ran out (for example, a service was unavailable for minutes). Run again later.",
  InvalidElementData: "An element could not be stored (from an earlier release; now a not-written reason).",
  FileUnchanged:
    "The file has not changed since its last synchronization, which the iModel holds: it was not read again.",
  SourceFileUnmapped: "The file was unmapped during the run, so the run did not write it.",
  ConnectionDeleted: "The connection was deleted during the run.",
};

/** Why items of a file were not written (`items.notWritten[].code`). */
const NOT_WRITTEN_CODES: Record<string, string> = {
  UnsupportedEntityType: "a class the file's declared schema or the reader does not handle",
  SpatialStructureElement: "site, building, storey: spatial containers, not elements",
  OpeningElement: "openings and other voids",
  MissingIdentifier: "no identifier (GlobalId)",
  DuplicateIdentifier: "an identifier used again (the first is written)",
  GeometryNotConverted: "a body that could not be converted; the element already in the iModel is kept as it was",
  NoGeometryOrPlacement: "neither geometry nor placement; the element already in the iModel is kept as it was",
  PlacementNotResolved: "a placement naming data the file lacks; the element already in the iModel is kept as it was",
  PaperSpace: "paper-space entities",
  ExternalReference: "inserts of reference files: the referenced file is synchronized as its own model",
  InvalidGeometry: "no usable coordinates",
  NotDecoded: "records the reader gave no entity for",
  InvalidElementData: "element data that cannot be stored (non-finite coordinates, bad mesh or curve)",
};

/** Warnings (`warnings[].code`) whose code alone does not say what happened. */
const WARNING_CODES: Record<string, string> = {
  CircularReference: "A reference closes a cycle; it was not followed again.",
  UnresolvedReference: "A reference file was not found; the message names the paths looked for.",
  UnsupportedReferenceFormat: "A reference file no connector reads.",
  ReferenceMappedByAnotherConnection: "A reference file another connection of the iModel synchronizes.",
  NestedOverlayIgnored: "An overlay named by a reference file: overlays are followed only from the composite model.",
  UnsupportedEntityType: "Items of a class that was not converted.",
  UnsupportedEntity: "Entities of a type that is not imported.",
  GeometryProblem: "The geometry reader reported problems.",
  GeometryNotConverted: "Bodies that could not be converted.",
};

/** A task error's or reason's meaning, or undefined. */
export const taskCodeText = (code: string): string | undefined => TASK_CODES[code];

/** A not-written reason's meaning, or undefined. */
export const notWrittenText = (code: string): string | undefined => NOT_WRITTEN_CODES[code];

/** A warning code's meaning, or undefined. */
export const warningText = (code: string): string | undefined => WARNING_CODES[code];

/** Task states in words ("WaitingToRetry" → "Waiting to retry"). */
export function stateText(state: string): string {
  return state.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/ [A-Z]/g, (m) => m.toLowerCase());
}

/**
 * The counts of a `DeletionGuard` task error, read from its message
 * (`<file>: writing it would delete 15 of the 20 elements it has in the iModel (75 %); ...`), or undefined when the
 * message does not give them.
 */
export function heldCounts(message: string): { deleted: number; existing: number; share: string } | undefined {
  const m = /would delete (\d+) of the (\d+) elements it has in the iModel \(([\d.,]+ ?%)\)/.exec(message);
  return m ? { deleted: Number(m[1]), existing: Number(m[2]), share: m[3] } : undefined;
}
