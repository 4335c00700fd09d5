/**
 * DXF connector: reads an ASCII DXF file (R12 … R2018) with dxf-parser and returns the elements of the connector
 * contract (`ParsedFile`), in metres, in the drawing's world coordinate system (WCS, Z up) scaled by `$INSUNITS`.
 *
 * dxf-parser decodes the entities it knows; a light scan of the raw group codes (same file text, same record order)
 * supplies what it drops or never reads: entity types it skips (HATCH, WIPEOUT, ACAD_TABLE, …, counted and reported),
 * paper-space flags, extrusion directions of CIRCLE/TEXT/ELLIPSE, true colours, SPLINE weights, polygon-mesh sizes,
 * block attributes (ATTRIB), XREF block flags and the GEODATA object of the OBJECTS section.
 *
 * Everything runs synchronously after the file has been read; dxf-parser's console output is captured as warnings
 * (`ReaderMessage`), never printed.
 */
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as util from "node:util";
import DxfParser from "dxf-parser";
import type {
  I3DfaceEntity,
  IArcEntity,
  IBlock,
  ICircleEntity,
  IDimensionEntity,
  IDxf,
  IEllipseEntity,
  IEntity,
  IInsertEntity,
  ILineEntity,
  ILwpolylineEntity,
  IMtextEntity,
  IPoint,
  IPointEntity,
  IPolylineEntity,
  ISolidEntity,
  ISplineEntity,
  ITextEntity,
} from "dxf-parser";
import {
  type DiscoveredReference,
  type Georeference,
  type ParsedFile,
  type RgbaColor,
  type SourceCurve,
  type SourceElement,
  SourceFileError,
  type SourceMesh,
  type TaskWarning,
} from "./types";
import { IDENTITY, multiply, type Affine } from "./affine";
import { canonicalJson } from "./canonical-json";

type Vec3 = [number, number, number];
/** Affine transform as a row-major 3x4 matrix: [r00 r01 r02 tx  r10 r11 r12 ty  r20 r21 r22 tz]. */

/** Entity types dxf-parser 1.1.2 decodes (its registered handlers); every other type is skipped by it. */
const PARSER_TYPES = new Set([
  "3DFACE",
  "ARC",
  "ATTDEF",
  "CIRCLE",
  "DIMENSION",
  "ELLIPSE",
  "INSERT",
  "LINE",
  "LWPOLYLINE",
  "MTEXT",
  "POINT",
  "POLYLINE",
  "SOLID",
  "SPLINE",
  "TEXT",
]);

/** Entity types this connector turns into elements (model space). ATTDEF is read by dxf-parser but not mapped. */
const MAPPED_TYPES = new Set([
  "3DFACE",
  "ARC",
  "CIRCLE",
  "DIMENSION",
  "ELLIPSE",
  "INSERT",
  "LINE",
  "LWPOLYLINE",
  "MTEXT",
  "POINT",
  "POLYLINE",
  "SOLID",
  "SPLINE",
  "TEXT",
]);

/** Entity types that draw nothing inside a block reference on purpose (text has no glyph geometry here). */
const SILENT_IN_BLOCKS = new Set(["ATTDEF", "TEXT", "MTEXT"]);

/** Records that belong to the entity before them (POLYLINE vertices, INSERT attributes), not entities of their own. */
const SUB_RECORDS = new Set(["VERTEX", "SEQEND", "ATTRIB"]);

/** BLOCK flags (group 70) that make a block an XREF: 4 = external reference, 8 = overlay. */
const XREF_FLAGS = 4 | 8;

/** Block nesting depth at which INSERTs inside blocks stop being expanded. */
const MAX_BLOCK_DEPTH = 16;
/** Most instances one MINSERT (rows x columns) expands to. */
const MAX_ARRAY_INSTANCES = 10_000;
/** Largest angle (radians) one segment of a tessellated bulge, ellipse or non-circular arc spans: 5 degrees. */
const MAX_SEGMENT_ANGLE = Math.PI / 36;
/** Samples per non-empty knot span when a SPLINE is evaluated; at most MAX_SPLINE_POINTS points in all. */
const SPLINE_SAMPLES_PER_SPAN = 32;
const MAX_SPLINE_POINTS = 4000;
const TWO_PI = 2 * Math.PI;

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

/**
 * The 256 AutoCAD Color Index (ACI) colours as 24-bit RGB hex, index 0..255 (0 = BYBLOCK and is never looked up).
 * This is the standard AutoCAD palette, the same table dxf-parser ships in `AutoCadColorIndex` (MIT), which its
 * CommonJS bundle does not export.
 */
const ACI_HEX =
  "000000ff0000ffff0000ff0000ffff0000ffff00ffffffff808080c0c0c0ff0000ff7f7fcc0000cc6666990000994c4c" +
  "7f00007f3f3f4c00004c2626ff3f00ff9f7fcc3300cc7f66992600995f4c7f1f007f4f3f4c13004c2f26ff7f00ffbf7f" +
  "cc6600cc9966994c0099724c7f3f007f5f3f4c26004c3926ffbf00ffdf7fcc9900ccb26699720099854c7f5f007f6f3f" +
  "4c39004c4226ffff00ffff7fcccc00cccc6698980098984c7f7f007f7f3f4c4c004c4c26bfff00dfff7f99cc00b2cc66" +
  "72980085984c5f7f006f7f3f394c00424c267fff00bfff7f66cc0099cc664c980072984c3f7f005f7f3f264c00394c26" +
  "3fff009fff7f33cc007fcc662698005f984c1f7f004f7f3f134c002f4c2600ff007fff7f00cc0066cc660098004c984c" +
  "007f003f7f3f004c00264c2600ff3f7fff9f00cc3366cc7f0098264c985f007f1f3f7f4f004c13264c2f00ff7f7fffbf" +
  "00cc6666cc9900984c4c9872007f3f3f7f5f004c26264c3900ffbf7fffdf00cc9966ccb20098724c9885007f5f3f7f6f" +
  "004c39264c4200ffff7fffff00cccc66cccc0098984c9898007f7f3f7f7f004c4c264c4c00bfff7fdfff0099cc66b2cc" +
  "0072984c8598005f7f3f6f7f00394c26424c007fff7fbfff0066cc6699cc004c984c7298003f7f3f5f7f00264c26394c" +
  "003fff7f9fff0033cc667fcc0026984c5f98001f7f3f4f7f00134c262f4c0000ff7f7fff0000cc6666cc0000984c4c98" +
  "00007f3f3f7f00004c26264c3f00ff9f7fff3300cc7f66cc2600985f4c981f007f4f3f7f13004c2f264c7f00ffbf7fff" +
  "6600cc9966cc4c0098724c983f007f5f3f7f26004c39264cbf00ffdf7fff9900ccb266cc720098854c985f007f6f3f7f" +
  "39004c42264cff00ffff7fffcc00cccc66cc980098984c987f007f7f3f7f4c004c4c264cff00bfff7fdfcc0099cc66b2" +
  "980072984c857f005f7f3f6f4c00394c2642ff007fff7fbfcc0066cc669998004c984c727f003f7f3f5f4c00264c2639" +
  "ff003fff7f9fcc0033cc667f980026984c5f7f001f7f3f4f4c00134c262f3333335b5b5b848484adadadd6d6d6ffffff";

/** RGB (0..1, alpha 1) of ACI colour `index` (1..255); undefined outside that range. */
function aciColor(index: number): RgbaColor | undefined {
  if (!Number.isInteger(index) || index < 1 || index > 255) return undefined;
  return rgbColor(Number.parseInt(ACI_HEX.slice(index * 6, index * 6 + 6), 16));
}

/** RGBA (0..1) of a 24-bit 0xRRGGBB true colour (group 420). */
function rgbColor(rgb: number): RgbaColor {
  return [micro(((rgb >> 16) & 0xff) / 255), micro(((rgb >> 8) & 0xff) / 255), micro((rgb & 0xff) / 255), 1];
}

function colorHex(c: RgbaColor): string {
  return `#${c
    .slice(0, 3)
    .map((v) =>
      Math.round(v * 255)
        .toString(16)
        .padStart(2, "0"),
    )
    .join("")}`;
}

const WHITE: RgbaColor = [1, 1, 1, 1];

// ---------------------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------------------

/** Rounds to the micro unit (1e-6); `+ 0` turns -0 into 0 so equal values serialise equally. */
function micro(v: number): number {
  return Math.round(v * 1e6) / 1e6 + 0;
}

/** Rounds to 1e-9 (angles in radians, unit vectors). */
function nano(v: number): number {
  return Math.round(v * 1e9) / 1e9 + 0;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function finite(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

// ---------------------------------------------------------------------------------------------------------
// Text decoding
// ---------------------------------------------------------------------------------------------------------

const BINARY_DXF_SENTINEL = "AutoCAD Binary DXF";

/** TextDecoder label for a $DWGCODEPAGE value (pre-R2007 files); undefined when unknown. */
function codePageLabel(codePage: string | undefined): string | undefined {
  if (!codePage) return undefined;
  const cp = codePage.trim().toUpperCase();
  const ansi = /^ANSI_(\d+)$/.exec(cp);
  if (ansi) {
    const n = ansi[1];
    if (n === "932") return "shift_jis";
    if (n === "936") return "gbk";
    if (n === "949") return "euc-kr";
    if (n === "950") return "big5";
    if (n === "874") return "windows-874";
    return `windows-${n}`;
  }
  if (cp === "UTF8" || cp === "UTF-8") return "utf-8";
  return undefined;
}

/**
 * Decodes the file's bytes: UTF-8 from R2007 (AC1021) on or with a BOM; before that the $DWGCODEPAGE code page
 * (windows-1252 when unknown). Files without a version are taken as UTF-8 when they are valid UTF-8.
 */
function decodeDxfBytes(buf: Buffer): string {
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return buf.subarray(3).toString("utf8");
  const head = buf.subarray(0, Math.min(buf.length, 1 << 16)).toString("latin1");
  const version = /\$ACADVER\s*\r?\n\s*1\s*\r?\n\s*(AC\d{4})/.exec(head)?.[1];
  if (version && version >= "AC1021") return buf.toString("utf8");
  const label = version ? codePageLabel(/\$DWGCODEPAGE\s*\r?\n\s*3\s*\r?\n\s*([^\r\n]+)/.exec(head)?.[1]) : undefined;
  if (!version) {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buf);
    } catch {
      // not UTF-8: fall through to windows-1252
    }
  }
  try {
    return new TextDecoder(label ?? "windows-1252").decode(buf);
  } catch {
    return buf.toString("latin1");
  }
}

