/**
 * What an IFC file says about its products beyond geometry: property sets and quantities (their own and their type's),
 * spatial containment and aggregation, types and materials, with values converted to the iModel's units
 * (docs/architecture.md "Content: properties, spatial structure, types, materials"). Reads an open web-ifc model,
 * synchronously (see `ifc.ts`).
 */
import * as WebIFC from "web-ifc";
import { NotWrittenTally } from "./common/items";
import { enumValue, ifcClassName, num, ref, SI_PREFIX, str } from "./ifc-lines";
import type { ElementKind, MaterialUse, PropertyValue, SourceDefinition } from "./types";

// ---------------------------------------------------------------------------------------------------------
// Units
// ---------------------------------------------------------------------------------------------------------

/** A unit: factor to the iModel's unit of its kind, and the label stored with converted values. */
interface Unit {
  scale: number;
  label?: string;
}

/** The iModel's unit per IFC unit type (values of these kinds are converted into it). */
const SI_TARGET: Record<string, string> = {
  LENGTHUNIT: "m",
  AREAUNIT: "m²",
  VOLUMEUNIT: "m³",
  MASSUNIT: "kg",
  TIMEUNIT: "s",
  PLANEANGLEUNIT: "rad",
};

/** IFC measure type → IFC unit type, for the measures whose project unit applies. */
const MEASURE_UNIT: Record<string, string> = {
  IFCLENGTHMEASURE: "LENGTHUNIT",
  IFCPOSITIVELENGTHMEASURE: "LENGTHUNIT",
  IFCNONNEGATIVELENGTHMEASURE: "LENGTHUNIT",
  IFCAREAMEASURE: "AREAUNIT",
  IFCVOLUMEMEASURE: "VOLUMEUNIT",
  IFCMASSMEASURE: "MASSUNIT",
  IFCTIMEMEASURE: "TIMEUNIT",
  IFCPLANEANGLEMEASURE: "PLANEANGLEUNIT",
  IFCPOSITIVEPLANEANGLEMEASURE: "PLANEANGLEUNIT",
  IFCPRESSUREMEASURE: "PRESSUREUNIT",
  IFCPOWERMEASURE: "POWERUNIT",
  IFCTHERMODYNAMICTEMPERATUREMEASURE: "THERMODYNAMICTEMPERATUREUNIT",
  IFCELECTRICCURRENTMEASURE: "ELECTRICCURRENTUNIT",
  IFCELECTRICVOLTAGEMEASURE: "ELECTRICVOLTAGEUNIT",
  IFCFORCEMEASURE: "FORCEUNIT",
  IFCFREQUENCYMEASURE: "FREQUENCYUNIT",
  IFCENERGYMEASURE: "ENERGYUNIT",
  IFCLUMINOUSFLUXMEASURE: "LUMINOUSFLUXUNIT",
  IFCILLUMINANCEMEASURE: "ILLUMINANCEUNIT",
  IFCVOLUMETRICFLOWRATEMEASURE: "VOLUMETRICFLOWRATEUNIT",
  IFCMASSDENSITYMEASURE: "MASSDENSITYUNIT",
  IFCTHERMALTRANSMITTANCEMEASURE: "THERMALTRANSMITTANCEUNIT",
};

/** Quantity class → value attribute, value kind and unit type. */
const QUANTITIES: [number, string, string, string | undefined][] = [
  [WebIFC.IFCQUANTITYLENGTH, "LengthValue", "Length", "LENGTHUNIT"],
  [WebIFC.IFCQUANTITYAREA, "AreaValue", "Area", "AREAUNIT"],
  [WebIFC.IFCQUANTITYVOLUME, "VolumeValue", "Volume", "VOLUMEUNIT"],
  [WebIFC.IFCQUANTITYCOUNT, "CountValue", "Count", undefined],
  [WebIFC.IFCQUANTITYWEIGHT, "WeightValue", "Weight", "MASSUNIT"],
  [WebIFC.IFCQUANTITYTIME, "TimeValue", "Time", "TIMEUNIT"],
];

/** SI unit names whose base unit is not the named unit itself (grams: the iModel's mass unit is the kilogram). */
const SI_UNIT_SYMBOL: Record<string, string> = {
  METRE: "m",
  SQUARE_METRE: "m²",
  CUBIC_METRE: "m³",
  GRAM: "kg",
  SECOND: "s",
  RADIAN: "rad",
  PASCAL: "Pa",
  WATT: "W",
  KELVIN: "K",
  DEGREE_CELSIUS: "°C",
  AMPERE: "A",
  VOLT: "V",
  NEWTON: "N",
  HERTZ: "Hz",
  JOULE: "J",
  LUMEN: "lm",
  LUX: "lx",
};

