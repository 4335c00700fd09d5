/**
 * The raw group scan: a light read of the DXF group-code structure (same file text, same record order as dxf-parser)
 * that validates the file and keeps what dxf-parser drops or never reads: entity types it skips, paper-space flags,
 * extrusions, true colours, SPLINE weights, polygon-mesh sizes, ATTRIBs, XREF block flags and GEODATA objects; and
 * checks the file's structure for completeness (README "Synchronization": every `0 SECTION` closed by `0 ENDSEC`, the
 * `0 EOF` marker at the end).
 */
import { SUB_RECORDS } from "./entity-types";

/** One group: code and value (value trimmed, as dxf-parser reads it). */
export type RawGroup = [number, string];

/** One record (`0 TYPE` and its groups) of the ENTITIES, BLOCKS or OBJECTS section. */
export interface RawRecord {
  type: string;
  /** 1-based line of the record's `0` group. */
  line: number;
  /** The record's own groups with a code in KEPT_CODES (all of them for GEODATA), up to an embedded object (group 101). */
  groups: RawGroup[];
  /** VERTEX / ATTRIB / SEQEND records that follow a POLYLINE or INSERT. */
  children: RawRecord[];
  embedded?: boolean;
}

/** A BLOCK of the BLOCKS section, with its records. */
export interface RawBlock {
  name: string;
  /** Group 70 of the BLOCK record: 4 = XREF, 8 = overlay, 16 = externally dependent, 32 = resolved, … */
  flags: number;
  /** Group 1 of the BLOCK record: the XREF path as saved. */
  xrefPath: string;
  records: RawRecord[];
}

/** What {@link scanGroups} keeps of a file. */
export interface RawScan {
  entities: RawRecord[];
  blocks: Map<string, RawBlock>;
  /** GEODATA records of the OBJECTS section. */
  geodata: RawRecord[];
  sawEof: boolean;
  /**
   * What makes the file incomplete, each naming what is missing and where (1-based lines): a section without its
   * `0 ENDSEC`, an `0 ENDSEC` without a section, no `0 EOF` marker, a group code without its value at the end, a last
   * line cut inside its group code, no `0 SECTION` yet, or (in a file without its EOF marker) a line that is no group
   * code. Empty for a complete file.
   */
  incomplete: string[];
}

/**
 * Group codes kept from entity records (the rest is dxf-parser's job; keeping every group would double the memory of
 * large files): 1/2 ATTRIB value/tag, 5 handle, 6 linetype, 30 POLYLINE elevation, 41 SPLINE weights, 62/420 colour,
 * 67 paper space, 71–74 polygon mesh sizes, 210/220/230 extrusion, 370 lineweight, and the extended data (XDATA,
 * 1000–1071). GEODATA records keep all their groups.
 */
const KEPT_CODES = new Set([1, 2, 5, 6, 30, 41, 62, 67, 71, 72, 73, 74, 210, 220, 230, 370, 420]);

/** Extended data (XDATA) group codes: 1000–1071, all kept (application name 1001 and its values). */
const XDATA_FIRST_CODE = 1000;

/** The text is not DXF group codes; the message says why. */
export class DxfFormatError extends Error {}

/** Value of the record's first group with `code`, if kept. */
export function firstGroup(r: RawRecord, code: number): string | undefined {
  for (const g of r.groups) if (g[0] === code) return g[1];
  return undefined;
}

/** Integer value of the record's first group with `code`; undefined when absent or not a number. */
export function intGroup(r: RawRecord, code: number): number | undefined {
  const v = firstGroup(r, code);
  if (v === undefined) return undefined;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? n : undefined;
}

