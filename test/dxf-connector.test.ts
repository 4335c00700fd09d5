/**
 * DXF connector on the real fixture files (pure: no server stack needed). Expected values come from the raw files
 * themselves (a small group-code scan written here, or dxf-parser directly), not from the connector's own helpers.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import DxfParser from "dxf-parser";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parseDxf } from "../activities/connectors/dxf";
import { type ParsedFile, type SourceCurve, type SourceElement, SourceFileError } from "../activities/connectors/types";

const DXF = path.join(__dirname, "fixtures", "dxf");
const XREF = path.join(__dirname, "fixtures", "dxf-xref");
const R12 = path.join(DXF, "dxf_r12_leica_disto_s910_survey.dxf");
const DOOR = path.join(DXF, "dxf_r2000_ceco_door_frame_detail.dxf");
const GEO = path.join(DXF, "dxf_r2018_houses_of_parliament_geodata.dxf");
const HOST_ATTACHED = path.join(XREF, "xref_host_attached_r2000.dxf");
const HOST_OVERLAY = path.join(XREF, "xref_host_overlay_r2018.dxf");

// ---------------------------------------------------------------------------------------------------------
// Independent reading of the raw files
// ---------------------------------------------------------------------------------------------------------

type Group = [number, string];

function groups(file: string): Group[] {
  const lines = fs.readFileSync(file, "latin1").split(/\r?\n/);
  const out: Group[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) out.push([Number.parseInt(lines[i], 10), lines[i + 1].trim()]);
  return out;
}

interface RawEntity {
  type: string;
  groups: Group[];
}

/** Entity records (`0 TYPE` … up to the next `0`) of the ENTITIES section, without VERTEX/SEQEND/ATTRIB. */
function rawEntities(file: string): RawEntity[] {
  const gs = groups(file);
  const out: RawEntity[] = [];
  let inEntities = false;
  let current: RawEntity | undefined;
  for (let i = 0; i < gs.length; i++) {
    const [code, value] = gs[i];
    if (code === 0 && value === "SECTION") {
      inEntities = gs[i + 1]?.[0] === 2 && gs[i + 1][1] === "ENTITIES";
      current = undefined;
      i++;
      continue;
    }
    if (code === 0 && value === "ENDSEC") {
      inEntities = false;
      current = undefined;
      continue;
    }
    if (!inEntities) continue;
    if (code === 0) {
      current = ["VERTEX", "SEQEND", "ATTRIB"].includes(value) ? undefined : { type: value, groups: [] };
      if (current) out.push(current);
    } else if (current) {
      current.groups.push([code, value]);
    }
  }
  return out;
}

function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[key(it)] = (out[key(it)] ?? 0) + 1;
  return out;
}

function g(e: RawEntity, code: number): string | undefined {
  return e.groups.find((x) => x[0] === code)?.[1];
}

function gNum(e: RawEntity, code: number): number {
  return Number.parseFloat(g(e, code) ?? "NaN");
}

/** Groups of the first GEODATA object (after its AcDbGeoData marker). */
function rawGeodata(file: string): Group[] {
  const gs = groups(file);
  const start = gs.findIndex((x) => x[0] === 0 && x[1] === "GEODATA");
  const end = gs.findIndex((x, i) => i > start && x[0] === 0);
  const body = gs.slice(start + 1, end);
  return body.slice(body.findIndex((x) => x[0] === 100 && x[1] === "AcDbGeoData") + 1);
}

function points(c: SourceCurve | undefined): number[][] {
  if (!c || c.kind !== "linestring") throw new Error("not a linestring");
  const out: number[][] = [];
  for (let i = 0; i < c.points.length; i += 3) out.push([c.points[i], c.points[i + 1], c.points[i + 2]]);
  return out;
}

function byIdentifier(p: ParsedFile): Map<string, SourceElement> {
  return new Map(p.elements.map((e) => [e.identifier, e]));
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dxf-connector-"));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Writes `text` to a temp file named `name` and returns its path. */
function tempFile(name: string, text: string | Buffer): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, text);
  return p;
}

// ---------------------------------------------------------------------------------------------------------