/**
 * The project's units (IfcProject.UnitsInContext) and any unit entity: scale to the iModel's unit for lengths, areas,
 * volumes, masses, times and plane angles (SI prefixes; conversion-based units such as inch, foot, square foot, pound,
 * degree, through their conversion factor), labels for others.
 */
export class IfcUnits {
  private readonly byType = new Map<string, Unit>();
  private readonly byId = new Map<number, Unit | undefined>();

  constructor(
    private readonly api: WebIFC.IfcAPI,
    private readonly modelId: number,
  ) {
    const projects = api.GetLineIDsWithType(modelId, WebIFC.IFCPROJECT, true);
    if (projects.size() === 0) return;
    const project = api.GetLine(modelId, projects.get(0));
    const assignmentId = ref(project?.UnitsInContext);
    if (assignmentId === undefined) return;
    const assignment = api.GetLine(modelId, assignmentId);
    for (const u of (assignment?.Units ?? []) as unknown[]) {
      const id = ref(u);
      if (id === undefined) continue;
      const line = api.GetLine(modelId, id);
      const type = enumValue(line?.UnitType);
      const unit = this.unit(id);
      if (type && unit && !this.byType.has(type)) this.byType.set(type, unit);
    }
  }

  /** The unit of a unit entity (IfcSIUnit, IfcConversionBasedUnit, IfcDerivedUnit…); undefined when unreadable. */
  unit(id: number, depth = 0): Unit | undefined {
    if (this.byId.has(id)) return this.byId.get(id);
    let result: Unit | undefined;
    try {
      result = this.readUnit(id, depth);
    } catch {
      result = undefined;
    }
    this.byId.set(id, result);
    return result;
  }

  private readUnit(id: number, depth: number): Unit | undefined {
    if (depth > 4) return undefined;
    const u = this.api.GetLine(this.modelId, id);
    if (!u) return undefined;
    if (u.type === WebIFC.IFCSIUNIT) {
      const name = enumValue(u.Name) ?? "";
      const prefix = enumValue(u.Prefix);
      const p = prefix ? (SI_PREFIX[prefix] ?? 1) : 1;
      if (name === "METRE") return { scale: p, label: "m" };
      if (name === "SQUARE_METRE") return { scale: p * p, label: "m²" };
      if (name === "CUBIC_METRE") return { scale: p * p * p, label: "m³" };
      if (name === "GRAM") return { scale: p * 1e-3, label: "kg" };
      if (name === "SECOND") return { scale: p, label: "s" };
      if (name === "RADIAN") return { scale: p, label: "rad" };
      const symbol = SI_UNIT_SYMBOL[name] ?? name.toLowerCase();
      return { scale: 1, label: `${prefix ? prefix.toLowerCase() : ""}${symbol}` };
    }
    if (u.type === WebIFC.IFCCONVERSIONBASEDUNIT || u.type === WebIFC.IFCCONVERSIONBASEDUNITWITHOFFSET) {
      const type = enumValue(u.UnitType) ?? "";
      const mwuId = ref(u.ConversionFactor);
      const mwu = mwuId !== undefined ? this.api.GetLine(this.modelId, mwuId) : undefined;
      const value = num(mwu?.ValueComponent);
      const baseId = ref(mwu?.UnitComponent);
      const base = baseId !== undefined ? this.unit(baseId, depth + 1) : undefined;
      if (SI_TARGET[type] && value !== undefined && base !== undefined)
        return { scale: value * base.scale, label: SI_TARGET[type] };
      return { scale: 1, label: str(this.api, u.Name) ?? type.toLowerCase() };
    }
    if (u.type === WebIFC.IFCDERIVEDUNIT) {
      const userDefined = str(this.api, u.UserDefinedType);
      return { scale: 1, label: userDefined ?? (enumValue(u.UnitType) ?? "").toLowerCase() };
    }
    if (u.type === WebIFC.IFCMONETARYUNIT) {
      const currency = str(this.api, u.Currency) ?? enumValue(u.Currency);
      return { scale: 1, ...(currency ? { label: currency } : {}) };
    }
    return undefined;
  }

