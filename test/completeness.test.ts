/**
 * Completeness checks and item accounting of the connectors, on the real sample and fixture files (pure: no server
 * stack needed). Expected counts come from the files themselves (regular expressions over the text, a small DXF group
 * scan written here, web-ifc directly), not from the connectors' own helpers.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as WebIFC from "web-ifc";
import { parseDxf, parseDxfBytes } from "../activities/connectors/dxf";
import { parseIfc, parseIfcBytes } from "../activities/connectors/ifc";
import { scanStep } from "../activities/connectors/step-scan";
import { type ParsedFile, SourceFileError } from "../activities/connectors/types";

const ROOT = path.resolve(__dirname, "..");
const INTEGRITY = path.join(__dirname, "fixtures", "integrity");
const I = (f: string) => path.join(INTEGRITY, f);

/** Every IFC and DXF file under a folder, recursively. */
function designFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => /\.(ifc|dxf)$/i.test(f))
    .map((f) => path.join(dir, f))
    .sort();
}
const ALL_FILES = [...designFiles(path.join(ROOT, "samples")), ...designFiles(path.join(__dirname, "fixtures"))];

/** Files that are not complete or not readable on purpose, with the task error code they give. */
const BAD_FILES: Record<string, string> = {
  "ifc4_broken_missing_header.ifc": "InvalidFileFormat",
  "model_rev2_truncated.ifc": "FileIncomplete",
  "model_unterminated_entity.ifc": "FileIncomplete",
  "model_header_only.ifc": "FileIncomplete",
  "drawing_without_eof.dxf": "FileIncomplete",
};

let tmp: string;
let reference: WebIFC.IfcAPI;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "completeness-"));
  reference = new WebIFC.IfcAPI();
  reference.SetWasmPath(path.dirname(require.resolve("web-ifc")) + path.sep, true);
  await reference.Init(undefined, true);
  reference.SetLogLevel(WebIFC.LogLevel.LOG_LEVEL_OFF);
}, 120_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function tempFile(name: string, content: string | Buffer): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
}

async function failure(p: Promise<unknown>): Promise<SourceFileError> {
  try {
    await p;
  } catch (e) {
    return e as SourceFileError;
  }
  throw new Error("parsed without an error");
}

const notWrittenTotal = (p: ParsedFile) => p.items.notWritten.reduce((n, g) => n + g.count, 0);

// ---------------------------------------------------------------------------------------------------------
// Independent counts
// ---------------------------------------------------------------------------------------------------------