/** `\U+XXXX` escapes (DXF before R2007) and caret-encoded control characters (`^J`, `^I`, `^ ` = `^`). */
function decodeDxfString(s: string): string {
  let out = s;
  if (out.includes("\\U+") || out.includes("\\u+")) {
    out = out.replace(/\\[Uu]\+([0-9A-Fa-f]{4})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  }
  if (out.includes("^")) {
    out = out.replace(/\^([ @-_])/g, (_m, c: string) => (c === " " ? "^" : String.fromCharCode(c.charCodeAt(0) - 64)));
  }
  return out;
}

/** Display text of a TEXT value: `%%d` → °, `%%p` → ±, `%%c` → ⌀, `%%%` → %, `%%nnn` → character nnn; `%%u/o/k` dropped. */
function plainText(s: string): string {
  return decodeDxfString(s)
    .replace(/%%(\d{3})/g, (_m, n: string) => String.fromCharCode(Number.parseInt(n, 10)))
    .replace(/%%([dDpPcC%uUoOkK])/g, (_m, c: string) => {
      switch (c.toLowerCase()) {
        case "d":
          return "°";
        case "p":
          return "±";
        case "c":
          return "⌀";
        case "%":
          return "%";
        default:
          return "";
      }
    })
    .trim();
}

/**
 * Display text of an MTEXT value: paragraph breaks (`\P`) become new lines, formatting codes (`\f…;`, `\H…;`,
 * `\A…;`, `\C…;`, `\L`, …) and grouping braces are removed, stacked fractions (`\S1/2;`, `\S1^2;`) read `1/2`.
 */
function mtextPlain(raw: string): string {
  const s = decodeDxfString(raw);
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === "{" || ch === "}") continue;
    if (ch !== "\\" || i + 1 >= s.length) {
      out += ch;
      continue;
    }
    const code = s[i + 1];
    i++;
    switch (code) {
      case "P":
      case "n":
        out += "\n";
        break;
      case "~":
        out += " ";
        break;
      case "\\":
      case "{":
      case "}":
        out += code;
        break;
      case "S": {
        const end = s.indexOf(";", i + 1);
        const body = end < 0 ? s.slice(i + 1) : s.slice(i + 1, end);
        out += body.replace(/[\^#]/g, "/").replace(/\/\s+/g, "/");
        i = end < 0 ? s.length : end;
        break;
      }
      case "f":
      case "F":
      case "H":
      case "W":
      case "Q":
      case "T":
      case "A":
      case "C":
      case "c":
      case "p": {
        const end = s.indexOf(";", i + 1);
        i = end < 0 ? s.length : end;
        break;
      }
      case "L":
      case "l":
      case "O":
      case "o":
      case "K":
      case "k":
      case "N":
      case "X":
        break;
      default:
        out += code;
    }
  }
  return plainText(out);
}

// ---------------------------------------------------------------------------------------------------------
// Raw group scan
// ---------------------------------------------------------------------------------------------------------

/** One group: code and value (value trimmed, as dxf-parser reads it). */
type RawGroup = [number, string];

/** One record (`0 TYPE` and its groups) of the ENTITIES, BLOCKS or OBJECTS section. */
interface RawRecord {
  type: string;
  /** 1-based line of the record's `0` group. */
  line: number;
  /** The record's own groups with a code in KEPT_CODES (all of them for GEODATA), up to an embedded object (group 101). */
  groups: RawGroup[];
  /** VERTEX / ATTRIB / SEQEND records that follow a POLYLINE or INSERT. */
  children: RawRecord[];
  embedded?: boolean;
}

interface RawBlock {
  name: string;
  /** Group 70 of the BLOCK record: 4 = XREF, 8 = overlay, 16 = externally dependent, 32 = resolved, … */
  flags: number;
  /** Group 1 of the BLOCK record: the XREF path as saved. */
  xrefPath: string;
  records: RawRecord[];
}

interface RawScan {
  entities: RawRecord[];
  blocks: Map<string, RawBlock>;
  /** GEODATA records of the OBJECTS section. */
  geodata: RawRecord[];
  sawEof: boolean;
  /** The last group read was `0 ENDSEC`. */
  endedAfterSection: boolean;
}

/**
 * Group codes kept from entity records (the rest is dxf-parser's job; keeping every group would double the memory of
 * large files): 1/2 ATTRIB value/tag, 5 handle, 30 POLYLINE elevation, 41 SPLINE weights, 62/420 colour, 67 paper
 * space, 71–74 polygon mesh sizes, 210/220/230 extrusion. GEODATA records keep all their groups.
 */
const KEPT_CODES = new Set([1, 2, 5, 30, 41, 62, 67, 71, 72, 73, 74, 210, 220, 230, 420]);

class DxfFormatError extends Error {}

function firstGroup(r: RawRecord, code: number): string | undefined {
  for (const g of r.groups) if (g[0] === code) return g[1];
  return undefined;
}

function intGroup(r: RawRecord, code: number): number | undefined {
  const v = firstGroup(r, code);
  if (v === undefined) return undefined;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? n : undefined;
}

function floatGroup(r: RawRecord, code: number): number | undefined {
  const v = firstGroup(r, code);
  if (v === undefined) return undefined;
  const n = Number.parseFloat(v);
  return Number.isFinite(n) ? n : undefined;
}

function truncateForMessage(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

/** Group code of a code line: an integer, optionally surrounded by blanks; NaN otherwise. */
function groupCode(s: string): number {
  let start = 0;
  let end = s.length;
  while (start < end && (s.charCodeAt(start) === 32 || s.charCodeAt(start) === 9)) start++;
  while (end > start && (s.charCodeAt(end - 1) === 32 || s.charCodeAt(end - 1) === 9)) end--;
  const negative = start < end && s.charCodeAt(start) === 45;
  if (negative) start++;
  if (start >= end || end - start > 9) return NaN;
  let v = 0;
  for (let k = start; k < end; k++) {
    const d = s.charCodeAt(k) - 48;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return negative ? -v : v;
}

/**
 * Reads the group-code structure of the whole file: validates that it is a sequence of (integer code, value) line
 * pairs with sections, and keeps the records of ENTITIES and BLOCKS (in file order, the order dxf-parser also
 * follows) and the GEODATA objects.
 * @throws DxfFormatError with the reason when the text is not DXF.
 */
function scanGroups(lines: string[]): RawScan {
  const scan: RawScan = { entities: [], blocks: new Map(), geodata: [], sawEof: false, endedAfterSection: false };
  let sectionCount = 0;
  let section: string | undefined;
  let expectSectionName = false;
  let block: RawBlock | undefined;
  let inBlockHeader = false;
  let main: RawRecord | undefined;
  let target: RawRecord | undefined;
  let i = 0;
  const n = lines.length;
  while (i < n) {
    const codeLine = lines[i];
    const code = groupCode(codeLine);
    if (Number.isNaN(code)) {
      if (codeLine.trim() === "" && lines.slice(i).every((l) => l.trim() === "")) break; // trailing blank lines
      throw new DxfFormatError(`line ${i + 1}: ${truncateForMessage(codeLine)} is not a DXF group code`);
    }
    if (i + 1 >= n) throw new DxfFormatError(`line ${i + 1}: group code without a value at the end of the file`);
    const rawValue = lines[i + 1];
    const line = i + 1;
    i += 2;
    scan.endedAfterSection = false;
    if (code === 0) {
      const value = rawValue.trim();
      expectSectionName = false;
      if (value === "EOF") {
        scan.sawEof = true;
        break;
      }
      if (value === "SECTION") {
        expectSectionName = true;
        section = undefined;
        main = target = undefined;
        sectionCount++;
        continue;
      }
      if (value === "ENDSEC") {
        section = undefined;
        main = target = undefined;
        block = undefined;
        inBlockHeader = false;
        scan.endedAfterSection = true;
        continue;
      }
      if (section === "ENTITIES" || (section === "BLOCKS" && block)) {
        if (section === "BLOCKS" && value === "ENDBLK" && block) {
          scan.blocks.set(block.name, block);
          block = undefined;
          main = target = undefined;
          continue;
        }
        inBlockHeader = false;
        const rec: RawRecord = { type: value, line, groups: [], children: [] };
        if (SUB_RECORDS.has(value) && main) {
          main.children.push(rec);
        } else {
          (section === "ENTITIES" ? scan.entities : block!.records).push(rec);
          main = rec;
        }
        target = rec;
        continue;
      }
      if (section === "BLOCKS" && value === "BLOCK") {
        block = { name: "", flags: 0, xrefPath: "", records: [] };
        inBlockHeader = true;
        main = target = undefined;
        continue;
      }
      if (section === "OBJECTS" && value === "GEODATA") {
        target = { type: value, line, groups: [], children: [] };
        scan.geodata.push(target);
        continue;
      }
      main = target = undefined;
      continue;
    }
    if (expectSectionName) {
      expectSectionName = false;
      if (code === 2) section = rawValue.trim();
      continue;
    }
    if (inBlockHeader && block) {
      if (code === 2 && block.name === "") block.name = rawValue.trim();
      else if (code === 70) block.flags = Number.parseInt(rawValue, 10) || 0;
      else if (code === 1) block.xrefPath = rawValue.trim();
      continue;
    }
    if (target && !target.embedded) {
      if (code === 101) target.embedded = true;
      else if (KEPT_CODES.has(code) || target.type === "GEODATA") target.groups.push([code, rawValue.trim()]);
    }
  }
  if (sectionCount === 0) throw new DxfFormatError("no SECTION found");
  return scan;
}

// ---------------------------------------------------------------------------------------------------------
// Transforms
// ---------------------------------------------------------------------------------------------------------

function translation(x: number, y: number, z: number): Affine {
  return [1, 0, 0, x, 0, 1, 0, y, 0, 0, 1, z];
}

function scaling(x: number, y: number, z: number): Affine {
  return [x, 0, 0, 0, 0, y, 0, 0, 0, 0, z, 0];
}

function rotationZ(radians: number): Affine {
  const c = Math.cos(radians);
  const s = Math.sin(radians);
  return [c, -s, 0, 0, s, c, 0, 0, 0, 0, 1, 0];
}

function apply(m: Affine, p: Vec3): Vec3 {
  return [
    m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3],
    m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7],
    m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11],
  ];
}

