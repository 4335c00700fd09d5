/**
 * DXF entities to elements: `DxfReader` pairs dxf-parser's entities with their raw records, resolves colours and
 * layers, draws entities (block references recursively) into world geometry, and builds one element per model-space
 * entity.
 */
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
import { type Affine, multiply, rotationZ, scaling, transformPoint, translation } from "../common/affine";
import { finite, micro } from "../common/numbers";
import { lowCorner } from "../common/range";
import { added, cross, normalize, scaled, type Vec3 } from "../common/vector";
import { listed, plural, WarningTally } from "../common/warnings";
import type { PropertyValue, RgbaColor, SourceElement } from "../types";
import { aciColor, colorHex, rgbColor, WHITE } from "./colors";
import { bulgePoints, ccwSweep, evaluateSpline, segmentsFor, TWO_PI } from "./curves";
import { MAPPED_TYPES, PARSER_TYPES, SILENT_IN_BLOCKS, SUB_RECORDS, XREF_FLAGS } from "./entity-types";
import { GeometrySink, ocsMatrix, samePoint, vec } from "./geometry";
import { firstGroup, floatGroup, intGroup, type RawRecord, type RawScan } from "./raw-scan";
import { decodeDxfString, mtextPlain, plainText } from "./text";

/** Block nesting depth at which INSERTs inside blocks stop being expanded. */
const MAX_BLOCK_DEPTH = 16;
/** Most instances one MINSERT (rows x columns) expands to. */
const MAX_ARRAY_INSTANCES = 10_000;