  /** The project unit of an IFC unit type (`LENGTHUNIT`), SI by default for the kinds the iModel converts. */
  ofType(type: string): Unit | undefined {
    return this.byType.get(type) ?? (SI_TARGET[type] ? { scale: 1, label: SI_TARGET[type] } : undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------------------

/** Keeps 12 significant digits (drops conversion noise such as 0.30479999999999996), -0 as 0. */
function round(n: number): number {
  return Number.parseFloat(n.toPrecision(12)) + 0;
}

/** A value read from an IFC select: text, number (converted) and unit; `unsupported` when it is none of these. */
type ReadValue = { text?: string; number?: number; unit?: string } | "unsupported";

const TEXT_TYPES = new Set([
  "IFCLABEL",
  "IFCTEXT",
  "IFCIDENTIFIER",
  "IFCDESCRIPTIVEMEASURE",
  "IFCURIREFERENCE",
  "IFCDATE",
  "IFCDATETIME",
  "IFCTIME",
  "IFCDURATION",
  "IFCTIMESTAMP",
  "IFCGLOBALLYUNIQUEID",
  "IFCPRESENTABLETEXT",
  "IFCBINARY",
]);

/**
 * Reads a value of an IFC select (`{type, name, value}` from web-ifc): strings as text, booleans and logicals as
 * `true`/`false`/`unknown`, numbers converted with `explicitUnit` (the property's own Unit) or the project unit of the
 * measure's kind.
 */
function readValue(ctx: ContentContext, v: unknown, explicitUnit: Unit | undefined): ReadValue {
  if (v === null || v === undefined) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    if (typeof v === "number") return { number: round(v), text: String(round(v)) };
    if (typeof v === "string") return { text: v };
    return "unsupported";
  }
  const o = v as { name?: unknown; value?: unknown; type?: unknown };
  const measure = typeof o.name === "string" ? o.name.toUpperCase() : "";
  if (measure === "IFCBOOLEAN" || measure === "IFCLOGICAL") {
    const b = o.value;
    const text =
      b === true || b === "T" || b === ".T."
        ? "true"
        : b === false || b === "F" || b === ".F."
          ? "false"
          : (typeof b === "string" && /U/i.test(b)) || (b === undefined && measure === "IFCLOGICAL")
            ? "unknown" // web-ifc gives IFCLOGICAL(.U.) without a value
            : undefined;
    return text === undefined ? "unsupported" : { text };
  }
  if (TEXT_TYPES.has(measure) || (measure === "" && typeof o.value === "string")) {
    const text = str(ctx.api, v);
    return text === undefined ? "unsupported" : { text };
  }
  if (o.type === WebIFC.REF) return "unsupported";
  const n = num(v);
  if (n === undefined) {
    if (typeof o.value === "string") return { text: str(ctx.api, v) ?? o.value };
    return "unsupported";
  }
  const unitType = MEASURE_UNIT[measure];
  const unit = explicitUnit ?? (unitType ? ctx.units.ofType(unitType) : undefined);
  const number = round(n * (unit?.scale ?? 1));
  return { number, text: String(number), ...(unit?.label ? { unit: unit.label } : {}) };
}

// ---------------------------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------------------------

interface ContentContext {
  api: WebIFC.IfcAPI;
  modelId: number;
  units: IfcUnits;
}

/** A property set's values (source `Own`) and what of it could not be read, cached per set instance. */
interface SetContent {
  values: PropertyValue[];
  notWritten: { code: string; className: string; example: string }[];
}

/** What {@link IfcContentReader.elementContent} gives for one product. */
export interface ElementContent {
  container?: number;
  type?: number;
  materials: MaterialUse[];
  propertyValues: PropertyValue[];
}

/** Spatial kind of the spatial structure classes (IFC2X3 to IFC4X3), by web-ifc type code. */
const SPATIAL_KINDS: [number, ElementKind][] = [
  [WebIFC.IFCSITE, "Site"],
  [WebIFC.IFCBUILDING, "Facility"],
  [WebIFC.IFCFACILITY, "Facility"],
  [WebIFC.IFCBUILDINGSTOREY, "FacilityPart"],
  [WebIFC.IFCFACILITYPART, "FacilityPart"],
  [WebIFC.IFCSPACE, "Space"],
];

function sortValues(values: PropertyValue[]): PropertyValue[] {
  const key = (v: PropertyValue) => [v.source, v.setKind, v.set, v.name];
  return values.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return (a.item ?? -1) - (b.item ?? -1);
  });
}

/**
 * Reads property sets, quantities, types, materials and spatial relationships of an open model. Build it once per
 * parse; it indexes the relationship instances (IfcRelDefinesByProperties, IfcRelDefinesByType,
 * IfcRelContainedInSpatialStructure, IfcRelAggregates, IfcRelAssociatesMaterial) on construction.
 */