function applyVector(m: Affine, v: Vec3): Vec3 {
  return [
    m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
    m[4] * v[0] + m[5] * v[1] + m[6] * v[2],
    m[8] * v[0] + m[9] * v[1] + m[10] * v[2],
  ];
}

function dot(a: Vec3, b: Vec3): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function length(v: Vec3): number {
  return Math.hypot(v[0], v[1], v[2]);
}

function normalize(v: Vec3): Vec3 | undefined {
  const l = length(v);
  return l > 1e-12 ? [v[0] / l, v[1] / l, v[2] / l] : undefined;
}

function scaled(v: Vec3, s: number): Vec3 {
  return [v[0] * s, v[1] * s, v[2] * s];
}

function added(a: Vec3, b: Vec3): Vec3 {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}

/**
 * x and y axes of the object coordinate system (OCS) of extrusion direction `n` by the DXF arbitrary axis
 * algorithm: x = (|nx| < 1/64 and |ny| < 1/64 ? Wy × n : Wz × n), normalised; y = n × x.
 */
function arbitraryAxes(n: Vec3): [Vec3, Vec3] {
  const ax = normalize(
    Math.abs(n[0]) < 1 / 64 && Math.abs(n[1]) < 1 / 64 ? cross([0, 1, 0], n) : cross([0, 0, 1], n),
  ) ?? [1, 0, 0];
  const ay = normalize(cross(n, ax)) ?? [0, 1, 0];
  return [ax, ay];
}

/** OCS → WCS rotation for extrusion direction `extrusion` (identity for 0,0,1 or none). */
function ocsMatrix(extrusion: Vec3 | undefined): Affine {
  const n = extrusion ? normalize(extrusion) : undefined;
  if (!n || (Math.abs(n[0]) < 1e-12 && Math.abs(n[1]) < 1e-12 && n[2] > 0)) return IDENTITY;
  const [ax, ay] = arbitraryAxes(n);
  return [ax[0], ay[0], n[0], 0, ax[1], ay[1], n[1], 0, ax[2], ay[2], n[2], 0];
}

function vec(p: Partial<IPoint> | undefined, fallbackZ = 0): Vec3 | undefined {
  if (!p || !finite(p.x) || !finite(p.y)) return undefined;
  return [p.x, p.y, finite(p.z) ? p.z : fallbackZ];
}

/** Sweep from start to end angle, counter-clockwise, in (0, 2π] (equal angles give a full turn). */
function ccwSweep(start: number, end: number): number {
  let s = (end - start) % TWO_PI;
  if (s < 0) s += TWO_PI;
  return s <= 1e-12 ? TWO_PI : s;
}

function segmentsFor(sweep: number): number {
  return Math.max(1, Math.ceil(Math.abs(sweep) / MAX_SEGMENT_ANGLE - 1e-9));
}

// ---------------------------------------------------------------------------------------------------------
// Geometry output
// ---------------------------------------------------------------------------------------------------------

/** Collects the world geometry (metres) of one element. */
class GeometrySink {
  readonly curves: SourceCurve[] = [];
  readonly meshes: SourceMesh[] = [];
  /** Pieces dropped because a coordinate was missing or not finite. */
  dropped = 0;

  linestring(points: Vec3[], closed: boolean, color: RgbaColor): void {
    if (points.length === 0 || !points.every((p) => p.every(Number.isFinite))) {
      this.dropped++;
      return;
    }
    const flat = new Float64Array(points.length * 3);
    points.forEach((p, i) => {
      flat[i * 3] = micro(p[0]);
      flat[i * 3 + 1] = micro(p[1]);
      flat[i * 3 + 2] = micro(p[2]);
    });
    const curve: SourceCurve = { kind: "linestring", points: flat, color };
    if (closed && points.length > 2) curve.closed = true;
    this.curves.push(curve);
  }

  /**
   * A circular arc given in local coordinates (centre `c`, orthonormal in-plane axes `u`, `v`, radius, start and
   * counter-clockwise sweep from `u` towards `v`), transformed by `m`. It stays an `arc` when `m` maps the circle to a
   * circle (rotation, uniform scale, mirror); otherwise (non-uniform block scale) it is tessellated into a linestring.
   */
  arc(m: Affine, c: Vec3, u: Vec3, v: Vec3, radius: number, start: number, sweep: number, color: RgbaColor): void {
    if (![...c, ...u, ...v, radius, start, sweep].every(Number.isFinite) || radius <= 0) {
      this.dropped++;
      return;
    }
    const center = apply(m, c);
    const cs = Math.cos(start);
    const sn = Math.sin(start);
    const a0 = applyVector(m, added(scaled(u, radius * cs), scaled(v, radius * sn)));
    const a90 = applyVector(m, added(scaled(u, -radius * sn), scaled(v, radius * cs)));
    const l0 = length(a0);
    const l90 = length(a90);
    let normal = normalize(cross(a0, a90));
    const full = sweep >= TWO_PI - 1e-12;
    if (normal && l0 > 0 && Math.abs(l0 - l90) <= 1e-9 * l0 && Math.abs(dot(a0, a90)) <= 1e-9 * l0 * l90) {
      // Mirrored references give normals pointing down: the same arc, run the other way round from its end point,
      // has an upward normal (so 2D drawings always give normal 0,0,1).
      let startVector = a0;
      if (normal[2] < -1e-12) {
        normal = [-normal[0], -normal[1], -normal[2]];
        startVector = added(scaled(a0, Math.cos(sweep)), scaled(a90, Math.sin(sweep)));
      }
      const [ax, ay] = arbitraryAxes(normal);
      let st = nano(Math.atan2(dot(startVector, ay), dot(startVector, ax)));
      if (st < 0) st = nano(st + TWO_PI);
      if (st >= nano(TWO_PI)) st = 0;
      this.curves.push({
        kind: "arc",
        center: [micro(center[0]), micro(center[1]), micro(center[2])],
        radius: micro(l0),
        startAngle: full ? 0 : st,
        sweepAngle: full ? nano(TWO_PI) : nano(sweep),
        normal: [nano(normal[0]), nano(normal[1]), nano(normal[2])],
        color,
      });
      return;
    }
    const segs = segmentsFor(sweep);
    const points: Vec3[] = [];
    for (let k = 0; k <= (full ? segs - 1 : segs); k++) {
      const t = (sweep * k) / segs;
      points.push(added(center, added(scaled(a0, Math.cos(t)), scaled(a90, Math.sin(t)))));
    }
    this.linestring(points, full, color);
  }

  mesh(points: Vec3[], indices: number[], color: RgbaColor): void {
    if (indices.length < 3 || !points.every((p) => p.every(Number.isFinite))) {
      this.dropped++;
      return;
    }
    const positions = new Float64Array(points.length * 3);
    points.forEach((p, i) => {
      positions[i * 3] = micro(p[0]);
      positions[i * 3 + 1] = micro(p[1]);
      positions[i * 3 + 2] = micro(p[2]);
    });
    this.meshes.push({ positions, indices: Uint32Array.from(indices), color });
  }
}

/** Low corner of the range of curves (arcs by their exact extent) and meshes; undefined when there is none. */
function lowCorner(curves: SourceCurve[], meshes: SourceMesh[]): Vec3 | undefined {
  const low: Vec3 = [Infinity, Infinity, Infinity];
  const take = (arr: Float64Array) => {
    for (let i = 0; i + 2 < arr.length; i += 3) {
      if (arr[i] < low[0]) low[0] = arr[i];
      if (arr[i + 1] < low[1]) low[1] = arr[i + 1];
      if (arr[i + 2] < low[2]) low[2] = arr[i + 2];
    }
  };
  for (const c of curves) {
    if (c.kind === "linestring") {
      take(c.points);
      continue;
    }
    const [ax, ay] = arbitraryAxes(c.normal);
    for (let k = 0; k < 3; k++) {
      const at = (t: number) => c.center[k] + c.radius * (ax[k] * Math.cos(t) + ay[k] * Math.sin(t));
      let v = Math.min(at(c.startAngle), at(c.startAngle + c.sweepAngle));
      // the minimum of coordinate k is at angle atan2(ay_k, ax_k) + π; include it when the arc passes there
      const tMin = Math.atan2(ay[k], ax[k]) + Math.PI;
      let rel = (tMin - c.startAngle) % TWO_PI;
      if (rel < 0) rel += TWO_PI;
      if (rel <= c.sweepAngle) v = Math.min(v, c.center[k] - c.radius * Math.hypot(ax[k], ay[k]));
      if (v < low[k]) low[k] = v;
    }
  }
  for (const m of meshes) take(m.positions);
  return low.every(Number.isFinite) ? [micro(low[0]), micro(low[1]), micro(low[2])] : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Curve helpers
// ---------------------------------------------------------------------------------------------------------

interface BulgeVertex {
  x: number;
  y: number;
  bulge: number;
}

/**
 * 2D points of a polyline with bulges (in its OCS): each bulge segment (bulge = tan(included angle / 4), positive
 * counter-clockwise) is tessellated at most {@link MAX_SEGMENT_ANGLE} per segment. For a closed polyline the closing
 * segment (last → first, with the last vertex's bulge) is included and the first point is not repeated.
 */
function bulgePoints(vertices: BulgeVertex[], closed: boolean): [number, number][] {
  const out: [number, number][] = [];
  const n = vertices.length;
  for (let i = 0; i < n; i++) {
    const p = vertices[i];
    out.push([p.x, p.y]);
    if (i === n - 1 && !closed) break;
    const q = vertices[(i + 1) % n];
    const b = p.bulge;
    if (!b || Math.abs(b) < 1e-12 || n < 2) continue;
    const theta = 4 * Math.atan(b);
    const dx = q.x - p.x;
    const dy = q.y - p.y;
    const d = Math.hypot(dx, dy);
    if (d < 1e-12) continue;
    const h = d / 2 / Math.tan(theta / 2);
    const cx = (p.x + q.x) / 2 - (dy / d) * h;
    const cy = (p.y + q.y) / 2 + (dx / d) * h;
    const r = Math.hypot(p.x - cx, p.y - cy);
    const a0 = Math.atan2(p.y - cy, p.x - cx);
    const segs = segmentsFor(theta);
    for (let k = 1; k < segs; k++) {
      const a = a0 + (theta * k) / segs;
      out.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]);
    }
  }
  return out;
}