describe("DXF connector: R12 survey (AC1009)", () => {
  it("imports every model-space POINT, LINE and TEXT with its handle, layer and coordinates", async () => {
    const raw = rawEntities(R12);
    expect(countBy(raw, (e) => e.type)).toEqual({ POINT: 11, LINE: 10, TEXT: 11 });
    const parsed = await parseDxf(R12);
    expect(parsed.schema).toContain("AC1009");
    expect(countBy(parsed.elements, (e) => e.className)).toEqual(countBy(raw, (e) => e.type));
    expect(parsed.warnings).toEqual([]);
    expect(parsed.references).toEqual([]);
    expect(parsed.georeference).toBeUndefined();

    const rawLayers = new Set(raw.map((e) => g(e, 8)));
    expect(rawLayers.size).toBe(3);
    expect(new Set(parsed.elements.map((e) => e.category))).toEqual(rawLayers);

    const elements = byIdentifier(parsed);
    for (const r of raw) {
      const e = elements.get(g(r, 5)!.toUpperCase())!;
      expect(e, `entity ${g(r, 5)}`).toBeDefined();
      expect(e.className).toBe(r.type);
      expect(e.category).toBe(g(r, 8));
      expect(e.properties?.layer).toBe(g(r, 8));
      // no $INSUNITS in R12: drawing units are metres
      const p10 = [gNum(r, 10), gNum(r, 20), gNum(r, 30)];
      if (r.type === "LINE") {
        expect(e.name).toBeUndefined();
        const pts = points(e.curves?.[0]);
        expect(pts).toHaveLength(2);
        pts[0].forEach((v, k) => expect(v).toBeCloseTo(p10[k], 6));
        pts[1].forEach((v, k) => expect(v).toBeCloseTo([gNum(r, 11), gNum(r, 21), gNum(r, 31)][k], 6));
      } else if (r.type === "POINT") {
        expect(points(e.curves?.[0])).toHaveLength(1);
        e.origin.forEach((v, k) => expect(v).toBeCloseTo(p10[k], 6));
      } else {
        expect(e.name).toBe(g(r, 1));
        expect(e.properties?.text).toBe(g(r, 1));
        expect(e.curves ?? []).toHaveLength(0);
        expect(e.meshes).toHaveLength(0);
      }
    }
  });

  it("gives stable checksums, and an edit of one entity changes only that element's checksum", async () => {
    const a = await parseDxf(R12);
    const b = await parseDxf(R12);
    expect(b.elements.map((e) => [e.identifier, e.checksum])).toEqual(
      a.elements.map((e) => [e.identifier, e.checksum]),
    );

    // move the end point (group 11) of the first LINE by 1 mm
    const text = fs.readFileSync(R12, "latin1");
    const firstLine = rawEntities(R12).find((e) => e.type === "LINE")!;
    const handle = g(firstLine, 5)!;
    const lineAt = text.indexOf(`LINE\n100\nAcDbEntity\n8\nLEICA_DISTO_3D\n62\n256\n6\nByLayer\n5\n${handle}\n`);
    expect(lineAt).toBeGreaterThan(0);
    const x11 = text.indexOf("\n11\n", lineAt) + 4;
    const end = text.indexOf("\n", x11);
    const moved = (Number.parseFloat(text.slice(x11, end)) + 0.001).toFixed(6);
    const edited = await parseDxf(tempFile("edited_survey.dxf", text.slice(0, x11) + moved + text.slice(end)));

    const before = byIdentifier(a);
    const changed = edited.elements
      .filter((e) => before.get(e.identifier)?.checksum !== e.checksum)
      .map((e) => e.identifier);
    expect(changed).toEqual([handle.toUpperCase()]);
    expect(edited.elements).toHaveLength(a.elements.length);

    // moving an entity to another layer changes its category and checksum
    const relayered = text.slice(0, lineAt) + text.slice(lineAt).replace("8\nLEICA_DISTO_3D\n", "8\nOTHER_LAYER\n");
    const r2 = byIdentifier(await parseDxf(tempFile("relayered_survey.dxf", relayered)));
    expect(r2.get(handle)!.category).toBe("OTHER_LAYER");
    expect(r2.get(handle)!.checksum).not.toBe(before.get(handle)!.checksum);
  });

  it("derives identifiers for entities without a handle and renames duplicated handles, with warnings", async () => {
    const text = fs.readFileSync(R12, "latin1");
    const lines = rawEntities(R12).filter((e) => e.type === "LINE");
    const [h1, h2] = [g(lines[0], 5)!, g(lines[1], 5)!];
    const noHandle = text.replace(`ByLayer\n5\n${h1}\n`, "ByLayer\n");
    const p1 = await parseDxf(tempFile("no_handle.dxf", noHandle));
    const p1again = await parseDxf(tempFile("no_handle.dxf", noHandle));
    expect(p1.elements).toHaveLength(32);
    const derived = p1.elements.filter((e) => !/^[0-9A-F]+$/.test(e.identifier));
    expect(derived).toHaveLength(1);
    expect(derived[0].identifier).toMatch(/^LINE-[0-9a-f]{16}$/);
    expect(p1again.elements.map((e) => e.identifier)).toEqual(p1.elements.map((e) => e.identifier));
    expect(p1.warnings.find((w) => w.code === "MissingHandle")).toBeDefined();

    const duplicated = text.replace(`ByLayer\n5\n${h2}\n`, `ByLayer\n5\n${h1}\n`);
    const p2 = await parseDxf(tempFile("dup_handle.dxf", duplicated));
    const ids = p2.elements.map((e) => e.identifier);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(h1);
    expect(ids).toContain(`${h1}~2`);
    const dup = p2.warnings.find((w) => w.code === "DuplicateIdentifier");
    expect(dup?.message).toContain(h1);
  });

  it("does not import paper-space entities and counts them", async () => {
    const text = fs.readFileSync(R12, "latin1");
    const h1 = g(
      rawEntities(R12).find((e) => e.type === "LINE")!,
      5,
    )!;
    const paper = text.replace(`ByLayer\n5\n${h1}\n`, `ByLayer\n5\n${h1}\n67\n1\n`);
    const parsed = await parseDxf(tempFile("paper.dxf", paper));
    expect(parsed.elements.map((e) => e.identifier)).not.toContain(h1);
    expect(parsed.elements).toHaveLength(31);
    expect(parsed.warnings).toEqual([
      expect.objectContaining({ code: "PaperSpaceEntity", count: 1, target: "PaperSpace" }),
    ]);
  });
});

