/**
 * The contract between connectors (parsers of design files) and the iModel writer.
 * Coordinates are in metres, in the file's own engineering coordinate system (the iModel's spatial coordinates).
 */

/** A non-fatal problem found while reading or writing a file; reported on the file's task. */
export interface TaskWarning {
  /** Stable machine-readable code, e.g. `GeometryProblem`, `DuplicateIdentifier`. */
  code: string;
  /** Human-readable text naming what was affected. */
  message: string;
  /** What the warning is about (an element identifier, an entity type, a file path), when known. */
  target?: string;
  /** How many times the same problem occurred, when it was deduplicated (absent means once). */
  count?: number;
}

/** One triangle mesh of an element, in world coordinates (metres). */
export interface SourceMesh {
  /** x,y,z triples, world coordinates in metres. */
  positions: Float64Array;
  /** Triangle corner indices into `positions` (3 per triangle, zero-based). */
  indices: Uint32Array;
  /** RGBA colour, each 0..1, when the source gives one. */
  color?: [number, number, number, number];
}

/** One element read from a source file. */
export interface SourceElement {
  /** Provenance identifier, unique within the file (IFC GlobalId, DXF entity handle). Stored in ExternalSourceAspect.Identifier. */
  identifier: string;
  /** Source class, e.g. `IfcBeam`. Becomes the element's category. */
  className: string;
  /** Display name from the source, if any (becomes UserLabel). */
  name?: string;
  /** Placement origin in world coordinates (metres). */
  origin: [number, number, number];
  /** Meshes in world coordinates; empty for placement-only elements. */
  meshes: SourceMesh[];
  /** Hex digest of everything the writer stores for this element; equal checksum means unchanged. */
  checksum: string;
  /** Extra source properties kept on the element (JSON-serialisable). */
  properties?: Record<string, unknown>;
}

/** What a connector returns for one file. */
export interface ParsedFile {
  /** Source schema or version, e.g. `IFC2X3`. */
  schema: string;
  elements: SourceElement[];
  warnings: TaskWarning[];
}

/** Thrown by connectors when a file cannot be read at all; the task fails with this code. */
export class SourceFileError extends Error {
  constructor(
    /** `FileNotFound`, `FileUnreadable`, `InvalidFileFormat`. */
    public readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "SourceFileError";
  }
}