/**
 * Points on a (rational) B-spline of degree `p`: control points, knot vector (n + p + 1 values, non-decreasing) and
 * optional weights; {@link SPLINE_SAMPLES_PER_SPAN} samples per non-empty knot span over [t_p, t_n], de Boor's
 * algorithm in homogeneous coordinates. Undefined when the data is inconsistent.
 */
function evaluateSpline(ctrl: Vec3[], knots: number[], p: number, weights: number[] | undefined): Vec3[] | undefined {
  const n = ctrl.length;
  if (!Number.isInteger(p) || p < 1 || n < p + 1 || knots.length !== n + p + 1) return undefined;
  for (let i = 1; i < knots.length; i++) if (!(knots[i] >= knots[i - 1])) return undefined;
  const w = weights && weights.length === n && weights.every((x) => x > 0) ? weights : undefined;
  const hom = ctrl.map((c, i) => {
    const wi = w ? w[i] : 1;
    return [c[0] * wi, c[1] * wi, c[2] * wi, wi];
  });
  const deBoor = (k: number, t: number): Vec3 => {
    const d = hom.slice(k - p, k + 1).map((x) => x.slice());
    for (let r = 1; r <= p; r++) {
      for (let j = p; j >= r; j--) {
        const i = j + k - p;
        const den = knots[i + p - r + 1] - knots[i];
        const alpha = den > 0 ? (t - knots[i]) / den : 0;
        for (let c = 0; c < 4; c++) d[j][c] = (1 - alpha) * d[j - 1][c] + alpha * d[j][c];
      }
    }
    const last = d[p];
    return [last[0] / last[3], last[1] / last[3], last[2] / last[3]];
  };
  const spans: number[] = [];
  for (let k = p; k < n; k++) if (knots[k + 1] > knots[k]) spans.push(k);
  if (spans.length === 0) return undefined;
  const samples = Math.max(1, Math.min(SPLINE_SAMPLES_PER_SPAN, Math.floor(MAX_SPLINE_POINTS / spans.length)));
  const out: Vec3[] = [];
  for (const k of spans) {
    for (let j = 0; j < samples; j++) out.push(deBoor(k, knots[k] + ((knots[k + 1] - knots[k]) * j) / samples));
  }
  const lastSpan = spans[spans.length - 1];
  out.push(deBoor(lastSpan, knots[lastSpan + 1]));
  return out.every((q) => q.every(Number.isFinite)) ? out : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------------------------------------

interface TallyItem {
  code: string;
  target?: string;
  count: number;
  examples: string[];
  message: (count: number, examples: string[]) => string;
}

/** Deduplicates warnings by code + target, with a count and the first few examples. */
class WarningTally {
  private readonly items = new Map<string, TallyItem>();
  private readonly order: string[] = [];

  add(code: string, target: string | undefined, message: TallyItem["message"], example?: string, count = 1): void {
    const key = `${code}\u0000${target ?? ""}`;
    let item = this.items.get(key);
    if (!item) {
      item = { code, target, count: 0, examples: [], message };
      this.items.set(key, item);
      this.order.push(key);
    }
    item.count += count;
    if (example !== undefined && item.examples.length < 5 && !item.examples.includes(example))
      item.examples.push(example);
  }

  toWarnings(): TaskWarning[] {
    return this.order.map((key) => {
      const it = this.items.get(key)!;
      const w: TaskWarning = { code: it.code, message: it.message(it.count, it.examples) };
      if (it.target !== undefined) w.target = it.target;
      if (
        it.count > 1 ||
        it.code === "UnsupportedEntity" ||
        it.code === "UnsupportedBlockEntity" ||
        it.code === "PaperSpaceEntity"
      )
        w.count = it.count;
      return w;
    });
  }
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function listed(examples: string[], count: number): string {
  return examples.join(", ") + (count > examples.length ? ", …" : "");
}

// ---------------------------------------------------------------------------------------------------------
// Console capture around dxf-parser
// ---------------------------------------------------------------------------------------------------------

const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug", "trace"] as const;

/**
 * Runs `work` (synchronous) with console methods and process stdout/stderr writes routed to `sink`. dxf-parser logs
 * through `console` and a bundled loglevel whose methods were bound to the console at load time (those end on the
 * stream writes). Nothing else runs meanwhile: the work is synchronous.
 */
function withCapturedOutput<T>(sink: (text: string) => void, work: () => T): T {
  const saved = CONSOLE_METHODS.map((m) => [m, console[m]] as const);
  const out = process.stdout.write;
  const err = process.stderr.write;
  const route = (...args: unknown[]) => sink(util.format(...args));
  for (const m of CONSOLE_METHODS) console[m] = route;
  const write = ((chunk: unknown) => {
    sink(typeof chunk === "string" ? chunk : Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk));
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = write;
  process.stderr.write = write;
  try {
    return work();
  } finally {
    for (const [m, fn] of saved) console[m] = fn;
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------------------------------------

const LITTLE_ENDIAN = os.endianness() === "LE";

/**
 * sha256 (hex) of everything the writer stores for an element, in the canonical form of the IFC connector's
 * `elementChecksum` (a JSON header with sorted keys, then numbers as integers in float64 little-endian), extended
 * with the category and curves, in one pass:
 * - header: version, className, category, name, origin (rounded to 1e-6), properties (layer, colour, …), numbers of
 *   meshes and curves;
 * - one float64 array: per mesh `3, position count, index count, colour (r, g, b, a in millionths; -1 when none),
 *   positions in micrometres…, indices…`; per linestring `1, point count, closed, colour, x, y, z in micrometres…`;
 *   per arc `2, centre and radius in micrometres, start and sweep in nanoradians, normal in billionths, colour`.
 */
export function dxfElementChecksum(e: Omit<SourceElement, "checksum" | "identifier">): string {
  const hash = createHash("sha256");
  const curves = e.curves ?? [];
  hash.update(
    canonicalJson({
      v: 1,
      className: e.className,
      category: e.category ?? null,
      name: e.name ?? null,
      origin: e.origin.map(micro),
      properties: e.properties ?? null,
      meshes: e.meshes.length,
      curves: curves.length,
    }),
  );
  let size = 0;
  for (const m of e.meshes) size += 7 + m.positions.length + m.indices.length;
  for (const c of curves) size += c.kind === "linestring" ? 7 + c.points.length : 14;
  if (size === 0) return hash.digest("hex");
  const data = new Float64Array(size);
  let k = 0;
  const color = (c: RgbaColor | undefined) => {
    for (let i = 0; i < 4; i++) data[k++] = c ? Math.round(c[i] * 1e6) + 0 : -1;
  };
  for (const m of e.meshes) {
    data[k++] = 3;
    data[k++] = m.positions.length / 3;
    data[k++] = m.indices.length;
    color(m.color);
    for (let i = 0; i < m.positions.length; i++) data[k++] = Math.round(m.positions[i] * 1e6) + 0;
    for (let i = 0; i < m.indices.length; i++) data[k++] = m.indices[i];
  }
  for (const c of curves) {
    if (c.kind === "linestring") {
      data[k++] = 1;
      data[k++] = c.points.length / 3;
      data[k++] = c.closed === true ? 1 : 0;
      color(c.color);
      for (let i = 0; i < c.points.length; i++) data[k++] = Math.round(c.points[i] * 1e6) + 0;
    } else {
      data[k++] = 2;
      for (let i = 0; i < 3; i++) data[k++] = Math.round(c.center[i] * 1e6) + 0;
      data[k++] = Math.round(c.radius * 1e6) + 0;
      data[k++] = Math.round(c.startAngle * 1e9) + 0;
      data[k++] = Math.round(c.sweepAngle * 1e9) + 0;
      for (let i = 0; i < 3; i++) data[k++] = Math.round(c.normal[i] * 1e9) + 0;
      color(c.color);
    }
  }
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  hash.update(LITTLE_ENDIAN ? buf : Buffer.from(buf).swap64());
  return hash.digest("hex");
}

// ---------------------------------------------------------------------------------------------------------
// Georeference (GEODATA)
// ---------------------------------------------------------------------------------------------------------

/** CS-MAP coordinate system names (AutoCAD's library) of common projected CRSs → EPSG, when the XML has no alias. */
function epsgFromCsMapName(name: string): number | undefined {
  const known: Record<string, number> = {
    "OSGB1936.NATIONALGRID": 27700,
    BRITISHNATGRID: 27700,
    "WORLD-MERCATOR": 3395,
    "WGS84.PSEUDOMERCATOR": 3857,
    "PSEUDO-MERCATOR": 3857,
    "AMERSFOORT.RDNEW": 28992,
    "RGF93.LAMBERT-93": 2154,
    "ETRS89.LAEA": 3035,
  };
  const upper = name.trim().toUpperCase();
  if (known[upper] !== undefined) return known[upper];
  let m = /^UTM84-(\d{1,2})([NS])$/.exec(upper);
  if (m) return (m[2] === "N" ? 32600 : 32700) + Number(m[1]);
  m = /^(?:ETRS89|ETRF89)\.UTM-(\d{1,2})N$/.exec(upper);
  if (m && Number(m[1]) >= 28 && Number(m[1]) <= 38) return 25800 + Number(m[1]);
  m = /^UTM83-(\d{1,2})$/.exec(upper);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 23) return 26900 + Number(m[1]);
  m = /^UTM27-(\d{1,2})$/.exec(upper);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 22) return 26700 + Number(m[1]);
  return undefined;
}

function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}(?:\\s[^>]*)?>([^<]*)</${tag}>`, "i").exec(xml);
  return m ? m[1].trim() : undefined;
}

/**
 * EPSG code and name of the projected CRS in a GEODATA coordinate system definition (MapGuide/CS-MAP XML):
 * an `<Alias id="…" type="CoordinateSystem">` in the `EPSG Code` namespace, else a `EPSG:nnnn` mention, else a
 * well-known CS-MAP name. Throws with the reason when there is none or the CRS is not projected.
 */
function crsOfDefinition(xml: string): { epsg: number; crsName?: string } {
  const projected = /<ProjectedCoordinateSystem\b[^>]*\bid="([^"]*)"/i.exec(xml);
  const name = projected ? (xmlText(xml.slice(projected.index), "Name") ?? projected[1]) : undefined;
  if (!projected) {
    if (/<GeographicCoordinateSystem\b/i.test(xml))
      throw new Error("the coordinate system is geographic (latitude/longitude), not projected");
    throw new Error(
      xml.trim() === ""
        ? "the coordinate system definition is empty"
        : "no projected coordinate system in the definition",
    );
  }
  for (const alias of xml.matchAll(/<Alias\b([^>]*)>([\s\S]*?)<\/Alias>/gi)) {
    const attrs = alias[1];
    if (!/\btype="CoordinateSystem"/i.test(attrs)) continue;
    const ns = xmlText(alias[2], "Namespace") ?? "";
    const id = /\bid="(\d+)"/.exec(attrs)?.[1];
    const objectId = xmlText(alias[2], "ObjectId");
    if (id && /epsg/i.test(ns) && (!objectId || objectId === projected[1])) return { epsg: Number(id), crsName: name };
  }
  const mention = /EPSG\s*[:=]\s*(\d{4,5})/i.exec(xml);
  if (mention) return { epsg: Number(mention[1]), crsName: name };
  const known = epsgFromCsMapName(projected[1]) ?? (name ? epsgFromCsMapName(name) : undefined);
  if (known !== undefined) return { epsg: known, crsName: name };
  throw new Error(`no EPSG code for the coordinate system ${JSON.stringify(name ?? projected[1])}`);
}

/**
 * The georeference of a GEODATA object (AutoCAD geographic location, "local grid" coordinate type).
 *
 * GEODATA says: the design point D (group 10/20/30, drawing units) lies at the reference point R (11/21/31, CRS
 * metres); drawing units times the horizontal unit scale s (40) are metres; the north direction (12/22) is the
 * drawing vector that points to grid north. So a drawing point p maps to
 *   CRS = R + s · Rot(θ) · (p − D),   θ = π/2 − atan2(north.y, north.x)
 * (θ turns the drawing's north direction onto grid north, +y; it is the counter-clockwise angle of the drawing x axis
 * from grid east). The engineering coordinates of this connector are q = u · p (u = metres per drawing unit from
 * $INSUNITS), hence CRS = (s/u) · Rot(θ) · q + (R − s · Rot(θ) · D), i.e. the map conversion of the contract:
 *   eastings = Rx − s·(cosθ·Dx − sinθ·Dy), northings = Ry − s·(sinθ·Dx + cosθ·Dy),
 *   orthogonalHeight = Rz − s_v·Dz (s_v: vertical unit scale, group 41), rotation = θ, scale = s/u.
 * This is the transformation ezdxf's `GeoData.get_crs_transformation` applies (translate −D, scale s, rotate θ,
 * translate R).
 */
function readGeodata(rec: RawRecord, unitScale: number, tally: WarningTally): Georeference | undefined {
  const unreadable = (reason: string) => {
    tally.add(
      "GeoreferenceUnreadable",
      "GEODATA",
      () => `the GEODATA object (line ${rec.line}) could not be used as a georeference: ${reason}`,
    );
    return undefined;
  };
  const start = rec.groups.findIndex((g) => g[0] === 100 && g[1] === "AcDbGeoData");
  const groups = start >= 0 ? rec.groups.slice(start + 1) : rec.groups;
  const first = new Map<number, string>();
  const xmlChunks: string[] = [];
  for (const [code, value] of groups) {
    if (code === 301 || code === 303) xmlChunks.push(value);
    else if (!first.has(code)) first.set(code, value);
  }
  const num = (code: number, fallback?: number): number | undefined => {
    const v = first.get(code);
    if (v === undefined) return fallback;
    const n = Number.parseFloat(v);
    return Number.isFinite(n) ? n : undefined;
  };
  const version = num(90, 2)!;
  if (version < 2)
    return unreadable("GEODATA version 1 (AutoCAD 2009) stores its points with other group codes and is not supported");
  const type = num(70, 3);
  if (type !== 1) {
    const names: Record<number, string> = { 0: "unknown", 2: "projected grid", 3: "geographic (latitude/longitude)" };
    return unreadable(
      `coordinate type ${type} (${names[type ?? -1] ?? "invalid"}) is not supported; only local grid (1) is`,
    );
  }
  const d: Vec3 = [num(10, 0)!, num(20, 0)!, num(30, 0)!];
  const r: Vec3 = [num(11, 0)!, num(21, 0)!, num(31, 0)!];
  const s = num(40, 1);
  const sv = num(41, s);
  const north: [number, number] = [num(12, 0)!, num(22, 1)!];
  if (![...d, ...r, ...north].every(Number.isFinite))
    return unreadable("a design point, reference point or north direction value is not a number");
  if (!finite(s) || s <= 0 || !finite(sv) || sv <= 0)
    return unreadable(`horizontal unit scale ${first.get(40)} is not a positive number`);
  if (Math.hypot(north[0], north[1]) < 1e-12) return unreadable("the north direction is a zero vector");
  const xml = decodeDxfString(xmlChunks.join(""));
  let crs: { epsg: number; crsName?: string };
  try {
    crs = crsOfDefinition(xml);
  } catch (e) {
    return unreadable(errorText(e));
  }
  const approximations: string[] = [];
  const method = num(95, 1);
  if (method !== 1)
    approximations.push(`scale estimation method ${method} (user scale factor ${first.get(141) ?? "1"})`);
  if ((num(294, 0) ?? 0) !== 0) approximations.push(`sea level correction (elevation ${first.get(142) ?? "0"})`);
  const up: Vec3 = [num(210, 0)!, num(220, 0)!, num(230, 1)!];
  const upUnit = normalize(up);
  if (!upUnit || Math.abs(upUnit[2] - 1) > 1e-9) approximations.push(`up direction ${up.join(",")}`);
  if (approximations.length > 0) {
    tally.add(
      "GeoreferenceApproximate",
      "GEODATA",
      () =>
        `GEODATA uses ${approximations.join(", ")}, which is not applied; the georeference is the plain local-grid conversion`,
    );
  }
  const theta = Math.PI / 2 - Math.atan2(north[1], north[0]);
  const rotation = Math.atan2(Math.sin(theta), Math.cos(theta)); // (−π, π]
  const cos = Math.cos(rotation);
  const sin = Math.sin(rotation);
  const scale = s / unitScale;
  if (Math.abs(scale - 1) > 1e-9) {
    tally.add(
      "GeoreferenceUnitMismatch",
      "GEODATA",
      () =>
        `GEODATA's horizontal unit scale (${s} m per drawing unit) differs from $INSUNITS (${unitScale} m); the georeference scale is ${scale}`,
    );
  }
  return {
    kind: "projected",
    epsg: crs.epsg,
    ...(crs.crsName !== undefined ? { crsName: crs.crsName } : {}),
    eastings: r[0] - s * (cos * d[0] - sin * d[1]),
    northings: r[1] - s * (sin * d[0] + cos * d[1]),
    orthogonalHeight: r[2] - sv * d[2],
    rotation,
    scale,
    origin: "DXF GEODATA",
  };
}

