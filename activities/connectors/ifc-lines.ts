/**
 * Reading web-ifc line objects: numbers, strings (IFC escapes decoded), references, enumerations, IFC class names and
 * unit scales. Shared by the IFC connector's geometry and georeference reading (`ifc.ts`) and its content reading
 * (`ifc-content.ts`).
 */
import * as WebIFC from "web-ifc";

/** Numeric value of a web-ifc attribute (plain number, `{value}`, or REAL `{_representationValue}`). */
export function num(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof o.value === "number") return o.value;
    if (typeof o._representationValue === "number") return o._representationValue;
    if (typeof o._internalValue === "string") {
      const n = Number.parseFloat(o._internalValue);
      return Number.isFinite(n) ? n : undefined;
    }
  }
  return undefined;
}

const IFC_ESCAPE = /\\(X2|X4|X|S|P[A-I]?)\\/;

/** String value of a web-ifc attribute, with IFC escapes (\X2\…\X0\, \S\, \X\) decoded if still present. */
export function str(api: WebIFC.IfcAPI, v: unknown): string | undefined {
  let s: unknown = v;
  if (v && typeof v === "object") s = (v as { value?: unknown }).value;
  if (typeof s !== "string") return undefined;
  if (IFC_ESCAPE.test(s)) {
    try {
      const d: unknown = api.DecodeText(s);
      if (typeof d === "string") s = d;
    } catch {
      // keep the raw text
    }
  }
  return s as string;
}

export function ref(v: unknown): number | undefined {
  if (v && typeof v === "object" && (v as { type?: unknown }).type === WebIFC.REF) {
    const id = (v as { value?: unknown }).value;
    return typeof id === "number" ? id : undefined;
  }
  return typeof v === "number" ? v : undefined;
}

export function enumValue(v: unknown): string | undefined {
  if (v && typeof v === "object") {
    const e = (v as { value?: unknown }).value;
    return typeof e === "string" ? e.replace(/^\./, "").replace(/\.$/, "").toUpperCase() : undefined;
  }
  return typeof v === "string" ? v.replace(/\./g, "").toUpperCase() : undefined;
}

/** Upper-case IFC name -> real IFC spelling, from the schema classes web-ifc exports (e.g. IFCBEAM -> IfcBeam). */
let classNameTable: Map<string, string> | undefined;

export function ifcClassName(api: WebIFC.IfcAPI, typeCode: number): string {
  if (!classNameTable) {
    classNameTable = new Map();
    for (const schema of [WebIFC.IFC2X3, WebIFC.IFC4, WebIFC.IFC4X3] as unknown as Record<string, unknown>[]) {
      for (const key of Object.keys(schema)) {
        if (/^Ifc[A-Z]/.test(key) && typeof schema[key] === "function") classNameTable.set(key.toUpperCase(), key);
      }
    }
  }
  const raw = api.GetNameFromTypeCode(typeCode) ?? "";
  return classNameTable.get(raw.toUpperCase()) ?? raw;
}

export const SI_PREFIX: Record<string, number> = {
  EXA: 1e18,
  PETA: 1e15,
  TERA: 1e12,
  GIGA: 1e9,
  MEGA: 1e6,
  KILO: 1e3,
  HECTO: 1e2,
  DECA: 1e1,
  DECI: 1e-1,
  CENTI: 1e-2,
  MILLI: 1e-3,
  MICRO: 1e-6,
  NANO: 1e-9,
  PICO: 1e-12,
  FEMTO: 1e-15,
  ATTO: 1e-18,
};

/** Metres per unit of a length unit entity (IfcSIUnit or IfcConversionBasedUnit). */
export function lengthUnitScale(api: WebIFC.IfcAPI, modelId: number, unitId: number, depth = 0): number | undefined {
  if (depth > 4) return undefined;
  const u = api.GetLine(modelId, unitId);
  if (!u) return undefined;
  if (u.type === WebIFC.IFCSIUNIT) {
    const prefix = enumValue(u.Prefix);
    return prefix ? (SI_PREFIX[prefix] ?? 1) : 1;
  }
  if (u.type === WebIFC.IFCCONVERSIONBASEDUNIT || u.type === WebIFC.IFCCONVERSIONBASEDUNITWITHOFFSET) {
    const mwuId = ref(u.ConversionFactor);
    if (mwuId === undefined) return undefined;
    const mwu = api.GetLine(modelId, mwuId);
    const value = num(mwu?.ValueComponent);
    const baseId = ref(mwu?.UnitComponent);
    const base = baseId !== undefined ? lengthUnitScale(api, modelId, baseId, depth + 1) : 1;
    return value !== undefined && base !== undefined ? value * base : undefined;
  }
  return undefined;
}

/** IFC spelling of an upper-case STEP type name (`IFCRAIL` → `IfcRail`), or the name itself when unknown. */
export function ifcSpelling(api: WebIFC.IfcAPI, upper: string): string {
  ifcClassName(api, WebIFC.IFCPROJECT); // fills the table
  return classNameTable?.get(upper) ?? upper;
}