export class IfcContentReader {
  private readonly ctx: ContentContext;
  private readonly setsOf = new Map<number, number[]>();
  private readonly typeOf = new Map<number, number>();
  private readonly containerOf = new Map<number, number>();
  private readonly aggregateOf = new Map<number, number>();
  private readonly materialOf = new Map<number, number>();
  private readonly setCache = new Map<number, SetContent>();
  private readonly materialUseCache = new Map<number, { uses: MaterialUse[]; missing: string[] }>();
  /** Material instance → identifier (`Material:<name>`). */
  private readonly materialIds = new Map<number, string>();
  /** Definitions by identifier, in first-read order. */
  private readonly definitions = new Map<string, SourceDefinition>();
  private readonly typeIds = new Map<number, string>();
  /** Property values and relationships that could not be written, by reason. */
  readonly propertiesNotWritten = new NotWrittenTally();
  readonly relationshipsNotWritten = new NotWrittenTally();
  propertiesRead = 0;
  /** Material references (of elements and types) that are no material of the file. */
  materialMisses = 0;

  constructor(api: WebIFC.IfcAPI, modelId: number) {
    this.ctx = { api, modelId, units: new IfcUnits(api, modelId) };
    const ids = (code: number): number[] => {
      try {
        return [...api.GetLineIDsWithType(modelId, code, true)].sort((a, b) => a - b);
      } catch {
        return [];
      }
    };
    const refs = (v: unknown): number[] =>
      (Array.isArray(v) ? v : v === null || v === undefined ? [] : [v])
        .map((x) => ref(x))
        .filter((x): x is number => x !== undefined);
    for (const id of ids(WebIFC.IFCRELDEFINESBYPROPERTIES)) {
      const rel = api.GetLine(modelId, id);
      const sets = refs(rel?.RelatingPropertyDefinition);
      for (const o of refs(rel?.RelatedObjects)) this.setsOf.set(o, [...(this.setsOf.get(o) ?? []), ...sets]);
    }
    for (const id of ids(WebIFC.IFCRELDEFINESBYTYPE)) {
      const rel = api.GetLine(modelId, id);
      const type = ref(rel?.RelatingType);
      if (type === undefined) continue;
      for (const o of refs(rel?.RelatedObjects)) if (!this.typeOf.has(o)) this.typeOf.set(o, type);
    }
    for (const id of ids(WebIFC.IFCRELCONTAINEDINSPATIALSTRUCTURE)) {
      const rel = api.GetLine(modelId, id);
      const structure = ref(rel?.RelatingStructure);
      if (structure === undefined) continue;
      for (const o of refs(rel?.RelatedElements)) if (!this.containerOf.has(o)) this.containerOf.set(o, structure);
    }
    for (const id of ids(WebIFC.IFCRELAGGREGATES)) {
      const rel = api.GetLine(modelId, id);
      const whole = ref(rel?.RelatingObject);
      if (whole === undefined) continue;
      for (const o of refs(rel?.RelatedObjects)) if (!this.aggregateOf.has(o)) this.aggregateOf.set(o, whole);
    }
    for (const id of ids(WebIFC.IFCRELASSOCIATESMATERIAL)) {
      const rel = api.GetLine(modelId, id);
      const material = ref(rel?.RelatingMaterial);
      if (material === undefined) continue;
      for (const o of refs(rel?.RelatedObjects)) if (!this.materialOf.has(o)) this.materialOf.set(o, material);
    }
    // Every material and type of the file is a definition (referenced or not).
    for (const id of ids(WebIFC.IFCMATERIAL)) this.material(id);
    for (const id of ids(WebIFC.IFCTYPEOBJECT)) this.type(id);
  }

  /** Spatial kind of a product, by its class; undefined for other products. */
  spatialKind(typeCode: number): ElementKind | undefined {
    for (const [code, kind] of SPATIAL_KINDS) {
      if (typeCode === code) return kind;
    }
    return undefined;
  }

  /** All spatial structure instances of the model with their kind (IfcFacility subtypes included). */
  spatialInstances(): Map<number, ElementKind> {
    const out = new Map<number, ElementKind>();
    for (const [code, kind] of SPATIAL_KINDS) {
      let list: number[];
      try {
        list = [...this.ctx.api.GetLineIDsWithType(this.ctx.modelId, code, true)];
      } catch {
        list = []; // a class the file's schema lacks (IfcFacility in IFC2X3)
      }
      for (const id of list) if (!out.has(id)) out.set(id, kind);
    }
    return out;
  }

  /** The spatial structure element holding a product: its container, or for parts of an aggregate the aggregate's. */
  holder(id: number, spatial: Map<number, ElementKind>): number | undefined {
    if (spatial.has(id)) {
      const parent = this.aggregateOf.get(id);
      return parent !== undefined && spatial.has(parent) ? parent : undefined;
    }
    let current = id;
    for (let depth = 0; depth < 16; depth++) {
      const container = this.containerOf.get(current);
      if (container !== undefined) return container;
      const whole = this.aggregateOf.get(current);
      if (whole === undefined) return undefined;
      current = whole;
    }
    return undefined;
  }

