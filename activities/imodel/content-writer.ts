/**
 * Writing the content of source elements and definitions beyond geometry (docs/architecture.md "Content: properties,
 * spatial structure, types, materials"): property values as `ImodelSync:PropertyValue` aspects, spatial containment
 * and material uses as link-table relationships, types and materials as definition elements in the file's definition
 * model. Runs inside the writer's transaction (./writer).
 */
import {
  DefinitionModel,
  ExternalSourceAspect,
  InformationPartitionElement,
  type StandaloneDb,
} from "@itwin/core-backend";
import type { Id64String } from "@itwin/core-bentley";
import { Code, type ElementAspectProps, type ElementProps, type ExternalSourceAspectProps } from "@itwin/core-common";
import type { MaterialUse, PropertyValue, SourceDefinition, SourceElement } from "../connectors/types";
import { NotWrittenTally } from "../connectors/common/items";

/** ExternalSourceAspect Kind of types and materials (elements have Kind "Element"). */
export const KIND_DEFINITION = "Definition";
/** Identifier of the definition model's "Model" aspect: `${sourceFileId}${DEFINITIONS_SUFFIX}`. */
export const DEFINITIONS_SUFFIX = "#definitions";

export const PROPERTY_VALUE_CLASS = "ImodelSync:PropertyValue";
const PROPERTY_VALUE_OWNER = "ImodelSync:ElementOwnsPropertyValues";
export const CONTAINS_CLASS = "ImodelSync:SpatialStructureElementContainsElements";
export const AGGREGATES_CLASS = "ImodelSync:SpatialStructureElementAggregatesElements";
export const USES_MATERIAL_CLASS = "ImodelSync:ElementUsesMaterial";

/** The aspect of one property value. */
function propertyValueProps(elementId: Id64String, v: PropertyValue): ElementAspectProps {
  const props: Record<string, unknown> = {
    classFullName: PROPERTY_VALUE_CLASS,
    element: { id: elementId, relClassName: PROPERTY_VALUE_OWNER },
    setName: v.set,
    setKind: v.setKind,
    source: v.source,
    name: v.name,
    valueKind: v.valueKind,
  };
  if (v.item !== undefined) props.itemIndex = v.item;
  if (v.text !== undefined) props.textValue = v.text;
  if (v.number !== undefined) props.numberValue = v.number;
  if (v.unit !== undefined) props.unit = v.unit;
  if (v.lower !== undefined) props.lowerBound = v.lower;
  if (v.upper !== undefined) props.upperBound = v.upper;
  if (v.defining !== undefined) props.definingValue = v.defining;
  return props as unknown as ElementAspectProps;
}

/** Inserts the property values of a new element or definition. */
export function insertPropertyValues(db: StandaloneDb, elementId: Id64String, values: readonly PropertyValue[]): void {
  for (const v of values) db.elements.insertAspect(propertyValueProps(elementId, v));
}

/** Replaces the property values of an element or definition: its aspects are deleted and the values inserted. */
export function replacePropertyValues(db: StandaloneDb, elementId: Id64String, values: readonly PropertyValue[]): void {
  const old = db.elements.getAspects(elementId, PROPERTY_VALUE_CLASS).map((a) => a.id);
  if (old.length > 0) db.elements.deleteAspect(old);
  insertPropertyValues(db, elementId, values);
}

/** The link-table relationships of `classFullName` with source (or target) `elementId`, for replacement. */
function relationshipIds(
  db: StandaloneDb,
  classFullName: string,
  end: "Source" | "Target",
  elementId: Id64String,
): Id64String[] {
  const [schema, name] = classFullName.split(":");
  return db.withPreparedSqliteStatement(
    `SELECT r.Id FROM bis_ElementRefersToElements r JOIN ec_Class c ON c.Id=r.ECClassId JOIN ec_Schema s ON s.Id=c.SchemaId
      WHERE s.Name=? AND c.Name=? AND r.${end}Id=?`,
    (stmt) => {
      stmt.bindString(1, schema);
      stmt.bindString(2, name);
      stmt.bindId(3, elementId);
      const ids: Id64String[] = [];
      while (stmt.step() === 100 /* BE_SQLITE_ROW */) ids.push(stmt.getValueId(0));
      return ids;
    },
  );
}

/** Deletes the element's relationships of `classFullName` where it is the `end`. */
export function deleteRelationships(
  db: StandaloneDb,
  classFullName: string,
  end: "Source" | "Target",
  elementId: Id64String,
): void {
  for (const id of relationshipIds(db, classFullName, end, elementId))
    db.relationships.deleteInstance({ id, classFullName, sourceId: "", targetId: "" });
}

/** Inserts "contained in" (container → element). */
export function insertContainment(db: StandaloneDb, containerId: Id64String, elementId: Id64String): void {
  db.relationships.insertInstance({ classFullName: CONTAINS_CLASS, sourceId: containerId, targetId: elementId });
}

