/**
 * The project's own EC schema, `ImodelSync` (alias `imsync`): the classes the writer needs for the content of source
 * files that BisCore and Generic do not have (docs/architecture.md "Content: properties, spatial structure, types,
 * materials"):
 * - `PropertyValue` (an `ElementMultiAspect`): one property value or quantity of an element or definition, queryable
 *   by set name, property name and value;
 * - `SpatialStructureElement` (abstract, a `bis:SpatialLocationElement`) with `Site`, `Facility`, `FacilityPart` and
 *   `Space`, named after BIS's SpatialComposition classes; `SpatialStructureElementAggregatesElements` (parent to child,
 *   a `bis:ElementOwnsChildElements`) forms the hierarchy and `SpatialStructureElementContainsElements` (a
 *   `bis:ElementRefersToElements`) relates each physical element to the spatial element that contains it;
 * - `Material` (a `bis:PhysicalMaterial`) and `ElementUsesMaterial` (a `bis:ElementRefersToElements` with the layer,
 *   profile or constituent it is used in).
 * Types are `Generic:PhysicalType`s referenced through `bis:PhysicalElementIsOfType`.
 */
import type { StandaloneDb } from "@itwin/core-backend";

/** Name and version of the schema; a later version is imported over an earlier one (a compatible upgrade). */
export const CONTENT_SCHEMA = { name: "ImodelSync", version: "01.00.00" };