  /** The content of one product (element or spatial structure element). */
  elementContent(id: number, spatial: Map<number, ElementKind>): ElementContent {
    const own = this.setsValues(this.setsOf.get(id) ?? []);
    const type = this.typeOf.get(id);
    const values = [...own];
    let materials: MaterialUse[] = [];
    const materialId = this.materialOf.get(id);
    if (materialId !== undefined) materials = this.materialUses(materialId, `#${id}`);
    if (type !== undefined) {
      const typeDef = this.typeIds.has(type) ? this.definitions.get(this.typeIds.get(type)!) : undefined;
      if (typeDef) {
        const ownKeys = new Set(own.map((v) => `${v.set}\u0000${v.name}`));
        for (const v of typeDef.propertyValues ?? [])
          if (!ownKeys.has(`${v.set}\u0000${v.name}`)) values.push({ ...v, source: "Type" });
        if (materials.length === 0 && typeDef.materials) materials = typeDef.materials; // the type's, unless overridden
      }
    }
    const out: ElementContent = { materials, propertyValues: sortValues(values) };
    const container = this.holder(id, spatial);
    if (container !== undefined) out.container = container;
    if (type !== undefined) out.type = type;
    return out;
  }

  /** Type identifier of a type instance, when it is a definition. */
  typeIdentifier(typeId: number): string | undefined {
    return this.typeIds.get(typeId);
  }

  /** The definitions read (types and materials), materials first. */
  allDefinitions(): SourceDefinition[] {
    const list = [...this.definitions.values()];
    return [...list.filter((d) => d.kind === "material"), ...list.filter((d) => d.kind === "type")];
  }

  /** Counts a relationship not written (`MissingReference`, `TargetNotWritten`, …). */
  relationshipNotWritten(code: string, className: string, example: string): void {
    this.relationshipsNotWritten.add(code, className, example);
  }

  // -------------------------------------------------------------------------------------------------------

  private line(id: number): Record<string, unknown> | undefined {
    try {
      return this.ctx.api.GetLine(this.ctx.modelId, id) as Record<string, unknown> | undefined;
    } catch {
      return undefined;
    }
  }

  private className(id: number): string {
    try {
      return ifcClassName(this.ctx.api, this.ctx.api.GetLineType(this.ctx.modelId, id));
    } catch {
      return "";
    }
  }

  /** Values of several property definitions (a set may also be listed as IFC4 IfcPropertySetDefinitionSet). */
  private setsValues(setIds: number[]): PropertyValue[] {
    const out: PropertyValue[] = [];
    for (const setId of setIds) out.push(...this.setContent(setId).values);
    return out;
  }

  /**
   * The values of one IfcPropertySet or IfcElementQuantity (cached). Property values that cannot be read are not
   * written: `UnsupportedPropertyType` (IfcComplexProperty, IfcPropertyReferenceValue, IfcPhysicalComplexQuantity…),
   * `UnsupportedValueType` (a value that is no text, number or boolean), `MissingReference` (a property or set
   * instance that is not in the file), `UnsupportedPropertySet` (predefined sets such as IfcDoorLiningProperties).
   * Counted once per element that uses the set (see {@link countSet}).
   */
  private setContent(setId: number): SetContent {
    const cached = this.setCache.get(setId);
    if (cached) return cached;
    const content: SetContent = { values: [], notWritten: [] };
    this.setCache.set(setId, content);
    const set = this.line(setId);
    if (!set) {
      content.notWritten.push({
        code: "MissingReference",
        className: "IfcPropertySetDefinition",
        example: `#${setId}`,
      });
      return content;
    }
    const setName = str(this.ctx.api, set.Name) ?? "";
    if (set.type === WebIFC.IFCPROPERTYSET) {
      for (const p of (set.HasProperties ?? []) as unknown[]) this.readProperty(ref(p), setName, content);
    } else if (set.type === WebIFC.IFCELEMENTQUANTITY) {
      for (const q of (set.Quantities ?? []) as unknown[]) this.readQuantity(ref(q), setName, content);
    } else {
      content.notWritten.push({
        code: "UnsupportedPropertySet",
        className: this.className(setId),
        example: `${setName || "(unnamed)"} #${setId}`,
      });
    }
    return content;
  }