/** Inserts the material uses of an element or type whose materials are in the iModel (resolved by identifier). */
export function insertMaterialUses(
  db: StandaloneDb,
  elementId: Id64String,
  uses: readonly MaterialUse[],
  materialIds: ReadonlyMap<string, Id64String>,
): number {
  let written = 0;
  for (const u of uses) {
    const targetId = materialIds.get(u.material);
    if (!targetId) continue;
    const props: Record<string, unknown> = {
      classFullName: USES_MATERIAL_CLASS,
      sourceId: elementId,
      targetId,
      usage: u.usage,
      position: u.position,
    };
    if (u.thickness !== undefined) props.thickness = u.thickness;
    if (u.partName !== undefined) props.partName = u.partName;
    if (u.category !== undefined) props.partCategory = u.category;
    if (u.fraction !== undefined) props.fraction = u.fraction;
    if (u.setName !== undefined) props.setName = u.setName;
    db.relationships.insertInstance(props as never);
    written++;
  }
  return written;
}

/** Finds or creates the file's definition model (a DefinitionPartition under the connection's Subject). */
export function ensureDefinitionModel(
  db: StandaloneDb,
  subjectId: Id64String,
  existingId: Id64String | undefined,
  sourceFilePath: string,
  aspect: Omit<ExternalSourceAspectProps, "element">,
): Id64String {
  const name = `${sourceFilePath} (types and materials)`;
  const code = InformationPartitionElement.createCode(db, subjectId, name);
  let modelId = existingId ?? db.elements.queryElementIdByCode(code);
  if (!modelId) {
    modelId = DefinitionModel.insert(db, subjectId, name);
  } else {
    const partition = db.elements.getElementProps(modelId);
    if (partition.code.value !== name) db.elements.updateElement({ ...partition, code });
  }
  const existing = db.elements
    .getAspects(modelId, ExternalSourceAspect.classFullName)
    .filter((a): a is ExternalSourceAspect => a instanceof ExternalSourceAspect)
    .find((a) => a.kind === aspect.kind && a.scope?.id === aspect.scope.id && a.identifier === aspect.identifier);
  const props = {
    ...aspect,
    element: { id: modelId, relClassName: "BisCore:ElementOwnsExternalSourceAspects" },
  } as ExternalSourceAspectProps;
  if (!existing) db.elements.insertAspect(props);
  else if (existing.version !== aspect.version) db.elements.updateAspect({ ...props, id: existing.id } as never);
  return modelId;
}

/** The element props of a definition (type: `Generic:PhysicalType`; material: `ImodelSync:Material`). */
export function definitionProps(d: SourceDefinition, modelId: Id64String): ElementProps {
  const props: Record<string, unknown> = {
    classFullName: d.kind === "type" ? "Generic:PhysicalType" : "ImodelSync:Material",
    model: modelId,
    code: Code.createEmpty(),
    userLabel: d.name,
    jsonProperties: { imodelSync: { properties: d.properties ?? {} } },
  };
  if (d.kind === "material") {
    const p = d.properties ?? {};
    if (typeof p.category === "string") props.category = p.category;
    if (typeof p.description === "string") props.description = p.description;
  }
  return props as unknown as ElementProps;
}

/** BIS class of an element of the connector contract. */
export function elementClass(e: SourceElement): string {
  return e.kind === undefined || e.kind === "physical" ? "Generic:PhysicalObject" : `ImodelSync:${e.kind}`;
}

/**
 * Orders elements so that every spatial structure element comes after the one aggregating it and every physical
 * element after the spatial ones (parents are written before their children, containers before what they contain).
 */
export function inWriteOrder(elements: SourceElement[]): SourceElement[] {
  const spatial = new Map<string, SourceElement>();
  for (const e of elements) if (e.kind !== undefined && e.kind !== "physical") spatial.set(e.identifier, e);
  const depth = new Map<string, number>();
  const depthOf = (e: SourceElement): number => {
    const known = depth.get(e.identifier);
    if (known !== undefined) return known;
    depth.set(e.identifier, 0); // cycles end here
    let d = 0;
    let parent = e.container !== undefined ? spatial.get(e.container) : undefined;
    for (let guard = 0; parent && guard < 64; guard++) {
      d++;
      parent = parent.container !== undefined ? spatial.get(parent.container) : undefined;
    }
    depth.set(e.identifier, d);
    return d;
  };
  const order = elements.map((e, i) => ({ e, i, rank: spatial.has(e.identifier) ? depthOf(e) : 1e6 }));
  order.sort((a, b) => a.rank - b.rank || a.i - b.i);
  return order.map((o) => o.e);
}

/** Property and relationship tallies of one write: written counts and the writer's not-written reasons. */
export class ContentTallies {
  propertiesWritten = 0;
  relationshipsWritten = 0;
  readonly propertiesNotWritten = new NotWrittenTally();
  readonly relationshipsNotWritten = new NotWrittenTally();
  definitions = { inserted: 0, updated: 0, unchanged: 0, deleted: 0 };
}
