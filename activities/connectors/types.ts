/**
 * The contract between connectors (parsers of design files) and the iModel writer.
 * Coordinates are in metres, in the file's own engineering coordinate system (the iModel's spatial coordinates).
 */
import type { ConnectorType, NotWrittenItems } from "../../domain/model";

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
  /** A few of the occurrences (element identifiers, parser messages), when the warning sums several up. */
  examples?: string[];
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

/** RGBA colour, each component 0..1. */
export type RgbaColor = [number, number, number, number];

/**
 * One curve of an element, in world coordinates (metres), for geometry that is not a surface (DXF lines, polylines,
 * arcs, circles, points). Surfaces are {@link SourceMesh}es.
 * - `linestring`: `points` holds x,y,z triples (world metres). One point (3 numbers) is a point marker (DXF POINT);
 *   two or more form a polyline. `closed: true` means the last point connects back to the first, which is NOT
 *   repeated at the end.
 * - `arc`: a circular arc of `radius` (metres) around `center` (world metres) in the plane through `center` with unit
 *   `normal`. Angles are radians measured counter-clockwise around `normal` from the plane's x axis, which is the
 *   x axis of the DXF arbitrary axis algorithm for `normal` (for normal 0,0,1 it is world x; in iTwin.js terms the
 *   x column of `Matrix3d.createRigidHeadsUp(normal)`). `sweepAngle` is positive (counter-clockwise); a full circle
 *   has `sweepAngle` 2π.
 */
export type SourceCurve =
  | {
      kind: "linestring";
      /** x,y,z triples, world coordinates in metres. */
      points: Float64Array;
      /** The last point connects back to the first (which is not repeated). */
      closed?: boolean;
      color?: RgbaColor;
    }
  | {
      kind: "arc";
      /** World coordinates, metres. */
      center: [number, number, number];
      /** Metres. */
      radius: number;
      /** Radians, counter-clockwise around `normal` from the plane's x axis (arbitrary axis algorithm). */
      startAngle: number;
      /** Radians, > 0 (counter-clockwise around `normal`); 2π for a full circle. */
      sweepAngle: number;
      /** Unit normal of the arc's plane (world). */
      normal: [number, number, number];
      color?: RgbaColor;
    };

/** One element read from a source file. */
export interface SourceElement {
  /** Provenance identifier, unique within the file (IFC GlobalId, DXF entity handle). Stored in ExternalSourceAspect.Identifier. */
  identifier: string;
  /** Source class, e.g. `IfcBeam`, `LINE`. Becomes the element's category unless `category` is given. */
  className: string;
  /**
   * Category code value; defaults to className. It must be a valid iModel category name: none of
   * `< > \ / . " ? * | , ' = &`, tab or line breaks, not empty. (DXF: the entity's layer name, those characters as `_`.)
   */
  category?: string;
  /** Display name from the source, if any (becomes UserLabel). */
  name?: string;
  /** Placement origin in world coordinates (metres). */
  origin: [number, number, number];
  /** Meshes in world coordinates; empty for placement-only elements. */
  meshes: SourceMesh[];
  /** Curves (lines, polylines, arcs, points) in world coordinates (metres); absent or empty when none. */
  curves?: SourceCurve[];
  /**
   * Hex digest of everything the writer stores for this element (`elementChecksum` of `checksum.ts`, over the element
   * without it); equal checksum means unchanged.
   */
  checksum: string;
  /** Extra source properties kept on the element (JSON-serialisable). */
  properties?: Record<string, unknown>;
}

/**
 * A reference file a composite model names (e.g. a DXF XREF). `path` is as the source file wrote it; the run resolves
 * it against the composite's folder and the source.
 */
export interface DiscoveredReference {
  /** The path exactly as written in the file (may use `\`, be relative or absolute). */
  path: string;
  /** How the composite uses it (DXF: `Attach` or `Overlay`). */
  attachment: "Attach" | "Overlay";
  /** Name of the block or link inside the composite that refers to it, for messages. */
  name?: string;
}

/**
 * The georeference a file carries, in one of two forms (docs/facts.md "iTwin.js": georeferencing must work offline).
 * - `projected`: a projected CRS (EPSG code, e.g. 25832) plus the map conversion from the file's engineering
 *   coordinates (metres) to that CRS: eastings/northings/orthogonal height of the engineering origin, and the rotation
 *   of the engineering x axis (radians, counter-clockwise from grid east) and scale.
 * - `geographic`: a geographic point (WGS84 degrees, ellipsoid height in metres) for the engineering origin, with an
 *   optional true-north rotation (radians, counter-clockwise from engineering y to north).
 */
export type Georeference =
  | {
      kind: "projected";
      epsg: number;
      /** Name of the CRS as the file writes it, for messages. */
      crsName?: string;
      eastings: number;
      northings: number;
      orthogonalHeight: number;
      /** Radians. */
      rotation: number;
      scale: number;
      /** Where in the file it came from, e.g. `IfcMapConversion #123`, `DXF GEODATA`. */
      origin: string;
    }
  | {
      kind: "geographic";
      latitude: number;
      longitude: number;
      height: number;
      /** Radians. */
      trueNorth?: number;
      origin: string;
    };

/** What a connector returns for one file. */
export interface ParsedFile {
  /** Source schema or version, e.g. `IFC2X3`. */
  schema: string;
  /**
   * The connector that read the file. The writer needs it for iModels written before checksum version 2: their
   * aspects hold that connector's earlier checksum (docs/architecture.md "Element checksums"). Without it, such
   * elements are rewritten as updated.
   */
  connectorType?: ConnectorType;
  elements: SourceElement[];
  warnings: TaskWarning[];
  /** Reference files the file names (composite models only). */
  references?: DiscoveredReference[];
  /** The file's georeference, when it carries one. */
  georeference?: Georeference;
  /**
   * The items the connector read (README "Synchronization": what an item is per format) and those it did not turn
   * into elements, by reason: `read` = `elements.length` + the sum of `notWritten[].count`.
   */
  items: { read: number; notWritten: NotWrittenItems[] };
  /**
   * Identifiers of items that are elements but could not be converted this time (e.g. geometry web-ifc could not
   * mesh): the writer leaves their elements in the iModel as they are, neither updated nor deleted.
   */
  keep?: string[];
}

/** Thrown by connectors when a file cannot be read at all; the task fails with this code. */
export class SourceFileError extends Error {
  constructor(
    /** `FileNotFound`, `FileUnreadable`, `InvalidFileFormat`, `FileIncomplete`. */
    public readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "SourceFileError";
  }
}