describe("DXF connector: R2000 door frame detail (AC1015)", () => {
  let parsed: ParsedFile;
  let dxf: ReturnType<DxfParser["parseSync"]>;
  beforeAll(async () => {
    parsed = await parseDxf(DOOR);
    dxf = new DxfParser().parseSync(fs.readFileSync(DOOR, "utf8"));
  });

  it("reports the 4 HATCH entities dxf-parser drops as UnsupportedEntity and imports the rest", () => {
    const raw = rawEntities(DOOR);
    const counts = countBy(raw, (e) => e.type);
    expect(counts.HATCH).toBe(4);
    expect(dxf!.entities.filter((e) => e.type === "HATCH")).toHaveLength(0); // dropped silently by dxf-parser
    const hatch = parsed.warnings.find((w) => w.code === "UnsupportedEntity" && w.target === "HATCH");
    expect(hatch).toEqual({
      code: "UnsupportedEntity",
      message: "4 HATCH entities were not imported (unsupported by the DXF reader)",
      target: "HATCH",
      count: 4,
    });
    const { HATCH: _hatch, ...imported } = counts;
    expect(countBy(parsed.elements, (e) => e.className)).toEqual(imported);
    expect(parsed.warnings.filter((w) => w.code === "UnsupportedEntity")).toHaveLength(1);
    expect(parsed.schema).toContain("AC1015");
  });

  it("imports each INSERT as one element carrying its block's geometry, placed by insertion point, scale and rotation", () => {
    const inserts = parsed.elements.filter((e) => e.className === "INSERT");
    expect(inserts).toHaveLength(rawEntities(DOOR).filter((e) => e.type === "INSERT").length);
    const drawable = new Set(["LINE", "ARC", "CIRCLE", "LWPOLYLINE", "POINT"]);
    for (const e of inserts) {
      const ins = dxf!.entities.find((x) => (x as { handle?: unknown }).handle === e.identifier) as unknown as {
        name: string;
        position: { x: number; y: number; z?: number };
        xScale?: number;
        yScale?: number;
        rotation?: number;
      };
      expect(e.name).toBe(ins.name);
      const block = dxf!.blocks[ins.name];
      const blockEntities = (block.entities ?? []).filter((b) => drawable.has(b.type));
      expect(e.curves ?? []).toHaveLength(blockEntities.length);
      // first LINE of the block, transformed here: insertion + Rz(rotation) · S(scale) · (p − base point)
      const lineIndex = blockEntities.findIndex((b) => b.type === "LINE");
      if (lineIndex < 0) continue;
      const line = blockEntities[lineIndex] as unknown as { vertices: { x: number; y: number }[] };
      const rot = ((ins.rotation ?? 0) * Math.PI) / 180;
      const [sx, sy] = [ins.xScale ?? 1, ins.yScale ?? 1];
      const expected = line.vertices.map((v) => {
        const x = (v.x - block.position.x) * sx;
        const y = (v.y - block.position.y) * sy;
        return [
          ins.position.x + Math.cos(rot) * x - Math.sin(rot) * y,
          ins.position.y + Math.sin(rot) * x + Math.cos(rot) * y,
        ];
      });
      const got = points(e.curves![lineIndex]);
      for (let k = 0; k < 2; k++) {
        expect(got[k][0]).toBeCloseTo(expected[k][0], 5);
        expect(got[k][1]).toBeCloseTo(expected[k][1], 5);
      }
    }
    // a mirrored (x scale −1) door keeps its arc an arc with an upward normal
    const mirrored = inserts.find((e) => e.name === "PUERTA" && (e.properties?.scale as number[])[0] === -1)!;
    const arc = mirrored.curves!.find((c) => c.kind === "arc");
    expect(arc).toMatchObject({ kind: "arc", normal: [0, 0, 1] });
    // the block definitions' own HATCHes are reported separately
    expect(parsed.warnings.find((w) => w.code === "UnsupportedBlockEntity" && w.target === "HATCH")?.count).toBe(2);
  });

  it("uses the layer as category, resolves BYLAYER colours from the layer table, and sets origins", () => {
    const layers = dxf!.tables.layer.layers;
    const raw = new Map(rawEntities(DOOR).map((r) => [g(r, 5), r]));
    for (const e of parsed.elements) {
      const r = raw.get(e.identifier)!;
      // iModel category names refuse some characters DXF layer names may have ("Ceco.NET 53")
      expect(e.category).toBe(g(r, 8)!.replace(/[<>\\/."?*|,'=&]/g, "_"));
      expect(e.properties?.layer).toBe(g(r, 8));
      const aci = g(r, 62);
      if ((aci === undefined || aci === "256") && g(r, 420) === undefined) {
        expect(e.properties?.color).toBe(`#${layers[g(r, 8)!].color.toString(16).padStart(6, "0")}`);
      }
      expect(e.origin.every(Number.isFinite)).toBe(true);
    }
    expect(parsed.elements.find((e) => e.properties?.layer === "Ceco.NET 53")?.category).toBe("Ceco_NET 53");
    const mtext = parsed.elements.find((e) => e.className === "MTEXT" && e.name?.includes("\n"));
    expect(mtext?.name).toBe("PROJECCTION\nLINES"); // \P paragraph break
    const arcs = parsed.elements.filter((e) => e.className === "ARC" || e.className === "CIRCLE");
    for (const e of arcs) expect(e.curves).toEqual([expect.objectContaining({ kind: "arc" })]);
    const circle = parsed.elements.find((e) => e.className === "CIRCLE")!;
    const rc = raw.get(circle.identifier)!;
    expect(circle.curves![0]).toMatchObject({
      center: [gNum(rc, 10), gNum(rc, 20), gNum(rc, 30)].map((v) => expect.closeTo(v, 6)),
      radius: expect.closeTo(gNum(rc, 40), 6),
      sweepAngle: expect.closeTo(2 * Math.PI, 6),
    });
    expect(circle.origin[0]).toBeCloseTo(gNum(rc, 10) - gNum(rc, 40), 6); // low corner of the circle's range
  });
});

describe("DXF connector: R2018 GEODATA (AC1032)", () => {
  it("returns the EPSG 27700 georeference derived from the GEODATA group codes", async () => {
    const parsed = await parseDxf(GEO);
    const geo = rawGeodata(GEO);
    const v = (code: number) => Number.parseFloat(geo.find((x) => x[0] === code)![1]);
    const [dx, dy, rx, ry, s, nx, ny] = [v(10), v(20), v(11), v(21), v(40), v(12), v(22)];
    expect(geo.some((x) => x[0] === 303 && x[1].includes('<Alias id="27700" type="CoordinateSystem">'))).toBe(true);
    // CRS = R + s · Rot(θ) · (p − D), θ = 90° − direction of north
    const theta = Math.PI / 2 - Math.atan2(ny, nx);
    expect(parsed.georeference).toEqual({
      kind: "projected",
      epsg: 27700,
      crsName: "OSGB1936.NationalGrid",
      eastings: expect.closeTo(rx - s * (Math.cos(theta) * dx - Math.sin(theta) * dy), 6),
      northings: expect.closeTo(ry - s * (Math.sin(theta) * dx + Math.cos(theta) * dy), 6),
      orthogonalHeight: 0,
      rotation: expect.closeTo(theta, 9),
      scale: expect.closeTo(1, 12), // $INSUNITS 1 (inches) and GEODATA horizontal unit scale 0.0254 agree
      origin: "DXF GEODATA",
    });
    expect(parsed.warnings).toEqual([]);

    // the outline lands on the British National Grid coordinates ezdxf's own test expects for this file
    const expectedFirstPoints = [
      [530207.5677217417, 179366.7895852687],
      [530304.7243275082, 179354.44795162012],
      [530337.0722795193, 179620.5081263125],
    ];
    const g0 = parsed.georeference!;
    if (g0.kind !== "projected") throw new Error("projected expected");
    const outline = points(parsed.elements[0].curves?.[0]);
    expect(outline).toHaveLength(16);
    expectedFirstPoints.forEach(([e, n], i) => {
      const [x, y] = outline[i];
      expect(g0.scale * (Math.cos(g0.rotation) * x - Math.sin(g0.rotation) * y) + g0.eastings).toBeCloseTo(e, 4);
      expect(g0.scale * (Math.sin(g0.rotation) * x + Math.cos(g0.rotation) * y) + g0.northings).toBeCloseTo(n, 4);
    });
    // inches to metres
    const raw = rawEntities(GEO)[0];
    expect(outline[0][0]).toBeCloseTo(gNum(raw, 10) * 0.0254, 6);
  });

  it("falls back on well-known CRS names, and warns GeoreferenceUnreadable when there is no EPSG code", async () => {
    const withoutAlias = fs
      .readFileSync(GEO, "latin1")
      .replace('<Alias id="27700" type="CoordinateSystem">', '<Alias id="27700" type="Unrelated">');
    const byName = await parseDxf(tempFile("geo_by_name.dxf", withoutAlias));
    expect(byName.georeference).toMatchObject({ epsg: 27700, crsName: "OSGB1936.NationalGrid" });
    const unknown = withoutAlias.split("OSGB1936.NationalGrid").join("Custom.LocalGrid");
    const parsed = await parseDxf(tempFile("geo_without_epsg.dxf", unknown));
    expect(parsed.georeference).toBeUndefined();
    expect(parsed.warnings).toEqual([expect.objectContaining({ code: "GeoreferenceUnreadable", target: "GEODATA" })]);
  });
});

describe("DXF connector: XREFs", () => {
  it("an attached XREF becomes one Attach reference and its inserts are not elements", async () => {
    const raw = rawEntities(HOST_ATTACHED);
    expect(raw.filter((e) => e.type === "INSERT" && g(e, 2) === "GRID_XREF")).toHaveLength(2);
    const parsed = await parseDxf(HOST_ATTACHED);
    expect(parsed.references).toEqual([
      { path: "xref_target_grid_r2000.dxf", attachment: "Attach", name: "GRID_XREF" },
    ]);
    expect(parsed.elements.filter((e) => e.className === "INSERT")).toHaveLength(0);
    expect(parsed.elements.map((e) => e.className)).toEqual(["LWPOLYLINE"]);
    expect(parsed.warnings).toEqual([]);
  });

  it("an overlay XREF becomes an Overlay reference; an unresolved one is still reported", async () => {
    const parsed = await parseDxf(HOST_OVERLAY);
    expect(parsed.references).toHaveLength(2);
    expect(parsed.references).toEqual(
      expect.arrayContaining([
        { path: "..\\xrefs\\site_plan.dwg", attachment: "Overlay", name: "SITE_OVERLAY" },
        { path: "missing_structure.dwg", attachment: "Attach", name: "STRUCT_MISSING" },
      ]),
    );
    expect(parsed.elements.map((e) => e.className)).toEqual(["CIRCLE"]);
    expect(parsed.warnings).toEqual([]);
  });
});

describe("DXF connector: unreadable files", () => {
  async function failure(p: string): Promise<SourceFileError> {
    try {
      await parseDxf(p);
    } catch (e) {
      return e as SourceFileError;
    }
    throw new Error(`${p} was parsed`);
  }

  it("a text file renamed .dxf fails with InvalidFileFormat naming the file", async () => {
    const err = await failure(tempFile("meeting_notes.dxf", "Minutes of the site meeting\nAttendees: A, B\n"));
    expect(err).toBeInstanceOf(SourceFileError);
    expect(err.code).toBe("InvalidFileFormat");
    expect(err.message).toMatch(/^meeting_notes\.dxf: not a readable DXF file \(/);
  });

  it("an empty file fails with InvalidFileFormat naming the file", async () => {
    const err = await failure(tempFile("empty.dxf", ""));
    expect(err.code).toBe("InvalidFileFormat");
    expect(err.message).toBe("empty.dxf: not a readable DXF file (the file is empty)");
  });

  it("binary DXF, a truncated file (FileIncomplete) and a missing file fail with their codes", async () => {
    const binary = await failure(
      tempFile("binary.dxf", Buffer.concat([Buffer.from("AutoCAD Binary DXF\r\n\x1a\0", "latin1"), Buffer.alloc(64)])),
    );
    expect(binary.code).toBe("InvalidFileFormat");
    expect(binary.message).toContain("binary.dxf");
    const text = fs.readFileSync(DOOR, "latin1");
    const truncated = await failure(tempFile("truncated.dxf", text.slice(0, Math.floor(text.length / 2))));
    expect(truncated.code).toBe("FileIncomplete");
    expect(truncated.message).toMatch(/^truncated\.dxf: the file is incomplete \(.*no 0\/EOF marker/);
    const missing = await failure(path.join(tmp, "nowhere.dxf"));
    expect(missing.code).toBe("FileNotFound");
  });

  it("never prints: dxf-parser's console output becomes ReaderMessage warnings", async () => {
    const spies = [
      vi.spyOn(process.stdout, "write"),
      vi.spyOn(process.stderr, "write"),
      vi.spyOn(console, "log"),
      vi.spyOn(console, "warn"),
      vi.spyOn(console, "error"),
    ];
    try {
      // `0 SECTION` not followed by a section name: dxf-parser logs "Unexpected code … after 0:SECTION"
      const text = fs.readFileSync(R12, "latin1").replace(/\nEOF\s*$/, "\nSECTION\n5\nAB\n0\nENDSEC\n0\nEOF\n");
      const parsed = await parseDxf(tempFile("odd_section.dxf", text));
      for (const f of [R12, DOOR, GEO, HOST_ATTACHED, HOST_OVERLAY]) await parseDxf(f);
      for (const s of spies) expect(s).not.toHaveBeenCalled();
      expect(parsed.warnings).toEqual([expect.objectContaining({ code: "ReaderMessage" })]);
      expect(parsed.elements).toHaveLength(32);
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });
});
