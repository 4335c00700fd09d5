/**
 * The DXF connector's entry: reads an ASCII DXF file (R12 … R2018) with dxf-parser and returns the elements of the
 * connector contract (`ParsedFile`), in metres, in the drawing's world coordinate system (WCS, Z up) scaled by
 * `$INSUNITS`.
 *
 * dxf-parser decodes the entities it knows; a light scan of the raw group codes (`raw-scan.ts`, same file text, same
 * record order) supplies what it drops or never reads. Everything runs synchronously after the file has been read;
 * dxf-parser's console output is captured as warnings (`ReaderMessage`), never printed.
 */
import * as path from "node:path";
import DxfParser from "dxf-parser";
import type { IDxf, IInsertEntity } from "dxf-parser";
import { elementChecksum } from "../checksum";
import { legacyDxfChecksum } from "../legacy-checksums";
import { captureOutput, CapturedMessages } from "../common/console-capture";
import { errorText, readSourceFile } from "../common/source-file";
import { NotWrittenTally } from "../common/items";
import { listed, plural } from "../common/warnings";
import {
  type DiscoveredReference,
  type ParsedFile,
  type SourceElement,
  SourceFileError,
  type TaskWarning,
} from "../types";
import { DxfReader } from "./entities";
import { MAPPED_TYPES, PARSER_TYPES, SUB_RECORDS, XREF_FLAGS } from "./entity-types";
import { readGeodata } from "./geodata";
import { firstGroup, type RawScan, scanGroups } from "./raw-scan";
import { decodeDxfBytes } from "./text";

/** Metres per drawing unit for $INSUNITS codes (AutoCAD UnitsValue); 0 (unitless) is taken as metres. */
const INSUNITS_METRES: Record<number, number> = {
  0: 1,
  1: 0.0254,
  2: 0.3048,
  3: 1609.344,
  4: 0.001,
  5: 0.01,
  6: 1,
  7: 1000,
  8: 2.54e-8,
  9: 2.54e-5,
  10: 0.9144,
  11: 1e-10,
  12: 1e-9,
  13: 1e-6,
  14: 0.1,
  15: 10,
  16: 100,
  17: 1e9,
  18: 1.495978707e11,
  19: 9.4607304725808e15,
  20: 3.0856775814913672e16,
  21: 1200 / 3937,
  22: 100 / 3937,
  23: 3600 / 3937,
  24: 6336000 / 3937,
};

const RELEASES: Record<string, string> = {
  AC1006: "R10",
  AC1009: "R12",
  AC1012: "R13",
  AC1014: "R14",
  AC1015: "R2000",
  AC1018: "R2004",
  AC1021: "R2007",
  AC1024: "R2010",
  AC1027: "R2013",
  AC1032: "R2018",
};

const BINARY_DXF_SENTINEL = "AutoCAD Binary DXF";

function releaseOf(version: string | undefined): string {
  if (!version) return "DXF";
  const release = RELEASES[version];
  return release ? `DXF ${release} (${version})` : `DXF (${version})`;
}

/** Reasons a buffer is not a readable ASCII DXF, checked before dxf-parser runs. */
function precheck(buf: Buffer): string | undefined {
  if (buf.length === 0) return "the file is empty";
  if (buf.subarray(0, BINARY_DXF_SENTINEL.length).toString("latin1") === BINARY_DXF_SENTINEL) {
    return "binary DXF is not supported; save it as ASCII DXF";
  }
  const head = buf.subarray(0, Math.min(buf.length, 4096));
  if (head.includes(0)) return "the file is binary (it contains NUL bytes)";
  return undefined;
}

/**
 * Parses the bytes of an ASCII DXF file (R12 … R2018) into connector elements; see {@link parseDxf} for what is read.
 * The bytes are decoded once; the completeness check, the raw scan and dxf-parser read that text.
 * @param fileName the file's name, for messages.
 * @throws SourceFileError `InvalidFileFormat` ("<file name>: not a readable DXF file (<reason>)") when it is empty,
 *   binary DXF, not DXF group codes (its first line, or any line of a file that ends with its
 *   `0 EOF` marker), or dxf-parser throws on it; `FileIncomplete` ("<file name>: the file is incomplete (<what is
 *   missing, where>); ...") when a section has no `0 ENDSEC`, the `0 EOF` marker is missing or the file ends inside
 *   a group: a file without its EOF marker is cut off, whatever its last line holds, white space only included (see
 *   `scanGroups`).
 */