/** Number value of the record's first group with `code`; undefined when absent or not a number. */
export function floatGroup(r: RawRecord, code: number): number | undefined {
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

/** Whether the last lines that are not blank are the group `0` / `EOF`: only a writer that finished writes them. */
function endsWithEof(lines: string[]): boolean {
  const last = lastNonBlankLine(lines);
  return last >= 2 && lines[last - 1].trim() === "EOF" && groupCode(lines[last - 2]) === 0;
}

/** 1-based number of the last line that is not blank; 0 when there is none. */
function lastNonBlankLine(lines: string[]): number {
  let k = lines.length;
  while (k > 0 && lines[k - 1].trim() === "") k--;
  return k;
}

/**
 * Reads the group-code structure of the whole file: validates that it is a sequence of (integer code, value) line
 * pairs with sections, and keeps the records of ENTITIES and BLOCKS (in file order, the order dxf-parser also
 * follows) and the GEODATA objects.
 *
 * A file without the `0` / `EOF` marker at its end was cut off (README "Synchronization": completeness check): what it
 * lacks goes to `incomplete`, and so does a line that is no group code in it, wherever the cut fell (the end of the
 * file may cut a group code, the blanks before the first `0`, or the first `0` / `SECTION`); only a file that ends
 * with its EOF marker, or whose first line is no group code, is not DXF for such a line.
 * @returns the scan; `incomplete` names what is missing and where (1-based lines), empty for a complete file.
 * @throws DxfFormatError with the reason when the text is not DXF: its first line is neither a group code nor blank,
 *   it has no `0` / `SECTION` although it ends with its EOF marker, or it ends with its EOF marker and holds a line
 *   that is no group code.
 */
export function scanGroups(lines: string[]): RawScan {
  const scan: RawScan = { entities: [], blocks: new Map(), geodata: [], sawEof: false, incomplete: [] };
  let sectionCount = 0;
  let section: string | undefined;
  /** The section opened by the last `0 SECTION` and not closed yet: its name (once read) and line. */
  let open: { name?: string; line: number } | undefined;
  const sectionName = (o: { name?: string }) => (o.name ? `the ${o.name} section` : "a section");
  let expectSectionName = false;
  let block: RawBlock | undefined;
  let inBlockHeader = false;
  let main: RawRecord | undefined;
  let target: RawRecord | undefined;
  let i = 0;
  const n = lines.length;
  /** 1-based line of the last value read (of the last line read, when the file ends inside a group). */
  let lastValueLine = 0;
  /** A group code was read: the text began as DXF. */
  let started = false;
  /** A line that is no group code, before the last line of a file without its EOF marker. */
  let syntaxError: string | undefined;
  while (i < n) {
    const codeLine = lines[i];
    const code = groupCode(codeLine);
    if (!Number.isNaN(code)) started = true;
    else {
      if (codeLine.trim() === "" && lines.slice(i).every((l) => l.trim() === "")) break; // trailing blank lines
      const problem = `line ${i + 1}: ${truncateForMessage(codeLine)} is not a DXF group code`;
      // A file that began as group codes but has no EOF marker at its end was cut off: incomplete, not invalid.
      if (!started || endsWithEof(lines)) throw new DxfFormatError(problem);
      if (lines.slice(i + 1).every((l) => l.trim() === "")) {
        // the last line: the end of the file cut the group code itself
        scan.incomplete.push(`line ${i + 1} is cut off by the end of the file (${truncateForMessage(codeLine)})`);
        lastValueLine = i + 1;
      } else {
        // before the last line: told after what is missing at the end (the sections open there are not known)
        syntaxError = problem;
        lastValueLine = lastNonBlankLine(lines);
      }
      break;
    }
    if (i + 1 >= n) {
      scan.incomplete.push(`line ${i + 1}: the group code ${code} has no value (the file ends inside a group)`);
      lastValueLine = i + 1;
      break;
    }
    const rawValue = lines[i + 1];
    const line = i + 1;
    i += 2;
    lastValueLine = i;
    if (code === 0) {
      const value = rawValue.trim();
      expectSectionName = false;
      if (value === "EOF") {
        if (open)
          scan.incomplete.push(`${sectionName(open)} (line ${open.line}) has no 0/ENDSEC before the EOF marker`);
        open = undefined;
        scan.sawEof = true;
        break;
      }
      if (value === "SECTION") {
        if (open)
          scan.incomplete.push(
            `${sectionName(open)} (line ${open.line}) has no 0/ENDSEC before the next SECTION (line ${line})`,
          );
        open = { line };
        expectSectionName = true;
        section = undefined;
        main = target = undefined;
        sectionCount++;
        continue;
      }
      if (value === "ENDSEC") {
        if (!open) scan.incomplete.push(`line ${line}: 0/ENDSEC closes no section`);
        open = undefined;
        section = undefined;
        main = target = undefined;
        block = undefined;
        inBlockHeader = false;
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
      if (code === 2) {
        section = rawValue.trim();
        if (open) open.name = section;
      }
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
      else if (KEPT_CODES.has(code) || code >= XDATA_FIRST_CODE || target.type === "GEODATA")
        target.groups.push([code, rawValue.trim()]);
    }
  }
  if (sectionCount === 0 && scan.sawEof) throw new DxfFormatError("no SECTION found");
  if (!scan.sawEof) {
    const last = `the file ends at line ${lastValueLine}`;
    if (!started) scan.incomplete.push("the file holds only white space so far");
    if (sectionCount === 0) scan.incomplete.push("no 0/SECTION before the end of the file");
    if (open && !syntaxError) scan.incomplete.push(`${sectionName(open)} (line ${open.line}) has no 0/ENDSEC`);
    scan.incomplete.push(`no 0/EOF marker (${last})`);
    if (syntaxError) scan.incomplete.push(`before that, ${syntaxError.replace(/^line/, "at line")}`);
  }
  return scan;
}