// ---------------------------------------------------------------------------------------------------------
// Entities → elements
// ---------------------------------------------------------------------------------------------------------

/** What the raw scan adds to a dxf-parser entity (or what can be recovered from dxf-parser alone). */
interface Extras {
  /** Entity handle (group 5), upper case; undefined when the record has none. */
  handle?: string;
  /** ACI colour (group 62): 0 BYBLOCK, 256 BYLAYER, absent = BYLAYER. */
  aci?: number;
  /** True colour 0xRRGGBB (group 420). */
  trueColor?: number;
  /** Extrusion direction (210/220/230). */
  extrusion?: Vec3;
  paperSpace: boolean;
  raw?: RawRecord;
}

interface DrawContext {
  /** Local (block or WCS) coordinates → world metres. */
  m: Affine;
  /** Colour that BYBLOCK entities take. */
  byBlock: RgbaColor;
  /** Layer that entities on layer "0" take inside a block reference (for BYLAYER colour). */
  parentLayer?: string;
  depth: number;
  /** Names of the blocks being expanded (cycle detection). */
  stack: string[];
}

type AnyEntity = IEntity & Record<string, unknown>;

function entityPoint(e: AnyEntity, key: string): Vec3 | undefined {
  return vec(e[key] as Partial<IPoint> | undefined);
}

class DxfReader {
  private readonly extrasByEntity = new Map<IEntity, RawRecord>();
  private readonly extrasCache = new Map<IEntity, Extras>();
  private readonly usedBlocks = new Set<string>();
  private readonly layerColors = new Map<string, RgbaColor>();
  readonly tally = new WarningTally();

  constructor(
    private readonly dxf: IDxf,
    private readonly raw: RawScan,
    private readonly unitScale: number,
  ) {
    if (!this.link(dxf.entities ?? [], raw.entities)) {
      this.tally.add(
        "ReaderMismatch",
        "ENTITIES",
        () =>
          "dxf-parser's entity list did not match the raw ENTITIES records; handles, colours and extrusions come from dxf-parser alone",
      );
    }
    for (const [name, block] of Object.entries(dxf.blocks ?? {})) {
      const rawBlock = raw.blocks.get(name);
      if (rawBlock && !this.link(block.entities ?? [], rawBlock.records)) {
        this.tally.add(
          "ReaderMismatch",
          `block ${name}`,
          () => `dxf-parser's entities of block ${name} did not match the raw BLOCKS records`,
        );
      }
    }
    for (const [name, layer] of Object.entries(dxf.tables?.layer?.layers ?? {})) {
      const c = aciColor(Math.abs(layer?.colorIndex ?? 7));
      if (c) this.layerColors.set(name, c);
    }
  }