export function parseDxfBytes(buf: Buffer, fileName: string): ParsedFile {
  const invalid = (reason: string) =>
    new SourceFileError("InvalidFileFormat", `${fileName}: not a readable DXF file (${reason})`);
  const pre = precheck(buf);
  if (pre) throw invalid(pre);
  const text = decodeDxfBytes(buf);
  let raw: RawScan;
  try {
    raw = scanGroups(text.split(/\r\n|\r|\n/)); // the line array is garbage before dxf-parser splits its own
  } catch (e) {
    throw invalid(errorText(e));
  }
  // Completeness first (README "Synchronization": an incomplete file never deletes data).
  if (raw.incomplete.length > 0) {
    throw new SourceFileError(
      "FileIncomplete",
      `${fileName}: the file is incomplete (${raw.incomplete.join("; ")}); it may still be being written. Nothing was written; its data in the iModel is kept`,
    );
  }
  const earlyWarnings: TaskWarning[] = [];

  const messages = new CapturedMessages();
  let dxf: IDxf;
  try {
    const parsed = captureOutput(messages.sink, () => new DxfParser().parseSync(text));
    if (!parsed) throw new Error("no result");
    dxf = parsed;
  } catch (e) {
    throw invalid(`dxf-parser: ${errorText(e)}`);
  }

  const header = dxf.header ?? {};
  const version = typeof header.$ACADVER === "string" ? (header.$ACADVER as string) : undefined;
  const insunits = typeof header.$INSUNITS === "number" ? (header.$INSUNITS as number) : 0;
  let unitScale = INSUNITS_METRES[insunits];
  if (unitScale === undefined) {
    earlyWarnings.push({
      code: "UnitProblem",
      message: `${fileName}: $INSUNITS ${insunits} is not a known unit; metres assumed`,
      target: "$INSUNITS",
    });
    unitScale = 1;
  }

  const reader = new DxfReader(dxf, raw, unitScale);
  const tally = reader.tally;

  // Items (README "Synchronization"): every record of the ENTITIES section. Paper space and types that are not
  // imported are counted from the raw records (dxf-parser drops some types silently); the rest from dxf-parser's
  // entities, which pair with the raw records.
  const notWritten = new NotWrittenTally();
  const paper = new Map<string, number>();
  const unsupported = new Map<string, number>();
  /** Model-space records of mapped types, per type, not yet matched by one of dxf-parser's entities. */
  const undecoded = new Map<string, number>();
  let read = 0;
  for (const r of raw.entities) {
    if (SUB_RECORDS.has(r.type)) continue;
    read++;
    const handle = firstGroup(r, 5)?.toUpperCase() ?? `line ${r.line}`;
    if (firstGroup(r, 67) === "1") {
      paper.set(r.type, (paper.get(r.type) ?? 0) + 1);
      notWritten.add("PaperSpace", r.type, handle);
    } else if (!MAPPED_TYPES.has(r.type)) {
      unsupported.set(r.type, (unsupported.get(r.type) ?? 0) + 1);
      notWritten.add("UnsupportedEntityType", r.type, handle);
    } else undecoded.set(r.type, (undecoded.get(r.type) ?? 0) + 1);
  }

  const elements: SourceElement[] = [];
  const seen = new Map<string, number>();
  for (const e of dxf.entities ?? []) {
    const ex = reader.extras(e);
    if (ex.paperSpace) continue; // counted from the raw records
    if (!MAPPED_TYPES.has(e.type)) continue; // counted from the raw records
    const left = undecoded.get(e.type) ?? 0;
    if (left > 0) undecoded.set(e.type, left - 1);
    else read++; // dxf-parser gave more of this type than the raw scan saw: each is still an item
    if (e.type === "INSERT" && (e as IInsertEntity).name !== undefined && reader.isXref((e as IInsertEntity).name)) {
      // the referenced file is synchronized on its own, as a reference file
      notWritten.add("ExternalReference", e.type, ex.handle);
      continue;
    }
    const body = reader.element(e, ex);
    if (!body) {
      tally.add(
        "GeometryProblem",
        `${e.type} skipped`,
        (n, list) =>
          `${plural(n, `${e.type} entity`, `${e.type} entities`)} without usable coordinates ${n === 1 ? "was" : "were"} not imported (${listed(list, n)})`,
        { example: ex.handle ?? e.type },
      );
      notWritten.add("InvalidGeometry", e.type, ex.handle);
      continue;
    }
    const checksum = elementChecksum(body);
    let identifier: string;
    if (ex.handle) {
      const n = (seen.get(ex.handle) ?? 0) + 1;
      seen.set(ex.handle, n);
      identifier = n === 1 ? ex.handle : `${ex.handle}~${n}`;
      if (n > 1) {
        tally.add(
          "DuplicateIdentifier",
          undefined,
          (count, list) =>
            `${plural(count, "entity", "entities")} reused a handle of an earlier entity (${listed(list, count)}); they were given the identifiers <handle>~2, <handle>~3, … in file order`,
          { example: ex.handle },
        );
      }
    } else {
      // derived with the released checksum, so that existing iModels keep these elements (legacy-checksums.ts)
      const base = `${e.type}-${legacyDxfChecksum(body).slice(0, 16)}`;
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      identifier = n === 1 ? base : `${base}~${n}`;
      tally.add(
        "MissingHandle",
        undefined,
        (count) =>
          `${plural(count, "entity", "entities")} had no handle; ${count === 1 ? "its identifier was" : "their identifiers were"} derived from type and content (<TYPE>-<hash>), so an edit makes ${count === 1 ? "it a new element" : "them new elements"}`,
      );
    }
    elements.push({ ...body, identifier, checksum });
  }
  // Records of mapped types dxf-parser gave no entity for (only when it and the raw scan disagree).
  for (const [type, count] of undecoded) {
    if (count === 0) continue;
    notWritten.add("NotDecoded", type, undefined, count);
    tally.add(
      "NotDecoded",
      type,
      (n) =>
        `${plural(n, `${type} entity`, `${type} entities`)} of the ENTITIES section ${n === 1 ? "was" : "were"} not decoded by dxf-parser and not imported`,
      { count },
    );
  }

  const warnings: TaskWarning[] = [...earlyWarnings];
  for (const [type, count] of [...unsupported].sort()) {
    const why = PARSER_TYPES.has(type) ? "not mapped by the DXF connector" : "unsupported by the DXF reader";
    warnings.push({
      code: "UnsupportedEntity",
      message: `${plural(count, `${type} entity`, `${type} entities`)} ${count === 1 ? "was" : "were"} not imported (${why})`,
      target: type,
      count,
    });
  }
  for (const [type, info] of [...reader.unsupportedInUsedBlocks()].sort()) {
    warnings.push({
      code: "UnsupportedBlockEntity",
      message: `${plural(info.count, `${type} entity`, `${type} entities`)} in block definitions (${info.blocks.join(", ")}) ${info.count === 1 ? "is" : "are"} not drawn in their block references (unsupported)`,
      target: type,
      count: info.count,
    });
  }
  const paperTotal = [...paper.values()].reduce((a, b) => a + b, 0);
  if (paperTotal > 0) {
    const byType = [...paper]
      .sort()
      .map(([t, n]) => `${n} ${t}`)
      .join(", ");
    warnings.push({
      code: "PaperSpaceEntity",
      message: `${plural(paperTotal, "entity", "entities")} in paper space ${paperTotal === 1 ? "was" : "were"} not imported${byType ? ` (${byType})` : ""}`,
      target: "PaperSpace",
      count: paperTotal,
    });
  }

  const references: DiscoveredReference[] = [];
  for (const [name, block] of Object.entries(dxf.blocks ?? {})) {
    // XREF blocks (flag 4 or 8) of this file; "a|b" names are nested XREFs that belong to the referenced file
    if (((block.type ?? 0) & XREF_FLAGS) === 0 || name.includes("|")) continue;
    const xrefPath = block.xrefPath ?? raw.blocks.get(name)?.xrefPath ?? "";
    if (xrefPath.trim() === "") {
      tally.add("UnresolvedReference", name, () => `XREF block ${JSON.stringify(name)} has no path`);
      continue;
    }
    references.push({ path: xrefPath, attachment: (block.type & 8) !== 0 ? "Overlay" : "Attach", name });
  }

  const geodata = raw.geodata[0];
  const georeference = geodata ? readGeodata(geodata, unitScale, tally) : undefined;
  if (raw.geodata.length > 1)
    tally.add(
      "GeoreferenceAmbiguous",
      "GEODATA",
      () => `${raw.geodata.length} GEODATA objects; the first one was used`,
    );

  messages.reportTo(tally, { code: "ReaderMessage", fileName, reader: "dxf-parser" });
  warnings.push(...tally.toWarnings());

  const result: ParsedFile = {
    schema: releaseOf(version),
    connectorType: "DXF",
    elements,
    warnings,
    references,
    items: {
      read,
      notWritten: notWritten.toList(),
      properties: { read: elements.reduce((n, e) => n + (e.propertyValues?.length ?? 0), 0), notWritten: [] },
      relationships: { read: 0, notWritten: [] },
    },
  };
  if (georeference) result.georeference = georeference;
  return result;
}

