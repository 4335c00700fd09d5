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
  /**
   * What the element is in the iModel: `physical` (default; `Generic:PhysicalObject`) or one of the spatial structure
   * classes of the project's schema (`Site`, `Facility`, `FacilityPart`, `Space`: `ImodelSync:<kind>`, spatial
   * location elements; docs/architecture.md "Content: properties, spatial structure, types, materials").
   */
  kind?: ElementKind;
  /**
   * Identifier of the spatial structure element that holds this one: for a physical element the one that contains it
   * (IFC `IfcRelContainedInSpatialStructure`), for a spatial element its aggregating parent (`IfcRelAggregates`).
   */
  container?: string;
  /** Identifier of the element's type definition ({@link SourceDefinition} of kind `type`). */
  type?: string;
  /** The materials the element uses, in source order. */
  materials?: MaterialUse[];
  /** Property values and quantities, queryable as `ImodelSync.PropertyValue` aspects; in a canonical order. */
  propertyValues?: PropertyValue[];
}

/** Spatial and physical element kinds (see {@link SourceElement.kind}). */
export type ElementKind = "physical" | "Site" | "Facility" | "FacilityPart" | "Space";

/**
 * One property value or quantity of an element or a definition (an `ImodelSync.PropertyValue` aspect). Numbers are in
 * the iModel's units: metres, square metres, cubic metres, kilograms, seconds, radians (`unit` names them); other
 * measures keep the source's unit, named in `unit` when the source names one.
 */
export interface PropertyValue {
  /** Property set or quantity set name (`Pset_WallCommon`, `Qto_WallBaseQuantities`); DXF: see the DXF connector. */
  set: string;
  /** `PropertySet`, `QuantitySet`; DXF: `Attributes`, `XData`, `Drawing`. */
  setKind: string;
  /** `Own` (the element's or definition's own) or `Type` (an element's, inherited from its type). */
  source: "Own" | "Type";
  /** Property or quantity name. */
  name: string;
  /**
   * `Single`, `Enumerated`, `Bounded`, `List`, `Table` (property values); `Length`, `Area`, `Volume`, `Count`,
   * `Weight`, `Time` (quantities); DXF `Text`, `Number`.
   */
  valueKind: string;
  /** Position of the item in a list, enumeration or table (0-based); absent for single values. */
  item?: number;
  /** The value as text (numbers in the stored unit, booleans `true`/`false`); absent when the value is empty. */
  text?: string;
  /** The numeric value in `unit`; absent for text, booleans and empty values. */
  number?: number;
  /** Unit of `number` (and of `lower`/`upper`): `m`, `m²`, `m³`, `kg`, `s`, `rad`, or the source's unit name. */
  unit?: string;
  /** Bounded values: lower and upper bound. */
  lower?: number;
  upper?: number;
  /** Table values: the defining value of the row (as text). */
  defining?: string;
}

/** How an element uses a material. */
export interface MaterialUse {
  /** Identifier of the material ({@link SourceDefinition} of kind `material`). */
  material: string;
  /** `Material` (single), `Layer`, `Profile`, `Constituent`, `List`. */
  usage: string;
  /** Position in the layer, profile, constituent or material list (0-based). */
  position: number;
  /** Layer thickness in metres. */
  thickness?: number;
  /** Name of the layer, profile or constituent. */
  partName?: string;
  /** Category of the layer, profile or constituent (`LoadBearing`, …). */
  category?: string;
  /** Constituent fraction (0..1). */
  fraction?: number;
  /** Name of the layer, profile or constituent set. */
  setName?: string;
}

/**
 * A definition read from a source file: an element type (IFC `IfcTypeObject`: `Generic:PhysicalType`) or a material
 * (IFC `IfcMaterial`: `ImodelSync:Material`), written in the file's definition model and referenced by elements.
 */
export interface SourceDefinition {
  /** Provenance identifier, unique within the file among definitions (type GlobalId; `Material:<name>`). */
  identifier: string;
  kind: "type" | "material";
  /** Source class (`IfcWallType`, `IfcMaterial`). */
  className: string;
  name?: string;
  /** Extra source properties (JSON-serialisable). */
  properties?: Record<string, unknown>;
  propertyValues?: PropertyValue[];
  /** Types: the materials of the type. */
  materials?: MaterialUse[];
  /** `definitionChecksum` of `checksum.ts`. */
  checksum: string;
}

/**
 * Counts of the property values (or the relationships) a connector read for the elements it returns and of those it
 * could not turn into iModel data, by reason: `read` = written + the sum of `notWritten[].count` (the writer adds the
 * written count and its own reasons).
 */
export interface ReadTally {
  read: number;
  notWritten: NotWrittenItems[];
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
  items: {
    read: number;
    notWritten: NotWrittenItems[];
    /** Property values and quantities of the elements and definitions returned. */
    properties?: ReadTally;
    /** Relationships of the elements returned: containment and aggregation, type, material uses. */
    relationships?: ReadTally;
  };
  /** Types and materials the elements refer to (IFC), written in the file's definition model. */
  definitions?: SourceDefinition[];
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