/** Entity instances per type name, by a regular expression over the DATA lines (one instance per line here). */
function instancesByType(file: string): Map<string, number[]> {
  const text = fs.readFileSync(file, "latin1");
  const out = new Map<string, number[]>();
  for (const m of text.matchAll(/^#(\d+)\s*=\s*([A-Za-z0-9_]+)\s*\(/gm)) {
    const ids = out.get(m[2].toUpperCase()) ?? [];
    ids.push(Number(m[1]));
    out.set(m[2].toUpperCase(), ids);
  }
  return out;
}

/** IFC items by web-ifc directly: IfcProduct instances, plus instances of types the file's schema does not define. */
function ifcItems(file: string): number {
  const modelId = reference.OpenModel(new Uint8Array(fs.readFileSync(file)));
  try {
    const known = new Set(reference.GetIfcEntityList(modelId));
    let n = reference.GetLineIDsWithType(modelId, WebIFC.IFCPRODUCT, true).size();
    for (const [type, ids] of instancesByType(file))
      if (!known.has(reference.GetTypeCodeFromName(type))) n += ids.length;
    return n;
  } finally {
    reference.CloseModel(modelId);
  }
}

/** DXF items: the records of the ENTITIES section, without VERTEX / SEQEND / ATTRIB (a plain group-pair walk). */
function dxfItems(file: string): number {
  const lines = fs.readFileSync(file, "latin1").split(/\r?\n/);
  let inEntities = false;
  let n = 0;
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (lines[i].trim() !== "0") continue;
    const value = lines[i + 1].trim();
    if (value === "SECTION") inEntities = lines[i + 3]?.trim() === "ENTITIES";
    else if (value === "ENDSEC") inEntities = false;
    else if (inEntities && !["VERTEX", "SEQEND", "ATTRIB"].includes(value)) n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// STEP scan
// ---------------------------------------------------------------------------------------------------------

describe("STEP completeness scan", () => {
  it("finds every complete IFC file complete, with its schema and every instance", () => {
    for (const file of ALL_FILES.filter((f) => f.endsWith(".ifc") && !BAD_FILES[path.basename(f)])) {
      const scan = scanStep(fs.readFileSync(file));
      expect(scan.kind, file).toBe("complete");
      if (scan.kind !== "complete") continue;
      const expected = instancesByType(file);
      expect(scan.content.instances, file).toBe([...expected.values()].reduce((n, ids) => n + ids.length, 0));
      for (const [type, ids] of expected)
        expect(scan.content.types.get(type)?.count, `${file} ${type}`).toBe(ids.length);
      const schema = /FILE_SCHEMA\s*\(\s*\(\s*'([^']+)'/i.exec(fs.readFileSync(file, "latin1"))![1].toUpperCase();
      expect(scan.content.schemas, file).toEqual([schema]);
    }
  });

  it("names what is missing and where: a cut-off file, an unterminated entity line, a header-only file", () => {
    const truncated = scanStep(fs.readFileSync(I("model_rev2_truncated.ifc")));
    expect(truncated).toEqual({
      kind: "incomplete",
      problem:
        "entity #114 (line 43) is cut off by the end of the file; the DATA section (line 7) has no ENDSEC; no END-ISO-10303-21",
    });
    const unterminated = scanStep(fs.readFileSync(I("model_unterminated_entity.ifc")));
    expect(unterminated.kind).toBe("incomplete");
    expect(unterminated.kind === "incomplete" && unterminated.problem).toMatch(
      /^entity #107 \(line 36\) is not closed/,
    );
    const headerOnly = scanStep(fs.readFileSync(I("model_header_only.ifc")));
    expect(headerOnly).toEqual({
      kind: "incomplete",
      problem: "no DATA section: END-ISO-10303-21; at line 7 follows the HEADER section",
    });
    const missingHeader = scanStep(
      fs.readFileSync(path.join(__dirname, "fixtures/ifc/ifc4_broken_missing_header.ifc")),
    );
    expect(missingHeader.kind).toBe("notStep");
  });

  it("every cut of a complete file is incomplete (every byte position of model_rev1.ifc)", () => {
    const bytes = fs.readFileSync(I("model_rev1.ifc"));
    const end = bytes.indexOf("END-ISO-10303-21;") + "END-ISO-10303-21;".length;
    expect(scanStep(bytes.subarray(0, 0))).toEqual({ kind: "notStep", problem: "the file is empty" });
    for (let k = 1; k < end; k++) {
      const scan = scanStep(bytes.subarray(0, k));
      if (scan.kind !== "incomplete") throw new Error(`a cut at byte ${k} was found ${scan.kind}`);
    }
    expect(scanStep(bytes.subarray(0, end)).kind).toBe("complete");
  });

  it("strings with '' escapes, binaries and comments never end an entity; complex instances count once", () => {
    const head = "ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('IFC4'));\nENDSEC;\n";
    const ok = scanStep(
      Buffer.from(
        `${head}DATA;\n#1=IFCX('it''s; ) (',"0FF",/* ; ) */$);\n/* #2=NOTHING(); */\n` +
          `#3=(IFCA(1)IFCB('x;'));\n#4 = ifcy ( (1,2) , .T. ) ;\nENDSEC;\nDATA('second',('IFC4'));\n#5=IFCX($);\nENDSEC;\nEND-ISO-10303-21;\n`,
      ),
    );
    expect(ok.kind).toBe("complete");
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), fs.readFileSync(I("model_rev1.ifc"))]);
    expect(scanStep(bom).kind).toBe("complete");
    if (ok.kind === "complete") {
      expect(ok.content.instances).toBe(4);
      expect(Object.fromEntries([...ok.content.types].map(([t, c]) => [t, c.count]))).toEqual({
        IFCX: 2,
        "IFCA+IFCB": 1,
        IFCY: 1,
      });
    }
    for (const [text, problem] of [
      [`${head}DATA;\n#1=IFCX('never closed);\nENDSEC;\nEND-ISO-10303-21;\n`, /string or binary opened at line 6/],
      [
        `${head}DATA;\n#1=IFCX($);\n/* a comment never closed\nENDSEC;\nEND-ISO-10303-21;\n`,
        /comment opened at line 7/,
      ],
      [`${head}DATA;\n#1=IFCX($)\n#2=IFCX($);\nENDSEC;\nEND-ISO-10303-21;\n`, /entity #1 \(line 6\) is not closed/],
      [`${head}DATA;\n#1=IFCX($);\nEND-ISO-10303-21;\n`, /expected an entity instance/],
      [`${head}DATA;\n#1=IFCX($);\nENDSEC;\n`, /no END-ISO-10303-21; the file ends after entity #1 \(line 6\)/],
      ["ISO-10303-21;\nHEADER;\nFILE_NAME('a');\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n", /no FILE_SCHEMA/],
    ] as const) {
      const scan = scanStep(Buffer.from(text));
      expect(scan.kind === "complete" ? "complete" : scan.problem, text).toMatch(problem);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Connectors: incomplete files fail with FileIncomplete
// ---------------------------------------------------------------------------------------------------------

describe("incomplete files fail their parse with FileIncomplete", () => {
  it("the bad fixtures give their codes, naming the file and what is missing", async () => {
    for (const file of ALL_FILES.filter((f) => BAD_FILES[path.basename(f)])) {
      const parse = file.endsWith(".dxf") ? parseDxf : parseIfc;
      const err = await failure(parse(file));
      expect(err, file).toBeInstanceOf(SourceFileError);
      expect(err.code, file).toBe(BAD_FILES[path.basename(file)]);
      expect(err.message, file).toContain(path.basename(file));
    }
    const noEof = await failure(parseDxf(I("drawing_without_eof.dxf")));
    expect(noEof.message).toBe(
      "drawing_without_eof.dxf: the file is incomplete (no 0/EOF marker (the file ends at line 72)); it may still be being written. Nothing was written; its data in the iModel is kept",
    );
  });

  it("a DXF cut at any line, or with a section never closed, is incomplete", async () => {
    const lines = fs.readFileSync(I("xref-nested/c.dxf"), "latin1").split("\n");
    const eof = lines.findIndex((l) => l.trim() === "EOF");
    for (let k = 4; k <= eof; k++) {
      const err = await failure(parseDxf(tempFile(`cut-${k}.dxf`, lines.slice(0, k).join("\n"))));
      expect(err.code, `cut after line ${k}`).toBe("FileIncomplete");
    }
    const text = lines.join("\n");
    const noEndsec = text.replace(/(ENTITIES[\s\S]*?)\n {2}0\nENDSEC\n/, "$1\n");
    const err = await failure(parseDxf(tempFile("no-endsec.dxf", noEndsec)));
    expect(err.code).toBe("FileIncomplete");
    expect(err.message).toMatch(/the ENTITIES section \(line \d+\) has no 0\/ENDSEC before the EOF marker/);
  });
});

describe("a file cut at any byte is FileIncomplete, never InvalidFileFormat", () => {
  /** The task error code and message the connector gives for `bytes`, or "parsed" when it gives none. */
  async function outcome(bytes: Buffer, fileName: string): Promise<{ code: string; message: string }> {
    try {
      if (fileName.endsWith(".dxf")) parseDxfBytes(bytes, fileName);
      else await parseIfcBytes(bytes, fileName);
    } catch (e) {
      if (e instanceof SourceFileError) return { code: e.code, message: e.message };
      throw e;
    }
    return { code: "parsed", message: "" };
  }

  /** Byte offsets: from `before` bytes before the line that holds `at` to `after` bytes after it. */
  function aroundLine(bytes: Buffer, at: number, before = 4, after = 4): number[] {
    const start = bytes.lastIndexOf(10, at) + 1;
    const end = bytes.indexOf(10, at);
    const out: number[] = [];
    for (let k = start - before; k <= end + after; k++) out.push(k);
    return out;
  }

  /** `count` offsets spread evenly over 1 … `end` - 1. */
  function spread(end: number, count: number): number[] {
    return Array.from({ length: count }, (_, j) => 1 + Math.floor((j * (end - 2)) / (count - 1)));
  }

  /** Cuts `bytes` at each offset and expects FileIncomplete naming the missing terminator; returns the count. */
  async function expectIncompleteCuts(bytes: Buffer, fileName: string, offsets: number[], missing: RegExp) {
    const seen = new Set<number>();
    for (const k of offsets) {
      if (seen.has(k)) continue;
      seen.add(k);
      const got = await outcome(bytes.subarray(0, k), fileName);
      if (got.code !== "FileIncomplete" || !missing.test(got.message))
        throw new Error(`${fileName} cut at byte ${k}: ${got.code} ${got.message}`);
    }
    return seen.size;
  }

  it("IFC: the structural sample cut at every byte of several entity lines, and at 200 offsets over the file", async () => {
    const file = "ifc2x3_structural_revit_example_rev1.ifc";
    const bytes = fs.readFileSync(path.join(ROOT, "samples/ifc", file));
    const terminator = bytes.lastIndexOf("END-ISO-10303-21;");
    const end = terminator + "END-ISO-10303-21;".length; // cuts before `end` lack the final ';' at least
    const text = bytes.toString("latin1");
    // The first entity, a list of references, strings with punctuation, the entity around byte 150,000 (a cut right
    // after a '#' was once "no STEP parameter syntax"), the end of the last entity and the terminators. Each cut is
    // scanned whole, so the windows are where the file is short.
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, j) => from + j);
    const offsets = [
      ...aroundLine(bytes, text.indexOf("\n#", text.indexOf("DATA;")) + 1),
      ...aroundLine(bytes, text.indexOf("IFCUNITASSIGNMENT(")),
      ...aroundLine(bytes, text.indexOf("IFCCOLUMN(")),
      ...aroundLine(bytes, 150_000),
      ...range(terminator - 30, end),
      ...spread(end, 200),
    ].filter((k) => k > 0 && k < end);
    const hash = text.indexOf(",#41,", 150_000) + 2; // in entity #4316, right after the '#' of its second parameter
    expect(text.slice(text.lastIndexOf("\n", hash) + 1, hash)).toBe("#4316= IFCPROPERTYSET('2n1RA0kdH5LOyWY7qMOWze',#");
    expect(await outcome(bytes.subarray(0, hash), file)).toEqual({
      code: "FileIncomplete",
      message: expect.stringContaining(
        "the file is incomplete (entity #4316 (line 2229) is cut off by the end of the file; the DATA section (line 27) has no ENDSEC; no END-ISO-10303-21)",
      ),
    });
    const cuts = await expectIncompleteCuts(bytes, file, offsets, /the file is incomplete \(.*END-ISO-10303-21/);
    expect(cuts).toBeGreaterThan(700);
    expect(scanStep(bytes.subarray(0, end)).kind).toBe("complete");
  });

  it("DXF: the R2018 sample cut at every byte of its entity, a GEODATA record and the end, and at 200 offsets", async () => {
    const file = "dxf_r2018_houses_of_parliament_geodata.dxf";
    const bytes = fs.readFileSync(path.join(__dirname, "fixtures/dxf", file));
    const eof = bytes.lastIndexOf("\nEOF") + 1;
    const end = eof + "EOF".length; // cuts before `end` lack the marker
    const text = bytes.toString("latin1");
    const entity = text.indexOf("\nLWPOLYLINE") + 1;
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, j) => from + j);
    const offsets = [
      ...range(entity - 8, entity + 120), // the record's start: type, handle, subclass markers
      ...range(text.indexOf("\nENDSEC", entity) - 60, text.indexOf("\nENDSEC", entity) + 30), // its last vertices
      ...range(text.lastIndexOf("\nGEODATA") - 6, text.lastIndexOf("\nGEODATA") + 80),
      ...range(eof - 30, end),
      ...spread(end, 200),
    ].filter((k) => k > 0 && k < end);
    const cuts = await expectIncompleteCuts(bytes, file, offsets, /the file is incomplete \(.*no 0\/EOF marker/);
    expect(cuts).toBeGreaterThan(450);
    expect((await outcome(bytes.subarray(0, end), file)).code).toBe("parsed");
  });

  it("a file that ends with its terminators and holds a syntax error stays InvalidFileFormat; cut, it is incomplete", async () => {
    const ifc = fs.readFileSync(path.join(ROOT, "samples/ifc/ifc2x3_structural_revit_example_rev1.ifc"), "latin1");
    const badIfc = Buffer.from(ifc.replace(/^(#4316= ?[A-Z0-9]+\()/m, "$1@"), "latin1");
    expect(await outcome(badIfc, "bad.ifc")).toEqual({
      code: "InvalidFileFormat",
      message: expect.stringMatching(
        /^bad\.ifc: not a readable IFC file \(line 2229: entity #4316 .* no STEP parameter/,
      ),
    });
    expect(await outcome(badIfc.subarray(0, 300_000), "bad.ifc")).toEqual({
      code: "FileIncomplete",
      message: expect.stringMatching(
        /the file is incomplete \(the last section has no ENDSEC; no END-ISO-10303-21; the file ends at line \d+; before that, at line 2229: entity #4316/,
      ),
    });
    const dxf = fs.readFileSync(I("xref-nested/c.dxf"), "latin1");
    const badDxf = Buffer.from(dxf.replace(/\n 10\n/, "\nxx\n"), "latin1");
    expect(await outcome(badDxf, "bad.dxf")).toEqual({
      code: "InvalidFileFormat",
      message: expect.stringMatching(/^bad\.dxf: not a readable DXF file \(line \d+: "xx" is not a DXF group code\)/),
    });
    expect(await outcome(badDxf.subarray(0, badDxf.indexOf("\nEOF")), "bad.dxf")).toEqual({
      code: "FileIncomplete",
      message: expect.stringMatching(
        /\(no 0\/EOF marker \(the file ends at line \d+\); before that, at line \d+: "xx"/,
      ),
    });
    // not the beginning of either format: InvalidFileFormat, with or without terminators
    expect((await outcome(Buffer.from("hello\nworld\n"), "notes.dxf")).code).toBe("InvalidFileFormat");
    expect((await outcome(Buffer.from("hello world"), "notes.ifc")).code).toBe("InvalidFileFormat");
  });
});

// ---------------------------------------------------------------------------------------------------------
// Item accounting
// ---------------------------------------------------------------------------------------------------------

describe("item accounting of the connectors", () => {
  it("read = elements + not written for every sample and fixture, and read counts the file's items", async () => {
    const good = ALL_FILES.filter((f) => !BAD_FILES[path.basename(f)]);
    expect(good.length).toBeGreaterThanOrEqual(20);
    for (const file of good) {
      const p = file.endsWith(".dxf") ? await parseDxf(file) : await parseIfc(file);
      expect(p.elements.length + notWrittenTotal(p), file).toBe(p.items.read);
      expect(p.items.read, file).toBe(file.endsWith(".dxf") ? dxfItems(file) : ifcItems(file));
      for (const g of p.items.notWritten) {
        expect(g.count, `${file} ${g.code}`).toBeGreaterThan(0);
        expect(g.examples.length, `${file} ${g.code}`).toBeLessThanOrEqual(Math.min(5, g.count));
      }
    }
  });

  it("IFC: every kind of item that is not written has its reason, class and identifiers", async () => {
    const p = await parseIfc(I("model_every_item_kind.ifc"));
    expect(p.elements.map((e) => e.className).sort()).toEqual([
      "IfcBuilding",
      "IfcBuildingStorey",
      "IfcColumn",
      "IfcSite",
      "IfcSlab",
      "IfcWall",
    ]); // the spatial structure is written too
    expect(p.elements.find((e) => e.className === "IfcWall")!.name).toBe(
      "Wall 'A'; (load-bearing) /* not a comment */",
    );
    expect(p.items.notWritten).toEqual(
      expect.arrayContaining([
        { code: "UnsupportedEntityType", className: "IFCFUTURETHING", count: 1, examples: ["#180"] },
        { code: "OpeningElement", className: "IfcOpeningElement", count: 1, examples: ["3ZGLNqwzb8rQBx0dEuDKV3"] },
        { code: "MissingIdentifier", className: "IfcBuildingElementProxy", count: 1, examples: ["#130"] },
        {
          code: "DuplicateIdentifier",
          className: "IfcBuildingElementProxy",
          count: 1,
          examples: ["0k920sdWUpJUKcqZZBZVvI #140"],
        },
        {
          code: "NoGeometryOrPlacement",
          className: "IfcBuildingElementProxy",
          count: 1,
          examples: ["1hBbwkyAj7ehDPvrsvJR_S"],
        },
        {
          code: "GeometryNotConverted",
          className: "IfcBuildingElementProxy",
          count: 1,
          examples: ["2ZFmvMjBD0mfsA3DWu3$hM"],
        },
      ]),
    );
    expect(p.items).toMatchObject({ read: 12 });
    expect(notWrittenTotal(p)).toBe(6);
    expect(p.items.notWritten.some((g) => g.code === "SpatialStructureElement")).toBe(false);
    // Kept as they were in the iModel: the proxy whose body cannot be meshed and the one without placement or shape.
    expect(p.keep).toEqual(["1hBbwkyAj7ehDPvrsvJR_S", "2ZFmvMjBD0mfsA3DWu3$hM"]);
    expect(p.warnings.map((w) => w.code)).toEqual(
      expect.arrayContaining([
        "UnsupportedEntityType",
        "MissingIdentifier",
        "DuplicateIdentifier",
        "GeometryNotConverted",
      ]),
    );
  });

  it("IFC: an IFC4X3 class in an IFC4 file is counted, warned about by class and count, and the proxy written", async () => {
    const p = await parseIfc(I("ifc4_with_ifc4x3_classes.ifc"));
    expect(p.elements.map((e) => [e.className, e.identifier, e.kind ?? "physical"])).toEqual([
      ["IfcSite", "0IFx4CRzAyYlDFZQIdGRLP", "Site"],
      ["IfcBuilding", "0LYPnatbumMW2bqVO1FOzB", "Facility"],
      ["IfcBuildingStorey", "15gcsGR7RJQM0CuGftsU8j", "FacilityPart"],
      ["IfcBuildingElementProxy", "0gryP1udcshMB0Bf3slZoc", "physical"],
    ]); // the spatial structure is written too
    expect(p.items).toMatchObject({ read: 5 });
    expect(notWrittenTotal(p)).toBe(1);
    expect(p.items.notWritten).toContainEqual({
      code: "UnsupportedEntityType",
      className: "IfcRail",
      count: 1,
      examples: ["#100"],
    });
    expect(p.warnings).toContainEqual(
      expect.objectContaining({ code: "UnsupportedEntityType", target: "IfcRail", count: 1, examples: ["#100"] }),
    );
    expect(p.warnings.find((w) => w.code === "UnsupportedEntityType")!.message).toContain("schema IFC4");
  });

  it("DXF: paper space, unsupported types, XREF inserts and entities without coordinates are counted by reason", async () => {
    const text = fs.readFileSync(I("xref-nested/b.dxf"), "latin1");
    const line = (
      handle: string,
      extra: string,
      coords = " 10\n0.0\n 20\n0.0\n 30\n0.0\n 11\n1.0\n 21\n0.0\n 31\n0.0\n",
    ) => `  0\nLINE\n  5\n${handle}\n${extra}  8\n0\n${coords}`;
    const more =
      line("200", " 67\n1\n") + // paper space
      "  0\nHATCH\n  5\n201\n  8\n0\n" + // a type the reader does not know
      line("202", "", "") + // no coordinates
      line("203", "");
    const p = await parseDxf(
      tempFile("every-kind.dxf", text.replace("  0\nENDSEC\n  0\nEOF", `${more}  0\nENDSEC\n  0\nEOF`)),
    );
    expect(p.items.read).toBe(7);
    expect(p.elements.map((e) => e.identifier).sort()).toEqual(["100", "203"]);
    expect(p.items.notWritten).toEqual([
      { code: "PaperSpace", className: "LINE", count: 1, examples: ["200"] },
      { code: "UnsupportedEntityType", className: "HATCH", count: 1, examples: ["201"] },
      { code: "ExternalReference", className: "INSERT", count: 2, examples: ["101", "102"] },
      { code: "InvalidGeometry", className: "LINE", count: 1, examples: ["202"] },
    ]);
  });
});