/**
 * Parses an ASCII DXF file (R12 … R2018) into connector elements.
 *
 * - Elements: one per model-space entity of type LINE, LWPOLYLINE, POLYLINE (2D, 3D, polyface and polygon meshes),
 *   ARC, CIRCLE, ELLIPSE, SPLINE, POINT, TEXT, MTEXT, INSERT, DIMENSION, 3DFACE and SOLID.
 *   `identifier` = entity handle (upper case). A missing handle gives `<TYPE>-<16 hex of the element's legacy DXF
 *   checksum>` ({@link legacyDxfChecksum}, so that these identifiers stay what earlier releases gave; warning
 *   `MissingHandle`); a handle used again gives `<handle>~2`, `~3`, … in file order (warning `DuplicateIdentifier`).
 *   `className` = DXF entity type; `properties.layer` = layer name and `category` = the same name with the characters
 *   iModel category names refuse replaced by `_` ({@link layerCategory}); `properties.color` = resolved colour
 *   (`#rrggbb`); `name` = display text for TEXT/MTEXT (formatting codes removed), block name for INSERT, displayed
 *   text for DIMENSION.
 * - Units: coordinates are drawing units × the `$INSUNITS` scale to metres; unitless (0) or no `$INSUNITS` (R12) is
 *   taken as metres.
 * - Geometry (world metres, see `SourceCurve`): LINE, polylines → `linestring` (bulges tessellated at most 5° per
 *   segment; widths and thickness ignored); ARC, CIRCLE → `arc` (CIRCLE sweep 2π), through their OCS (extrusion);
 *   ELLIPSE → tessellated `linestring`; SPLINE → `linestring` of the evaluated (rational) B-spline, 32 points per knot
 *   span (through its fit or control points when the knot vector is unusable: warning `ApproximatedGeometry`);
 *   POINT → one-point `linestring`; 3DFACE, SOLID, polyface and polygon meshes → meshes; TEXT, MTEXT → no geometry
 *   (placement and text in properties). INSERT (also MINSERT arrays) → the block's entities transformed by OCS ·
 *   insertion point · rotation · scale · (−base point), recursively (at most 16 levels); entities on layer 0 and
 *   BYBLOCK colours take the reference's layer and colour; attribute values (ATTRIB) go to `properties.attributes`.
 *   DIMENSION → its anonymous block. Arcs under a non-uniform block scale become tessellated linestrings.
 *   Colours: true colour (420), else ACI (62) via the standard AutoCAD palette, BYLAYER → layer colour.
 * - `origin` = low corner of the element's range; for TEXT, MTEXT and POINT the insertion point (INSERT without
 *   geometry: its insertion point).
 * - Not imported, with warnings counted from a raw scan of the ENTITIES section (dxf-parser drops some types silently):
 *   `UnsupportedEntity` per type (e.g. HATCH, WIPEOUT, ACAD_TABLE, LEADER, ATTDEF in model space), with `count`;
 *   `UnsupportedBlockEntity` for such entities inside used block definitions; `PaperSpaceEntity` for entities in paper
 *   space (group 67 = 1). INSERTs of XREF blocks are not elements (the referenced file is synchronized on its own).
 * - `items` (README "Synchronization"): every record of the ENTITIES section (model and paper space; VERTEX, SEQEND and
 *   ATTRIB belong to the entity before them) is an item; those not written are counted by reason: `PaperSpace`,
 *   `UnsupportedEntityType` (types not mapped, counted from the raw records), `ExternalReference` (XREF inserts),
 *   `InvalidGeometry` (no usable coordinates), `NotDecoded` (records dxf-parser gave no entity for). Entities without
 *   or with a reused handle are written, with derived identifiers (see above).
 * - Completeness: every `0 SECTION` closed by `0 ENDSEC` and the `0 EOF` marker at the end, checked before
 *   dxf-parser runs (see {@link scanGroups}).
 * - `references`: one per XREF block (block flag 4 or 8; not nested `a|b` ones): `path` as saved, `Overlay` when flag 8 is
 *   set, else `Attach`, `name` = block name.
 * - `georeference`: from the GEODATA object of the OBJECTS section (local-grid coordinate type) with an EPSG code
 *   found in its coordinate-system XML (see {@link readGeodata} for the map conversion); otherwise a
 *   `GeoreferenceUnreadable` warning.
 * - `checksum` = {@link elementChecksum}; stable across runs.
 * - dxf-parser's console output becomes `ReaderMessage` warnings; nothing is printed.
 *
 * Reads the file and calls {@link parseDxfBytes} (the service reads each file once itself and calls that directly).
 * @param absolutePath absolute path of the .dxf file
 * @throws SourceFileError `FileNotFound` when the file does not exist, `FileUnreadable` when it cannot be read,
 *   `InvalidFileFormat` ("<file name>: not a readable DXF file (<reason>)") when it is empty, binary DXF, not DXF
 *   group codes, or dxf-parser throws on it; `FileIncomplete` when it is cut off (see {@link parseDxfBytes}).
 */
export async function parseDxf(absolutePath: string): Promise<ParsedFile> {
  const buf = await readSourceFile(absolutePath);
  return parseDxfBytes(buf, path.basename(absolutePath));
}