/** The schema, EC XML 3.2. */
export const CONTENT_SCHEMA_XML = `<?xml version="1.0" encoding="UTF-8"?>
<ECSchema schemaName="ImodelSync" alias="imsync" version="${CONTENT_SCHEMA.version}" xmlns="http://www.bentley.com/schemas/Bentley.ECXML.3.2" displayLabel="imodel-sync content" description="Property values, spatial structure and materials of synchronized source files.">
  <ECSchemaReference name="BisCore" version="01.00.00" alias="bis"/>

  <ECEntityClass typeName="PropertyValue" modifier="Sealed" displayLabel="Property Value" description="One property value or quantity of an element or definition, read from its source file. Numbers are in metres, square metres, cubic metres, kilograms, seconds or radians (Unit names them), or in the source's unit for other measures.">
    <BaseClass>bis:ElementMultiAspect</BaseClass>
    <ECProperty propertyName="SetName" typeName="string" description="Property set or quantity set name, e.g. Pset_WallCommon, Qto_WallBaseQuantities; DXF: Drawing, Attributes or the XDATA application name."/>
    <ECProperty propertyName="SetKind" typeName="string" description="PropertySet, QuantitySet; DXF: Drawing, Attributes, XData."/>
    <ECProperty propertyName="Source" typeName="string" description="Own: the element's own value; Type: inherited from the element's type."/>
    <ECProperty propertyName="Name" typeName="string" description="Property or quantity name."/>
    <ECProperty propertyName="ValueKind" typeName="string" description="Single, Enumerated, Bounded, List, Table; Length, Area, Volume, Count, Weight, Time; DXF: Text, Number."/>
    <ECProperty propertyName="ItemIndex" typeName="int" description="Position in a list, enumeration or table (0-based); null for single values."/>
    <ECProperty propertyName="TextValue" typeName="string" description="The value as text (numbers in Unit; booleans true or false); null when empty."/>
    <ECProperty propertyName="NumberValue" typeName="double" description="The numeric value in Unit; null for text and booleans."/>
    <ECProperty propertyName="Unit" typeName="string" description="Unit of NumberValue, LowerBound and UpperBound: m, m², m³, kg, s, rad, or the source's unit name."/>
    <ECProperty propertyName="LowerBound" typeName="double" description="Bounded values: the lower bound."/>
    <ECProperty propertyName="UpperBound" typeName="double" description="Bounded values: the upper bound."/>
    <ECProperty propertyName="DefiningValue" typeName="string" description="Table values: the row's defining value."/>
  </ECEntityClass>

  <ECRelationshipClass typeName="ElementOwnsPropertyValues" strength="embedding" modifier="Sealed">
    <BaseClass>bis:ElementOwnsMultiAspects</BaseClass>
    <Source multiplicity="(1..1)" roleLabel="owns" polymorphic="true">
      <Class class="bis:Element"/>
    </Source>
    <Target multiplicity="(0..*)" roleLabel="is owned by" polymorphic="true">
      <Class class="PropertyValue"/>
    </Target>
  </ECRelationshipClass>

  <ECEntityClass typeName="SpatialStructureElement" modifier="Abstract" displayLabel="Spatial Structure Element" description="An element of the spatial structure of a source (IFC: IfcSpatialStructureElement).">
    <BaseClass>bis:SpatialLocationElement</BaseClass>
    <ECProperty propertyName="LongName" typeName="string"/>
    <ECProperty propertyName="Description" typeName="string"/>
    <ECProperty propertyName="Elevation" typeName="double" description="Storeys: elevation in metres."/>
  </ECEntityClass>
  <ECEntityClass typeName="Site" modifier="Sealed" description="IFC: IfcSite.">
    <BaseClass>SpatialStructureElement</BaseClass>
  </ECEntityClass>
  <ECEntityClass typeName="Facility" modifier="Sealed" description="IFC: IfcBuilding, IfcFacility and its subtypes (IfcBridge, IfcRailway, IfcRoad, IfcMarineFacility).">
    <BaseClass>SpatialStructureElement</BaseClass>
  </ECEntityClass>
  <ECEntityClass typeName="FacilityPart" modifier="Sealed" displayLabel="Facility Part" description="IFC: IfcBuildingStorey, IfcFacilityPart and its subtypes.">
    <BaseClass>SpatialStructureElement</BaseClass>
  </ECEntityClass>
  <ECEntityClass typeName="Space" modifier="Sealed" description="IFC: IfcSpace.">
    <BaseClass>SpatialStructureElement</BaseClass>
  </ECEntityClass>

  <ECRelationshipClass typeName="SpatialStructureElementAggregatesElements" strength="embedding" modifier="Sealed" description="The spatial structure hierarchy (IFC: IfcRelAggregates between spatial structure elements).">
    <BaseClass>bis:ElementOwnsChildElements</BaseClass>
    <Source multiplicity="(0..1)" roleLabel="aggregates" polymorphic="true">
      <Class class="SpatialStructureElement"/>
    </Source>
    <Target multiplicity="(0..*)" roleLabel="is aggregated by" polymorphic="true">
      <Class class="SpatialStructureElement"/>
    </Target>
  </ECRelationshipClass>

  <ECRelationshipClass typeName="SpatialStructureElementContainsElements" strength="referencing" modifier="Sealed" description="The spatial structure element that contains a physical element (IFC: IfcRelContainedInSpatialStructure).">
    <BaseClass>bis:ElementRefersToElements</BaseClass>
    <Source multiplicity="(0..*)" roleLabel="contains" polymorphic="true">
      <Class class="SpatialStructureElement"/>
    </Source>
    <Target multiplicity="(0..*)" roleLabel="is contained in" polymorphic="true">
      <Class class="bis:SpatialElement"/>
    </Target>
  </ECRelationshipClass>

  <ECEntityClass typeName="Material" modifier="Sealed" description="A material of a source file (IFC: IfcMaterial).">
    <BaseClass>bis:PhysicalMaterial</BaseClass>
    <ECProperty propertyName="Category" typeName="string"/>
    <ECProperty propertyName="Description" typeName="string"/>
  </ECEntityClass>

  <ECRelationshipClass typeName="ElementUsesMaterial" strength="referencing" modifier="Sealed" description="An element or type made of a material, alone or as a layer, profile, constituent or list item (IFC: IfcRelAssociatesMaterial).">
    <BaseClass>bis:ElementRefersToElements</BaseClass>
    <Source multiplicity="(0..*)" roleLabel="uses" polymorphic="true">
      <Class class="bis:Element"/>
    </Source>
    <Target multiplicity="(0..*)" roleLabel="is used by" polymorphic="true">
      <Class class="Material"/>
    </Target>
    <ECProperty propertyName="Usage" typeName="string" description="Material, Layer, Profile, Constituent or List."/>
    <ECProperty propertyName="Position" typeName="int" description="Position in the layer, profile, constituent or material list (0-based)."/>
    <ECProperty propertyName="Thickness" typeName="double" description="Layers: thickness in metres."/>
    <ECProperty propertyName="PartName" typeName="string" description="Name of the layer, profile or constituent."/>
    <ECProperty propertyName="PartCategory" typeName="string" description="Category of the layer, profile or constituent."/>
    <ECProperty propertyName="Fraction" typeName="double" description="Constituents: fraction (0 to 1)."/>
    <ECProperty propertyName="SetName" typeName="string" description="Name of the layer, profile or constituent set."/>
  </ECRelationshipClass>
</ECSchema>
`;

/**
 * Imports the schema when the iModel lacks it (or has an earlier version), in its own commit before the write
 * transaction: core-backend's schema import needs an iModel without pending changes.
 */
export async function ensureContentSchema(db: StandaloneDb): Promise<void> {
  const present = db.querySchemaVersion(CONTENT_SCHEMA.name);
  if (present !== undefined && compareVersions(present, CONTENT_SCHEMA.version) >= 0) return;
  await db.importSchemaStrings([CONTENT_SCHEMA_XML]);
  db.saveChanges(`imodel-sync: schema ${CONTENT_SCHEMA.name} ${CONTENT_SCHEMA.version}`);
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