  private readProperty(id: number | undefined, setName: string, content: SetContent): void {
    const p = id !== undefined ? this.line(id) : undefined;
    if (!p || id === undefined) {
      content.notWritten.push({ code: "MissingReference", className: "IfcProperty", example: `${setName} #${id}` });
      return;
    }
    const name = str(this.ctx.api, p.Name) ?? "";
    const base = { set: setName, setKind: "PropertySet", source: "Own" as const, name };
    const explicit = ref(p.Unit);
    const unit = explicit !== undefined ? this.ctx.units.unit(explicit) : undefined;
    const unsupported = (code: string, className = this.className(id)): void => {
      content.notWritten.push({ code, className, example: `${setName}.${name} #${id}` });
    };
    const push = (valueKind: string, v: ReadValue, extra: Partial<PropertyValue> = {}): void => {
      if (v === "unsupported") return unsupported("UnsupportedValueType");
      content.values.push({ ...base, valueKind, ...v, ...extra });
    };
    switch (p.type) {
      case WebIFC.IFCPROPERTYSINGLEVALUE:
        push("Single", readValue(this.ctx, p.NominalValue, unit));
        return;
      case WebIFC.IFCPROPERTYENUMERATEDVALUE:
      case WebIFC.IFCPROPERTYLISTVALUE: {
        const kind = p.type === WebIFC.IFCPROPERTYLISTVALUE ? "List" : "Enumerated";
        const list = (p.type === WebIFC.IFCPROPERTYLISTVALUE ? p.ListValues : p.EnumerationValues) as unknown;
        const items = Array.isArray(list) ? list : [];
        if (items.length === 0) push(kind, {});
        const read = items.map((item) => readValue(this.ctx, item, unit));
        if (read.some((r) => r === "unsupported")) return unsupported("UnsupportedValueType");
        read.forEach((r, item) => push(kind, r, { item }));
        return;
      }
      case WebIFC.IFCPROPERTYBOUNDEDVALUE: {
        const lower = readValue(this.ctx, p.LowerBoundValue, unit);
        const upper = readValue(this.ctx, p.UpperBoundValue, unit);
        const setPoint = readValue(this.ctx, p.SetPointValue, unit);
        if (lower === "unsupported" || upper === "unsupported" || setPoint === "unsupported")
          return unsupported("UnsupportedValueType");
        const value: PropertyValue = { ...base, valueKind: "Bounded" };
        if (lower.number !== undefined) value.lower = lower.number;
        if (upper.number !== undefined) value.upper = upper.number;
        if (setPoint.number !== undefined) value.number = setPoint.number;
        const unitLabel = lower.unit ?? upper.unit ?? setPoint.unit;
        if (unitLabel) value.unit = unitLabel;
        if (lower.text !== undefined || upper.text !== undefined)
          value.text = `${lower.text ?? ""}..${upper.text ?? ""}`;
        else if (setPoint.text !== undefined) value.text = setPoint.text;
        content.values.push(value);
        return;
      }
      case WebIFC.IFCPROPERTYTABLEVALUE: {
        const defining = Array.isArray(p.DefiningValues) ? (p.DefiningValues as unknown[]) : [];
        const defined = Array.isArray(p.DefinedValues) ? (p.DefinedValues as unknown[]) : [];
        const definingUnitId = ref(p.DefiningUnit);
        const definedUnitId = ref(p.DefinedUnit);
        const definingUnit = definingUnitId !== undefined ? this.ctx.units.unit(definingUnitId) : undefined;
        const definedUnit = definedUnitId !== undefined ? this.ctx.units.unit(definedUnitId) : undefined;
        const rows = Math.max(defining.length, defined.length);
        if (rows === 0) return push("Table", {});
        const read = [];
        for (let i = 0; i < rows; i++) {
          const d = readValue(this.ctx, defining[i], definingUnit);
          const v = readValue(this.ctx, defined[i], definedUnit);
          if (d === "unsupported" || v === "unsupported") return unsupported("UnsupportedValueType");
          read.push({ d, v });
        }
        read.forEach(({ d, v }, item) =>
          push("Table", v, { item, ...(d.text !== undefined ? { defining: d.text } : {}) }),
        );
        return;
      }
      default:
        unsupported("UnsupportedPropertyType");
    }
  }