/** What the raw scan adds to a dxf-parser entity (or what can be recovered from dxf-parser alone). */
export interface Extras {
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

/**
 * Reads the elements of one parsed drawing: dxf-parser's result, the raw scan of the same text and the drawing's unit
 * scale (metres per drawing unit). Problems found while reading go to `tally`.
 */
export class DxfReader {
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
        else sink.linestring([transformPoint(m, a), transformPoint(m, b)], false, color);
        return;
      }
      case "POINT": {
        const p = vec((e as IPointEntity).position);
        if (!p) sink.dropped++;
        else sink.linestring([transformPoint(m, p)], false, color);
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
          pts.push(transformPoint(m, added(center, added(scaled(major, Math.cos(t)), scaled(minor, Math.sin(t))))));
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
          pts2.map(([x, y]) => transformPoint(mo, [x, y, elevation])),
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
            pts.map((p) => transformPoint(m, p)),
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
        const pts = v.map((p) => transformPoint(m, p));
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
        const corners = (quad ? [v[0], v[1], v[2], v[3]!] : [v[0], v[1], v[2]]).map((p) => transformPoint(mo, p));
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
      const points = coords.map((p) => (p ? transformPoint(m, p) : ([NaN, NaN, NaN] as Vec3)));
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
      const points = coords.map((p) => (p ? transformPoint(m, p) : ([NaN, NaN, NaN] as Vec3)));
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
        verts.map((v) => transformPoint(m, [v.x, v.y, finite(v.z) ? v.z : 0])),
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
      pts2.map(([x, y]) => transformPoint(mo, [x, y, elevation])),
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
        if (p) placement = transformPoint(multiply(top.m, ocsMatrix(ex.extrusion)), p);
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
        if (p) placement = transformPoint(top.m, p);
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
        if (p) placement = transformPoint(top.m, p);
        break;
      }
      case "INSERT": {
        const ins = e as IInsertEntity;
        const p = vec(ins.position);
        if (p) placement = transformPoint(multiply(top.m, ocsMatrix(ex.extrusion)), p);
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
        if (p) placement = transformPoint(top.m, p);
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
        { example: ex.handle ?? e.type, count: sink.dropped },
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
      propertyValues: drawingProperties(e, ex, layer, colorHex(color)),
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

/** Names of the XDATA group codes (AutoCAD's DXF reference). */
const XDATA_NAMES: Record<number, string> = {
  1000: "String",
  1002: "ControlString",
  1003: "LayerName",
  1004: "BinaryData",
  1005: "Handle",
  1010: "Point",
  1011: "WorldPosition",
  1012: "WorldDisplacement",
  1013: "WorldDirection",
  1040: "Real",
  1041: "Distance",
  1042: "ScaleFactor",
  1070: "Integer16",
  1071: "Integer32",
};

/**
 * The queryable properties of a DXF entity (`ImodelSync.PropertyValue`, docs/architecture.md "Content: properties,
 * spatial structure, types, materials"):
 * - set `Drawing` (kind `Drawing`): `Layer` (the exact layer name), `Color` (resolved, `#rrggbb`), `Linetype` (group 6
 *   as written; `ByLayer` when absent), `Lineweight` (group 370: metres, from hundredths of a millimetre; `ByLayer`
 *   (-1 or absent), `ByBlock` (-2), `Default` (-3));
 * - set `Attributes` (kind `Attributes`): one value per ATTRIB of a block reference, named by its tag, in file order;
 * - one set per XDATA application (kind `XData`, the set named by the application, group 1001): its values in order
 *   (`item` 0, 1, …), named by group code (`String`, `Real`, `Integer16`, `Point` with `x,y,z` as text, …), numbers
 *   as numbers.
 */
export function drawingProperties(e: IEntity, ex: Extras, layer: string, color: string): PropertyValue[] {
  const drawing = (name: string, v: Partial<PropertyValue>): PropertyValue => ({
    set: "Drawing",
    setKind: "Drawing",
    source: "Own",
    name,
    valueKind: v.number !== undefined ? "Number" : "Text",
    ...v,
  });
  const raw = ex.raw;
  const linetype = (raw ? firstGroup(raw, 6) : (e as { lineType?: string }).lineType) ?? "ByLayer";
  const weight = raw ? intGroup(raw, 370) : (e as { lineweight?: number }).lineweight;
  const special: Record<number, string> = { [-1]: "ByLayer", [-2]: "ByBlock", [-3]: "Default" };
  const lineweight =
    weight === undefined || special[weight] !== undefined
      ? drawing("Lineweight", { text: special[weight ?? -1] })
      : drawing("Lineweight", { number: weight / 1e5, text: String(weight / 1e5), unit: "m" });
  const out: PropertyValue[] = [
    drawing("Layer", { text: layer }),
    drawing("Color", { text: color }),
    drawing("Linetype", { text: decodeDxfString(linetype) }),
    lineweight,
  ];
  for (const a of (raw?.children ?? []).filter((c) => c.type === "ATTRIB")) {
    const tag = firstGroup(a, 2);
    if (tag === undefined) continue;
    out.push({
      set: "Attributes",
      setKind: "Attributes",
      source: "Own",
      name: decodeDxfString(tag),
      valueKind: "Text",
      text: plainText(firstGroup(a, 1) ?? ""),
    });
  }
  let app: string | undefined;
  let item = 0;
  const groups = raw?.groups ?? [];
  for (let i = 0; i < groups.length; i++) {
    const [code, value] = groups[i];
    if (code === 1001) {
      app = decodeDxfString(value);
      item = 0;
      continue;
    }
    if (code < 1000 || app === undefined) continue;
    if ((code >= 1020 && code <= 1023) || (code >= 1030 && code <= 1033)) continue; // y and z, read with the x
    const base = { set: app, setKind: "XData", source: "Own" as const, item: item++ };
    const name = XDATA_NAMES[code] ?? String(code);
    if (code >= 1010 && code <= 1013) {
      const y = groups[i + 1]?.[0] === code + 10 ? groups[i + 1][1] : "0";
      const z = groups[i + 2]?.[0] === code + 20 ? groups[i + 2][1] : "0";
      out.push({ ...base, name, valueKind: "Point", text: `${value},${y},${z}` });
    } else if (code >= 1040 && code <= 1071) {
      const n = Number(value);
      out.push({ ...base, name, valueKind: "Number", text: value, ...(Number.isFinite(n) ? { number: n } : {}) });
    } else {
      out.push({ ...base, name, valueKind: "Text", text: code === 1000 ? decodeDxfString(value) : value });
    }
  }
  return out;
}