  /** Pairs dxf-parser's entities with the raw records of the types it decodes (same order). */
  private link(parsed: IEntity[], records: RawRecord[]): boolean {
    const rs = records.filter((r) => PARSER_TYPES.has(r.type));
    if (rs.length !== parsed.length || rs.some((r, i) => r.type !== parsed[i].type)) return false;
    rs.forEach((r, i) => this.extrasByEntity.set(parsed[i], r));
    return true;
  }

  extras(e: IEntity): Extras {
    let ex = this.extrasCache.get(e);
    if (!ex) {
      ex = this.readExtras(e);
      this.extrasCache.set(e, ex);
    }
    return ex;
  }

  private readExtras(e: IEntity): Extras {
    const raw = this.extrasByEntity.get(e);
    const ae = e as AnyEntity;
    if (raw) {
      const ex: Extras = { paperSpace: firstGroup(raw, 67) === "1", raw };
      const h = firstGroup(raw, 5);
      if (h) ex.handle = h.toUpperCase();
      ex.aci = intGroup(raw, 62);
      ex.trueColor = intGroup(raw, 420);
      const x = floatGroup(raw, 210);
      const y = floatGroup(raw, 220);
      const z = floatGroup(raw, 230);
      if (x !== undefined || y !== undefined || z !== undefined) ex.extrusion = [x ?? 0, y ?? 0, z ?? 1];
      return ex;
    }
    const ex: Extras = { paperSpace: e.inPaperSpace === true };
    const handle: unknown = (e as { handle?: unknown }).handle;
    if (typeof handle === "string" && handle !== "") ex.handle = handle.toUpperCase();
    if (finite(e.colorIndex)) ex.aci = e.colorIndex;
    if (
      finite(e.color) &&
      (!finite(e.colorIndex) ||
        aciColor(Math.abs(e.colorIndex)) === undefined ||
        colorHex(aciColor(Math.abs(e.colorIndex))!) !== colorHex(rgbColor(e.color)))
    ) {
      ex.trueColor = e.color;
    }
    const ext = entityPoint(ae, "extrusionDirection");
    if (ext) ex.extrusion = ext;
    else if (finite(ae.extrusionDirectionX) || finite(ae.extrusionDirectionY) || finite(ae.extrusionDirectionZ)) {
      ex.extrusion = [
        Number(ae.extrusionDirectionX ?? 0),
        Number(ae.extrusionDirectionY ?? 0),
        Number(ae.extrusionDirectionZ ?? 1),
      ];
    }
    return ex;
  }

  private layerColor(layer: string): RgbaColor {
    return this.layerColors.get(layer) ?? WHITE;
  }

  private effectiveLayer(e: IEntity, ctx: DrawContext): string {
    const layer = e.layer ?? "0";
    return layer === "0" && ctx.parentLayer !== undefined ? ctx.parentLayer : layer;
  }

  /** Resolved display colour: true colour, else ACI, BYBLOCK (the reference's colour) or BYLAYER (the layer's). */
  colorOf(e: IEntity, ex: Extras, ctx: DrawContext): RgbaColor {
    if (ex.trueColor !== undefined) return rgbColor(ex.trueColor);
    const aci = ex.aci;
    if (aci === 0) return ctx.byBlock;
    if (aci === undefined || Math.abs(aci) === 256) return this.layerColor(this.effectiveLayer(e, ctx));
    return aciColor(Math.abs(aci)) ?? this.layerColor(this.effectiveLayer(e, ctx));
  }

  /** XREF blocks: flag 4 (external reference) or 8 (overlay; some writers set it without 4). */
  isXref(name: string): boolean {
    const block = this.dxf.blocks?.[name];
    return block !== undefined && ((block.type ?? 0) & XREF_FLAGS) !== 0;
  }

  /** Draws one entity (local coordinates per `ctx.m`) into `sink`. Text and attribute definitions draw nothing. */
  draw(e: IEntity, ctx: DrawContext, sink: GeometrySink): void {
    const ex = this.extras(e);
    const color = this.colorOf(e, ex, ctx);
    const m = ctx.m;
    switch (e.type) {
      case "LINE": {
        const v = (e as ILineEntity).vertices ?? [];
        const a = vec(v[0]);
        const b = vec(v[1]);
        if (!a || !b) sink.dropped++;
        else sink.linestring([apply(m, a), apply(m, b)], false, color);
        return;
      }
      case "POINT": {
        const p = vec((e as IPointEntity).position);
        if (!p) sink.dropped++;
        else sink.linestring([apply(m, p)], false, color);
        return;
      }
      case "CIRCLE":
      case "ARC": {
        const c = e as ICircleEntity | IArcEntity;
        const center = vec(c.center);
        if (!center || !finite(c.radius)) {
          sink.dropped++;
          return;
        }
        const mo = multiply(m, ocsMatrix(ex.extrusion));
        if (e.type === "CIRCLE") sink.arc(mo, center, [1, 0, 0], [0, 1, 0], c.radius, 0, TWO_PI, color);
        else {
          const start = finite(c.startAngle) ? c.startAngle : 0;
          const end = finite(c.endAngle) ? c.endAngle : TWO_PI;
          sink.arc(mo, center, [1, 0, 0], [0, 1, 0], c.radius, start, ccwSweep(start, end), color);
        }
        return;
      }
      case "ELLIPSE": {
        const el = e as IEllipseEntity;
        const center = vec(el.center);
        const major = vec(el.majorAxisEndPoint);
        const n = normalize(ex.extrusion ?? [0, 0, 1]);
        if (!center || !major || !n || !finite(el.axisRatio)) {
          sink.dropped++;
          return;
        }
        const minor = scaled(cross(n, major), el.axisRatio);
        const start = finite(el.startAngle) ? el.startAngle : 0;
        const end = finite(el.endAngle) ? el.endAngle : TWO_PI;
        const sweep = ccwSweep(start, end);
        const full = sweep >= TWO_PI - 1e-12;
        const segs = segmentsFor(sweep);
        const pts: Vec3[] = [];
        for (let k = 0; k <= (full ? segs - 1 : segs); k++) {
          const t = start + (sweep * k) / segs;
          pts.push(apply(m, added(center, added(scaled(major, Math.cos(t)), scaled(minor, Math.sin(t))))));
        }
        sink.linestring(pts, full, color);
        return;
      }
      case "LWPOLYLINE": {
        const pl = e as ILwpolylineEntity;
        const verts = (pl.vertices ?? []).filter((v) => finite(v.x) && finite(v.y));
        if (verts.length === 0) {
          sink.dropped++;
          return;
        }
        const mo = multiply(m, ocsMatrix(ex.extrusion));
        const elevation = finite(pl.elevation) ? pl.elevation : 0;
        const pts2 = bulgePoints(
          verts.map((v) => ({ x: v.x, y: v.y, bulge: v.bulge ?? 0 })),
          pl.shape === true,
        );
        sink.linestring(
          pts2.map(([x, y]) => apply(mo, [x, y, elevation])),
          pl.shape === true,
          color,
        );
        return;
      }
      case "POLYLINE":
        this.drawPolyline(e as IPolylineEntity, ex, m, color, sink);
        return;
      case "SPLINE": {
        const sp = e as ISplineEntity;
        const ctrl = (sp.controlPoints ?? []).map((p) => vec(p)).filter((p): p is Vec3 => p !== undefined);
        const weights = ex.raw
          ? ex.raw.groups.filter((g) => g[0] === 41).map((g) => Number.parseFloat(g[1]))
          : undefined;
        let pts = evaluateSpline(ctrl, sp.knotValues ?? [], sp.degreeOfSplineCurve ?? 3, weights);
        if (!pts) {
          const fit = (sp.fitPoints ?? []).map((p) => vec(p)).filter((p): p is Vec3 => p !== undefined);
          pts = fit.length >= 2 ? fit : ctrl;
          if (pts.length >= 2) {
            this.tally.add(
              "ApproximatedGeometry",
              "SPLINE",
              (n) =>
                `${plural(n, "SPLINE entity", "SPLINE entities")} had no usable knot vector and ${n === 1 ? "was" : "were"} drawn through ${n === 1 ? "its" : "their"} fit or control points`,
            );
          }
        }
        if (pts.length === 0) sink.dropped++;
        else
          sink.linestring(
            pts.map((p) => apply(m, p)),
            false,
            color,
          );
        return;
      }
      case "3DFACE": {
        const v = ((e as I3DfaceEntity).vertices ?? [])
          .map((p) => vec(p))
          .filter((p): p is Vec3 => p !== undefined)
          .slice(0, 4);
        if (v.length < 3) {
          sink.dropped++;
          return;
        }
        const pts = v.map((p) => apply(m, p));
        sink.mesh(pts, pts.length === 4 && !samePoint(v[3], v[2]) ? [0, 1, 2, 0, 2, 3] : [0, 1, 2], color);
        return;
      }
      case "SOLID": {
        const sp = (e as ISolidEntity).points ?? [];
        const v = [0, 1, 2, 3].map((i) => vec(sp[i]));
        if (!v[0] || !v[1] || !v[2]) {
          sink.dropped++;
          return;
        }
        const mo = multiply(m, ocsMatrix(ex.extrusion));
        const quad = v[3] !== undefined && !samePoint(v[3], v[2]);
        const corners = (quad ? [v[0], v[1], v[2], v[3]!] : [v[0], v[1], v[2]]).map((p) => apply(mo, p));
        // SOLID corner order: 1-2-3-4 is drawn as the quad 1, 2, 4, 3
        sink.mesh(corners, quad ? [0, 1, 2, 1, 3, 2] : [0, 1, 2], color);
        return;
      }
      case "INSERT":
        this.drawInsert(e as IInsertEntity, ex, ctx, color, sink);
        return;
      case "DIMENSION": {
        const name = (e as IDimensionEntity).block;
        if (!name || !this.dxf.blocks?.[name]) return;
        const mo = multiply(m, ocsMatrix(ex.extrusion));
        this.drawBlock(name, mo, { ...ctx, byBlock: color, parentLayer: this.effectiveLayer(e, ctx) }, sink);
        return;
      }
      default:
        return; // TEXT, MTEXT, ATTDEF: no geometry; other types are never passed here
    }
  }