  private readQuantity(id: number | undefined, setName: string, content: SetContent): void {
    const q = id !== undefined ? this.line(id) : undefined;
    if (!q || id === undefined) {
      content.notWritten.push({
        code: "MissingReference",
        className: "IfcPhysicalQuantity",
        example: `${setName} #${id}`,
      });
      return;
    }
    const name = str(this.ctx.api, q.Name) ?? "";
    const spec = QUANTITIES.find(([code]) => code === q.type);
    if (!spec) {
      content.notWritten.push({
        code: "UnsupportedPropertyType",
        className: this.className(id),
        example: `${setName}.${name} #${id}`,
      });
      return;
    }
    const [, attribute, valueKind, unitType] = spec;
    const explicit = ref(q.Unit);
    const unit =
      (explicit !== undefined ? this.ctx.units.unit(explicit) : undefined) ??
      (unitType ? this.ctx.units.ofType(unitType) : undefined);
    const n = num(q[attribute]);
    const value: PropertyValue = { set: setName, setKind: "QuantitySet", source: "Own", name, valueKind };
    if (n !== undefined) {
      value.number = round(n * (unit?.scale ?? 1));
      value.text = String(value.number);
      if (unit?.label) value.unit = unit.label;
    }
    content.values.push(value);
  }

  /** Counts an element's property values as read, and the sets' unreadable properties as not written. */
  countProperties(setIds: readonly number[], values: number): void {
    this.propertiesRead += values;
    for (const setId of setIds) {
      for (const n of this.setContent(setId).notWritten) {
        this.propertiesRead++;
        this.propertiesNotWritten.add(n.code, n.className, n.example);
      }
    }
  }

  /** The set instances of a product (own) and of its type, for {@link countProperties}. */
  setIdsOf(id: number): number[] {
    const type = this.typeOf.get(id);
    const typeLine = type !== undefined ? this.line(type) : undefined;
    const typeSets = ((typeLine?.HasPropertySets ?? []) as unknown[]).map((s) => ref(s)).filter((s) => s !== undefined);
    return [...(this.setsOf.get(id) ?? []), ...(typeSets as number[])];
  }

  /** Set instances of a type, for {@link countProperties}. */
  typeSetIds(typeId: number): number[] {
    const typeLine = this.line(typeId);
    return ((typeLine?.HasPropertySets ?? []) as unknown[])
      .map((s) => ref(s))
      .filter((s): s is number => s !== undefined);
  }

  private material(id: number): string | undefined {
    const known = this.materialIds.get(id);
    if (known) return known;
    const m = this.line(id);
    if (!m || m.type !== WebIFC.IFCMATERIAL) return undefined;
    const name = str(this.ctx.api, m.Name) ?? "";
    const identifier = `Material:${name}`;
    this.materialIds.set(id, identifier);
    if (!this.definitions.has(identifier)) {
      const properties: Record<string, unknown> = { ifcClass: "IfcMaterial" };
      const category = str(this.ctx.api, m.Category);
      if (category) properties.category = category;
      const description = str(this.ctx.api, m.Description);
      if (description) properties.description = description;
      this.definitions.set(identifier, {
        identifier,
        kind: "material",
        className: "IfcMaterial",
        name,
        properties,
        checksum: "",
      });
    }
    return identifier;
  }

  private type(id: number): void {
    const t = this.line(id);
    const globalId = str(this.ctx.api, t?.GlobalId);
    if (!t || !globalId || this.definitions.has(globalId)) return;
    const className = this.className(id);
    const properties: Record<string, unknown> = { ifcClass: className, globalId };
    for (const [attribute, key] of [
      ["Tag", "tag"],
      ["ElementType", "elementType"],
      ["Description", "description"],
    ] as const) {
      const v = str(this.ctx.api, t[attribute]);
      if (v) properties[key] = v;
    }
    const predefined = enumValue(t.PredefinedType);
    if (predefined) properties.predefinedType = predefined;
    const def: SourceDefinition = {
      identifier: globalId,
      kind: "type",
      className,
      properties,
      propertyValues: sortValues(this.setsValues(this.typeSetIds(id))),
      checksum: "",
    };
    const name = str(this.ctx.api, t.Name);
    if (name) def.name = name;
    const materialId = this.materialOf.get(id);
    if (materialId !== undefined) def.materials = this.materialUses(materialId, globalId);
    this.definitions.set(globalId, def);
    this.typeIds.set(id, globalId);
  }

  /**
   * The material uses of a material select (IfcMaterial, IfcMaterialList, layer set (usage), profile set (usage),
   * constituent set, or a single layer, profile or constituent), cached. A material reference that is not an
   * IfcMaterial of the file is counted as a relationship not written (`MissingReference`) for each element using it.
   */
  private materialUses(selectId: number, example: string): MaterialUse[] {
    let cached = this.materialUseCache.get(selectId);
    if (!cached) {
      cached = { uses: [], missing: [] };
      this.materialUseCache.set(selectId, cached);
      this.readMaterialSelect(selectId, cached);
    }
    for (const m of cached.missing) {
      this.materialMisses++;
      this.relationshipNotWritten("MissingReference", "IfcMaterial", `${example} → ${m}`);
    }
    return cached.uses;
  }