  private drawPolyline(pl: IPolylineEntity, ex: Extras, m: Affine, color: RgbaColor, sink: GeometrySink): void {
    const all = pl.vertices ?? [];
    if (pl.isPolyfaceMesh) {
      const coords = all.filter((v) => v.threeDPolylineMesh && v.polyfaceMeshVertex).map((v) => vec(v));
      const points = coords.map((p) => (p ? apply(m, p) : ([NaN, NaN, NaN] as Vec3)));
      const indices: number[] = [];
      for (const f of all.filter((v) => v.polyfaceMeshVertex && !v.threeDPolylineMesh)) {
        const idx = [f.faceA, f.faceB, f.faceC, f.faceD]
          .filter((i) => finite(i) && i !== 0)
          .map((i) => Math.abs(i) - 1);
        if (idx.length < 3 || idx.some((i) => i >= points.length)) continue;
        for (let k = 1; k + 1 < idx.length; k++) indices.push(idx[0], idx[k], idx[k + 1]);
      }
      if (indices.length === 0) sink.dropped++;
      else sink.mesh(points, indices, color);
      return;
    }
    if (pl.is3dPolygonMesh) {
      const coords = all.map((v) => vec(v));
      const rawM = ex.raw ? (intGroup(ex.raw, 71) ?? 0) : 0;
      const rawN = ex.raw ? (intGroup(ex.raw, 72) ?? 0) : 0;
      const smoothM = ex.raw ? (intGroup(ex.raw, 73) ?? 0) : 0;
      const smoothN = ex.raw ? (intGroup(ex.raw, 74) ?? 0) : 0;
      const [mm, nn] =
        rawM * rawN === coords.length
          ? [rawM, rawN]
          : smoothM * smoothN === coords.length
            ? [smoothM, smoothN]
            : [0, 0];
      if (mm < 2 || nn < 2) {
        sink.dropped++;
        return;
      }
      const closedM = pl.shape === true;
      const closedN = pl.is3dPolygonMeshClosed === true;
      const points = coords.map((p) => (p ? apply(m, p) : ([NaN, NaN, NaN] as Vec3)));
      const indices: number[] = [];
      for (let i = 0; i < (closedM ? mm : mm - 1); i++) {
        for (let j = 0; j < (closedN ? nn : nn - 1); j++) {
          const a = i * nn + j;
          const b = i * nn + ((j + 1) % nn);
          const c = ((i + 1) % mm) * nn + ((j + 1) % nn);
          const d = ((i + 1) % mm) * nn + j;
          indices.push(a, b, c, a, c, d);
        }
      }
      sink.mesh(points, indices, color);
      return;
    }
    // Spline-fit polylines: the fitted vertices (flag 8) are drawn, the control frame (flag 16) is not.
    const splineFit = all.some((v) => v.splineVertex);
    const verts = all.filter((v) => !(splineFit && v.splineControlPoint) && finite(v.x) && finite(v.y));
    if (verts.length === 0) {
      sink.dropped++;
      return;
    }
    const closed = pl.shape === true;
    if (pl.is3dPolyline) {
      sink.linestring(
        verts.map((v) => apply(m, [v.x, v.y, finite(v.z) ? v.z : 0])),
        closed,
        color,
      );
      return;
    }
    const mo = multiply(m, ocsMatrix(ex.extrusion));
    const elevation = (ex.raw ? floatGroup(ex.raw, 30) : undefined) ?? 0;
    const pts2 = bulgePoints(
      verts.map((v) => ({ x: v.x, y: v.y, bulge: v.bulge ?? 0 })),
      closed,
    );
    sink.linestring(
      pts2.map(([x, y]) => apply(mo, [x, y, elevation])),
      closed,
      color,
    );
  }

  /** Block reference transform: OCS · T(insertion) · Rz(rotation) · T(array offset) · S(scale) · T(−base point). */
  private drawInsert(ins: IInsertEntity, ex: Extras, ctx: DrawContext, color: RgbaColor, sink: GeometrySink): void {
    const name = ins.name;
    const block = name !== undefined ? this.dxf.blocks?.[name] : undefined;
    if (!block) {
      this.tally.add(
        "MissingBlock",
        name ?? "",
        (n) =>
          `${plural(n, "block reference")} to block ${JSON.stringify(name ?? "")}, which the file does not define, ${n === 1 ? "has" : "have"} no geometry`,
      );
      return;
    }
    if (this.isXref(name)) return; // the referenced file's content comes with its own sync
    if (ctx.stack.includes(name)) {
      this.tally.add(
        "RecursiveBlock",
        name,
        () => `block ${JSON.stringify(name)} contains a reference to itself; the inner reference was not drawn`,
      );
      return;
    }
    if (ctx.depth >= MAX_BLOCK_DEPTH) {
      this.tally.add(
        "BlockNestingTooDeep",
        name,
        () =>
          `block references nested deeper than ${MAX_BLOCK_DEPTH} levels (at block ${JSON.stringify(name)}) were not drawn`,
      );
      return;
    }
    const pos = vec(ins.position) ?? [0, 0, 0];
    const sx = finite(ins.xScale) ? ins.xScale : 1;
    const sy = finite(ins.yScale) ? ins.yScale : 1;
    const sz = finite(ins.zScale) ? ins.zScale : 1;
    const rot = ((finite(ins.rotation) ? ins.rotation : 0) * Math.PI) / 180;
    const cols = Math.max(1, Math.floor(finite(ins.columnCount) ? ins.columnCount : 1));
    const rows = Math.max(1, Math.floor(finite(ins.rowCount) ? ins.rowCount : 1));
    const cs = finite(ins.columnSpacing) ? ins.columnSpacing : 0;
    const rs = finite(ins.rowSpacing) ? ins.rowSpacing : 0;
    const base = vec(block.position) ?? [0, 0, 0];
    const head = multiply(
      multiply(multiply(ctx.m, ocsMatrix(ex.extrusion)), translation(pos[0], pos[1], pos[2])),
      rotationZ(rot),
    );
    const tail = multiply(scaling(sx, sy, sz), translation(-base[0], -base[1], -base[2]));
    let instances = 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        if (++instances > MAX_ARRAY_INSTANCES) {
          this.tally.add(
            "GeometryProblem",
            "MINSERT",
            () => `a block array of ${rows} x ${cols} references was cut at ${MAX_ARRAY_INSTANCES} instances`,
          );
          return;
        }
        const mi = multiply(multiply(head, translation(c * cs, r * rs, 0)), tail);
        this.drawBlock(
          name,
          mi,
          { m: mi, byBlock: color, parentLayer: this.effectiveLayer(ins, ctx), depth: ctx.depth + 1, stack: ctx.stack },
          sink,
        );
      }
    }
  }

  private drawBlock(name: string, m: Affine, ctx: DrawContext, sink: GeometrySink): void {
    const block: IBlock | undefined = this.dxf.blocks?.[name];
    if (!block) return;
    this.usedBlocks.add(name);
    const inner: DrawContext = { ...ctx, m, stack: [...ctx.stack, name] };
    for (const child of block.entities ?? []) {
      if (
        child.type === "INSERT" &&
        (child as IInsertEntity).name !== undefined &&
        this.isXref((child as IInsertEntity).name)
      )
        continue;
      this.draw(child, inner, sink);
    }
  }

  /** First TEXT/MTEXT of a block (the displayed text of a DIMENSION). */
  private blockText(name: string | undefined): string | undefined {
    for (const c of (name ? this.dxf.blocks?.[name]?.entities : undefined) ?? []) {
      if (c.type === "MTEXT") return mtextPlain((c as IMtextEntity).text ?? "");
      if (c.type === "TEXT") return plainText((c as ITextEntity).text ?? "");
    }
    return undefined;
  }

  /** Counts, per entity type, the entities of the used block definitions that draw nothing because they are not mapped. */
  unsupportedInUsedBlocks(): Map<string, { count: number; blocks: string[] }> {
    const result = new Map<string, { count: number; blocks: string[] }>();
    for (const name of [...this.usedBlocks].sort()) {
      for (const r of this.raw.blocks.get(name)?.records ?? []) {
        if (MAPPED_TYPES.has(r.type) || SILENT_IN_BLOCKS.has(r.type) || SUB_RECORDS.has(r.type)) continue;
        const item = result.get(r.type) ?? { count: 0, blocks: [] };
        item.count++;
        if (!item.blocks.includes(name)) item.blocks.push(name);
        result.set(r.type, item);
      }
    }
    return result;
  }

  /**
   * One element for a model-space entity, without identifier and checksum; undefined when it has no usable data
   * (then a `GeometryProblem` is tallied).
   */
  element(e: IEntity, ex: Extras): Omit<SourceElement, "identifier" | "checksum"> | undefined {
    const top: DrawContext = {
      m: scaling(this.unitScale, this.unitScale, this.unitScale),
      byBlock: WHITE,
      depth: 0,
      stack: [],
    };
    const u = this.unitScale;
    const layerRaw = e.layer ?? "0";
    const layer = decodeDxfString(layerRaw);
    const color = this.colorOf(e, ex, top);
    const sink = new GeometrySink();
    this.draw(e, top, sink);
    const properties: Record<string, unknown> = { layer, color: colorHex(color) };
    let name: string | undefined;
    let placement: Vec3 | undefined;
    switch (e.type) {
      case "TEXT": {
        const t = e as ITextEntity;
        const aligned = (finite(t.halign) && t.halign !== 0) || (finite(t.valign) && t.valign !== 0);
        const p = (aligned ? vec(t.endPoint) : undefined) ?? vec(t.startPoint);
        if (p) placement = apply(multiply(top.m, ocsMatrix(ex.extrusion)), p);
        const text = plainText(t.text ?? "");
        name = text || undefined;
        properties.text = text;
        if (finite(t.textHeight)) properties.height = micro(t.textHeight * u);
        properties.rotation = finite(t.rotation) ? t.rotation : 0;
        break;
      }
      case "MTEXT": {
        const t = e as IMtextEntity;
        const p = vec(t.position);
        if (p) placement = apply(top.m, p);
        const text = mtextPlain(t.text ?? "");
        name = text || undefined;
        properties.text = text;
        if (finite(t.height)) properties.height = micro(t.height * u);
        const dir = vec(t.directionVector);
        properties.rotation = dir
          ? micro((Math.atan2(dir[1], dir[0]) * 180) / Math.PI)
          : finite(t.rotation)
            ? t.rotation
            : 0;
        if (finite(t.attachmentPoint)) properties.attachmentPoint = t.attachmentPoint;
        break;
      }
      case "POINT": {
        const p = vec((e as IPointEntity).position);
        if (p) placement = apply(top.m, p);
        break;
      }
      case "INSERT": {
        const ins = e as IInsertEntity;
        const p = vec(ins.position);
        if (p) placement = apply(multiply(top.m, ocsMatrix(ex.extrusion)), p);
        name = decodeDxfString(ins.name ?? "") || undefined;
        properties.block = name ?? "";
        properties.scale = [
          finite(ins.xScale) ? ins.xScale : 1,
          finite(ins.yScale) ? ins.yScale : 1,
          finite(ins.zScale) ? ins.zScale : 1,
        ];
        properties.rotation = finite(ins.rotation) ? ins.rotation : 0;
        if ((ins.columnCount ?? 1) > 1 || (ins.rowCount ?? 1) > 1) {
          properties.array = {
            columns: ins.columnCount ?? 1,
            rows: ins.rowCount ?? 1,
            columnSpacing: micro((ins.columnSpacing ?? 0) * u),
            rowSpacing: micro((ins.rowSpacing ?? 0) * u),
          };
        }
        const attribs = (ex.raw?.children ?? []).filter((c) => c.type === "ATTRIB");
        if (attribs.length > 0) {
          const values: Record<string, string> = {};
          for (const a of attribs) {
            const tag = firstGroup(a, 2);
            if (tag !== undefined) values[decodeDxfString(tag)] = plainText(firstGroup(a, 1) ?? "");
          }
          properties.attributes = values;
        }
        break;
      }
      case "DIMENSION": {
        const d = e as IDimensionEntity;
        const p = vec(d.anchorPoint);
        if (p) placement = apply(top.m, p);
        properties.block = d.block ?? "";
        if (finite(d.dimensionType)) properties.dimensionType = d.dimensionType & 7;
        if (finite(d.actualMeasurement)) properties.measurement = d.actualMeasurement;
        const override = d.text !== undefined && d.text !== "" && d.text !== "<>" ? mtextPlain(d.text) : undefined;
        name =
          override ??
          this.blockText(d.block) ??
          (finite(d.actualMeasurement) ? String(d.actualMeasurement) : undefined);
        if (!d.block || !this.dxf.blocks?.[d.block]) {
          this.tally.add(
            "GeometryProblem",
            "DIMENSION",
            (n) =>
              `${plural(n, "DIMENSION entity", "DIMENSION entities")} without a dimension block ${n === 1 ? "was" : "were"} imported without geometry`,
          );
        }
        break;
      }
      default:
        break;
    }
    if (sink.dropped > 0) {
      this.tally.add(
        "GeometryProblem",
        e.type,
        (n, ex2) =>
          `${plural(n, "piece")} of ${e.type} geometry with missing or invalid coordinates ${n === 1 ? "was" : "were"} left out (${listed(ex2, n)})`,
        ex.handle ?? e.type,
        sink.dropped,
      );
    }
    const low = lowCorner(sink.curves, sink.meshes);
    const pointLike = e.type === "TEXT" || e.type === "MTEXT" || e.type === "POINT";
    const origin = pointLike ? (placement ?? low) : (low ?? placement);
    if (!origin || !origin.every(Number.isFinite)) return undefined;
    const element: Omit<SourceElement, "identifier" | "checksum"> = {
      className: e.type,
      category: layerCategory(layer),
      origin: [micro(origin[0]), micro(origin[1]), micro(origin[2])],
      meshes: sink.meshes,
      curves: sink.curves,
      properties,
    };
    if (name !== undefined) element.name = name;
    return element;
  }
}

/**
 * Category code value for a layer name: iModel category names may not contain `< > \\ / . " ? * | , ' = &` or tabs /
 * line breaks (the native layer refuses them with `InvalidName`), while DXF layer names may contain `.`, `'` and `&`;
 * each such character becomes `_` (the exact layer name stays in `properties.layer`). An empty name becomes `0`.
 */
export function layerCategory(layer: string): string {
  const name = layer.replace(/[<>\\/."?*|,'=&\t\r\n]/g, "_");
  return name.trim() === "" ? "0" : name;
}

function samePoint(a: Vec3, b: Vec3): boolean {
  return Math.abs(a[0] - b[0]) < 1e-12 && Math.abs(a[1] - b[1]) < 1e-12 && Math.abs(a[2] - b[2]) < 1e-12;
}

// ---------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------

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
  if (buf.toString("latin1", 0, Math.min(buf.length, 4096)).trim() === "") return "the file contains only white space";
  return undefined;
}

/** Synchronous part of {@link parseDxf}, on the file's bytes. */
function parseDxfBytes(buf: Buffer, fileName: string): ParsedFile {
  const invalid = (reason: string) =>
    new SourceFileError("InvalidFileFormat", `${fileName}: not a readable DXF file (${reason})`);
  const pre = precheck(buf);
  if (pre) throw invalid(pre);
  let text = decodeDxfBytes(buf);
  let raw: RawScan;
  try {
    raw = scanGroups(text.split(/\r\n|\r|\n/)); // the line array is garbage before dxf-parser splits its own
  } catch (e) {
    throw invalid(errorText(e));
  }
  const earlyWarnings: TaskWarning[] = [];
  if (!raw.sawEof) {
    if (!raw.endedAfterSection) throw invalid("the file ends inside a section, before the EOF marker (truncated?)");
    text = `${text.replace(/[\r\n\s]+$/, "")}\n0\nEOF\n`;
    earlyWarnings.push({
      code: "MissingEof",
      message: `${fileName}: the file has no EOF marker after its last section; it was read as if it had one`,
      target: fileName,
    });
  }

  const messages = new Map<string, number>();
  const sinkMessage = (t: string) => {
    const line = t.trim();
    if (line) messages.set(line, (messages.get(line) ?? 0) + 1);
  };
  let dxf: IDxf;
  try {
    const parsed = withCapturedOutput(sinkMessage, () => new DxfParser().parseSync(text));
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

  // Raw counts: paper space and entity types that are not imported
  const paper = new Map<string, number>();
  const unsupported = new Map<string, number>();
  for (const r of raw.entities) {
    if (SUB_RECORDS.has(r.type)) continue;
    if (firstGroup(r, 67) === "1") paper.set(r.type, (paper.get(r.type) ?? 0) + 1);
    else if (!MAPPED_TYPES.has(r.type)) unsupported.set(r.type, (unsupported.get(r.type) ?? 0) + 1);
  }

  const elements: SourceElement[] = [];
  const seen = new Map<string, number>();
  for (const e of dxf.entities ?? []) {
    const ex = reader.extras(e);
    if (ex.paperSpace) continue; // counted from the raw records
    if (!MAPPED_TYPES.has(e.type)) continue; // counted from the raw records
    if (e.type === "INSERT" && (e as IInsertEntity).name !== undefined && reader.isXref((e as IInsertEntity).name))
      continue;
    const body = reader.element(e, ex);
    if (!body) {
      tally.add(
        "GeometryProblem",
        `${e.type} skipped`,
        (n, list) =>
          `${plural(n, `${e.type} entity`, `${e.type} entities`)} without usable coordinates ${n === 1 ? "was" : "were"} not imported (${listed(list, n)})`,
        ex.handle ?? e.type,
      );
      continue;
    }
    const checksum = dxfElementChecksum(body);
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
          ex.handle,
        );
      }
    } else {
      const base = `${e.type}-${checksum.slice(0, 16)}`;
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

  warnings.push(...tally.toWarnings());
  for (const [line, count] of messages) {
    warnings.push({
      code: "ReaderMessage",
      message: `${fileName}: dxf-parser reported ${JSON.stringify(line)}${count > 1 ? ` (${count} times)` : ""}`,
      target: fileName,
      ...(count > 1 ? { count } : {}),
    });
  }

  const result: ParsedFile = { schema: releaseOf(version), elements, warnings, references };
  if (georeference) result.georeference = georeference;
  return result;
}

/**
 * Parses an ASCII DXF file (R12 … R2018) into connector elements.
 *
 * - Elements: one per model-space entity of type LINE, LWPOLYLINE, POLYLINE (2D, 3D, polyface and polygon meshes),
 *   ARC, CIRCLE, ELLIPSE, SPLINE, POINT, TEXT, MTEXT, INSERT, DIMENSION, 3DFACE and SOLID.
 *   `identifier` = entity handle (upper case). A missing handle gives `<TYPE>-<16 hex of the checksum>` (warning
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
 *   space (group 67 = 1). INSERTs of XREF blocks are skipped silently (the referenced file is synchronized on its own).
 * - `references`: one per XREF block (block flag 4 or 8; not nested `a|b` ones): `path` as saved, `Overlay` when flag 8 is
 *   set, else `Attach`, `name` = block name.
 * - `georeference`: from the GEODATA object of the OBJECTS section (local-grid coordinate type) with an EPSG code
 *   found in its coordinate-system XML (see {@link readGeodata} for the map conversion); otherwise a
 *   `GeoreferenceUnreadable` warning.
 * - `checksum` = {@link dxfElementChecksum} (the IFC connector's canonical form, extended with category and curves);
 *   stable across runs.
 * - dxf-parser's console output becomes `ReaderMessage` warnings; nothing is printed.
 *
 * @param absolutePath absolute path of the .dxf file
 * @throws SourceFileError `FileNotFound` when the file does not exist, `FileUnreadable` when it cannot be read,
 *   `InvalidFileFormat` ("<file name>: not a readable DXF file (<reason>)") when it is empty, binary DXF, not DXF
 *   group codes, truncated, or dxf-parser throws on it.
 */
export async function parseDxf(absolutePath: string): Promise<ParsedFile> {
  const fileName = path.basename(absolutePath);
  let buf: Buffer;
  try {
    buf = await fsp.readFile(absolutePath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR")
      throw new SourceFileError("FileNotFound", `${fileName}: file not found (${absolutePath})`);
    throw new SourceFileError("FileUnreadable", `${fileName}: cannot be read (${code ?? errorText(e)})`);
  }
  return parseDxfBytes(buf, fileName);
}