  private readMaterialSelect(selectId: number, out: { uses: MaterialUse[]; missing: string[] }): void {
    const api = this.ctx.api;
    const use = (materialRef: unknown, u: Omit<MaterialUse, "material">) => {
      const id = ref(materialRef);
      if (id === undefined) return; // e.g. an air layer: no material
      const identifier = this.material(id);
      if (identifier === undefined) out.missing.push(`#${id}`);
      else out.uses.push({ material: identifier, ...u });
    };
    const line = this.line(selectId);
    if (!line) {
      out.missing.push(`#${selectId}`);
      return;
    }
    const lengthUnit = this.ctx.units.ofType("LENGTHUNIT");
    const common = (l: Record<string, unknown>) => {
      const extra: Partial<MaterialUse> = {};
      const name = str(api, l.Name);
      if (name) extra.partName = name;
      const category = str(api, l.Category);
      if (category) extra.category = category;
      return extra;
    };
    const layers = (setLine: Record<string, unknown> | undefined) => {
      const setName = str(api, setLine?.LayerSetName);
      ((setLine?.MaterialLayers ?? []) as unknown[]).forEach((layerRef, position) => {
        const layer = this.line(ref(layerRef) ?? -1);
        if (!layer) {
          out.missing.push(`#${ref(layerRef)}`);
          return;
        }
        const thickness = num(layer.LayerThickness);
        use(layer.Material, {
          usage: "Layer",
          position,
          ...common(layer),
          ...(thickness !== undefined ? { thickness: round(thickness * (lengthUnit?.scale ?? 1)) } : {}),
          ...(setName ? { setName } : {}),
        });
      });
    };
    const profiles = (setLine: Record<string, unknown> | undefined) => {
      const setName = str(api, setLine?.Name);
      ((setLine?.MaterialProfiles ?? []) as unknown[]).forEach((profileRef, position) => {
        const profile = this.line(ref(profileRef) ?? -1);
        if (!profile) {
          out.missing.push(`#${ref(profileRef)}`);
          return;
        }
        use(profile.Material, { usage: "Profile", position, ...common(profile), ...(setName ? { setName } : {}) });
      });
    };
    switch (line.type) {
      case WebIFC.IFCMATERIAL:
        use({ type: WebIFC.REF, value: selectId }, { usage: "Material", position: 0 });
        return;
      case WebIFC.IFCMATERIALLIST:
        ((line.Materials ?? []) as unknown[]).forEach((m, position) => use(m, { usage: "List", position }));
        return;
      case WebIFC.IFCMATERIALLAYERSETUSAGE:
        layers(this.line(ref(line.ForLayerSet) ?? -1));
        return;
      case WebIFC.IFCMATERIALLAYERSET:
        layers(line);
        return;
      case WebIFC.IFCMATERIALLAYER:
      case WebIFC.IFCMATERIALLAYERWITHOFFSETS:
        layers({ MaterialLayers: [{ type: WebIFC.REF, value: selectId }] });
        return;
      case WebIFC.IFCMATERIALPROFILESETUSAGE:
      case WebIFC.IFCMATERIALPROFILESETUSAGETAPERING:
        profiles(this.line(ref(line.ForProfileSet) ?? -1));
        return;
      case WebIFC.IFCMATERIALPROFILESET:
        profiles(line);
        return;
      case WebIFC.IFCMATERIALPROFILE:
      case WebIFC.IFCMATERIALPROFILEWITHOFFSETS:
        profiles({ MaterialProfiles: [{ type: WebIFC.REF, value: selectId }] });
        return;
      case WebIFC.IFCMATERIALCONSTITUENTSET: {
        const setName = str(api, line.Name);
        ((line.MaterialConstituents ?? []) as unknown[]).forEach((cRef, position) => {
          const c = this.line(ref(cRef) ?? -1);
          if (!c) {
            out.missing.push(`#${ref(cRef)}`);
            return;
          }
          const fraction = num(c.Fraction);
          use(c.Material, {
            usage: "Constituent",
            position,
            ...common(c),
            ...(fraction !== undefined ? { fraction: round(fraction) } : {}),
            ...(setName ? { setName } : {}),
          });
        });
        return;
      }
      case WebIFC.IFCMATERIALCONSTITUENT: {
        const fraction = num(line.Fraction);
        use(line.Material, {
          usage: "Constituent",
          position: 0,
          ...common(line),
          ...(fraction !== undefined ? { fraction: round(fraction) } : {}),
        });
        return;
      }
      default:
        out.missing.push(`${this.className(selectId)} #${selectId}`);
    }
  }
}
