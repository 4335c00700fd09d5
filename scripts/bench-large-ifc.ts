/**
 * A synthetic IFC4 file of any number of elements for `make bench`'s "one large file" phase (README "Performance"):
 * a project, a site, a building and a storey, then `elements` building elements (walls, columns, beams, slabs and
 * proxies in turn) on a 2 m grid, each with its own placement, an extruded rectangle as its body, and a property set of
 * twelve values (the samples' elements carry about 14); contained in the storey by one relation per 1,000 elements.
 * About 1.4 KB of STEP text per element (100,000 elements: about 140 MB). Deterministic: the same count gives the
 * same bytes.
 */
import * as fs from "node:fs";

/** IFC's GlobalId alphabet (IfcGloballyUniqueId: 22 characters, base 64). */
const GUID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$";

/** A deterministic IfcGloballyUniqueId for (kind, index): 22 characters of the GlobalId alphabet, first in 0-3. */
export function syntheticGlobalId(kind: number, index: number): string {
  let n = BigInt(kind) * 2n ** 64n + BigInt(index) + 1n;
  let out = "";
  for (let i = 0; i < 21; i++) {
    out = GUID_CHARS[Number(n % 64n)] + out;
    n /= 64n;
  }
  return GUID_CHARS[Number(n % 4n)] + out;
}

const ENTITY_TYPES = ["IFCWALL", "IFCCOLUMN", "IFCBEAM", "IFCSLAB", "IFCBUILDINGELEMENTPROXY"] as const;

/** How many elements of the file become elements of the iModel besides the building elements (site, building, storey). */
export const SYNTHETIC_SPATIAL_ELEMENTS = 3;

/**
 * Writes the synthetic IFC to `file` (replacing it), in batches, without holding the whole text in memory.
 * @param elements the number of building elements (>= 1).
 * @returns the file's size in bytes.
 */
export function writeSyntheticIfc(file: string, elements: number): number {
  if (!Number.isInteger(elements) || elements < 1)
    throw new Error(`elements must be a whole number >= 1, got ${elements}`);
  const fd = fs.openSync(file, "w");
  let bytes = 0;
  const write = (text: string) => {
    bytes += fs.writeSync(fd, text, null, "latin1");
  };
  try {
    write(
      [
        "ISO-10303-21;",
        "HEADER;",
        "FILE_DESCRIPTION(('ViewDefinition [DesignTransferView]'),'2;1');",
        `FILE_NAME('synthetic-${elements}.ifc','2026-01-01T00:00:00',('imodel-sync bench'),('imodel-sync'),'imodel-sync bench','imodel-sync bench','');`,
        "FILE_SCHEMA(('IFC4'));",
        "ENDSEC;",
        "DATA;",
        "#1=IFCCARTESIANPOINT((0.,0.,0.));",
        "#2=IFCDIRECTION((0.,0.,1.));",
        "#3=IFCDIRECTION((1.,0.,0.));",
        "#4=IFCAXIS2PLACEMENT3D(#1,#2,#3);",
        "#5=IFCGEOMETRICREPRESENTATIONCONTEXT($,'Model',3,1.E-05,#4,$);",
        "#6=IFCSIUNIT(*,.LENGTHUNIT.,$,.METRE.);",
        "#7=IFCSIUNIT(*,.AREAUNIT.,$,.SQUARE_METRE.);",
        "#8=IFCSIUNIT(*,.VOLUMEUNIT.,$,.CUBIC_METRE.);",
        "#9=IFCSIUNIT(*,.PLANEANGLEUNIT.,$,.RADIAN.);",
        "#10=IFCUNITASSIGNMENT((#6,#7,#8,#9));",
        `#11=IFCPROJECT('${syntheticGlobalId(1, 0)}',$,'imodel-sync bench synthetic ${elements}',$,$,$,$,(#5),#10);`,
        "#12=IFCLOCALPLACEMENT($,#4);",
        `#13=IFCSITE('${syntheticGlobalId(1, 1)}',$,'Site',$,$,#12,$,$,.ELEMENT.,$,$,$,$,$);`,
        "#14=IFCLOCALPLACEMENT(#12,#4);",
        `#15=IFCBUILDING('${syntheticGlobalId(1, 2)}',$,'Building',$,$,#14,$,$,.ELEMENT.,$,$,$);`,
        "#16=IFCLOCALPLACEMENT(#14,#4);",
        `#17=IFCBUILDINGSTOREY('${syntheticGlobalId(1, 3)}',$,'Storey',$,$,#16,$,$,.ELEMENT.,0.);`,
        `#18=IFCRELAGGREGATES('${syntheticGlobalId(1, 4)}',$,$,$,#11,(#13));`,
        `#19=IFCRELAGGREGATES('${syntheticGlobalId(1, 5)}',$,$,$,#13,(#15));`,
        `#20=IFCRELAGGREGATES('${syntheticGlobalId(1, 6)}',$,$,$,#15,(#17));`,
        "#21=IFCCARTESIANPOINT((0.,0.));",
        "#22=IFCRECTANGLEPROFILEDEF(.AREA.,$,#23,0.4,0.4);",
        "#23=IFCAXIS2PLACEMENT2D(#21,$);",
        "",
      ].join("\n"),
    );
    const side = Math.ceil(Math.sqrt(elements));
    const BATCH = 1000;
    let next = 100;
    for (let start = 0; start < elements; start += BATCH) {
      const lines: string[] = [];
      const ids: number[] = [];
      for (let i = start; i < Math.min(elements, start + BATCH); i++) {
        const x = (i % side) * 2;
        const y = Math.floor(i / side) * 2;
        const type = ENTITY_TYPES[i % ENTITY_TYPES.length];
        const [pt, ax, lp, solid, rep, shape, el, pset, rel] = Array.from({ length: 9 }, () => next++);
        const height = 1 + (i % 3);
        const values = [
          `'Index',$,IFCINTEGER(${i})`,
          `'Zone',$,IFCLABEL('Z${i % 97}')`,
          `'IsExternal',$,IFCBOOLEAN(${i % 2 ? ".T." : ".F."})`,
          `'LoadBearing',$,IFCBOOLEAN(${i % 3 ? ".T." : ".F."})`,
          `'FireRating',$,IFCLABEL('EI${30 * (1 + (i % 4))}')`,
          `'Reference',$,IFCIDENTIFIER('R${i % 1000}')`,
          `'Height',$,IFCLENGTHMEASURE(${height}.)`,
          `'Width',$,IFCLENGTHMEASURE(0.4)`,
          `'Mass',$,IFCMASSMEASURE(${(height * 0.16 * 2400).toFixed(1)})`,
          `'Status',$,IFCLABEL('${i % 5 ? "New" : "Existing"}')`,
          `'Comment',$,IFCTEXT('synthetic element ${i}')`,
          `'Phase',$,IFCINTEGER(${i % 4})`,
        ].map((v) => ({ id: next++, v }));
        lines.push(
          `#${pt}=IFCCARTESIANPOINT((${x}.,${y}.,0.));`,
          `#${ax}=IFCAXIS2PLACEMENT3D(#${pt},$,$);`,
          `#${lp}=IFCLOCALPLACEMENT(#16,#${ax});`,
          `#${solid}=IFCEXTRUDEDAREASOLID(#22,$,#2,${height}.);`,
          `#${rep}=IFCSHAPEREPRESENTATION(#5,'Body','SweptSolid',(#${solid}));`,
          `#${shape}=IFCPRODUCTDEFINITIONSHAPE($,$,(#${rep}));`,
          `#${el}=${type}('${syntheticGlobalId(2, i)}',$,'${type.slice(3).toLowerCase()} ${i}',$,$,#${lp},#${shape},'E${i}',$);`,
          ...values.map(({ id, v }) => `#${id}=IFCPROPERTYSINGLEVALUE(${v},$);`),
          `#${pset}=IFCPROPERTYSET('${syntheticGlobalId(3, i)}',$,'Pset_Bench',$,(${values.map(({ id }) => `#${id}`).join(",")}));`,
          `#${rel}=IFCRELDEFINESBYPROPERTIES('${syntheticGlobalId(4, i)}',$,$,$,(#${el}),#${pset});`,
        );
        ids.push(el);
      }
      const contained = next++;
      lines.push(
        `#${contained}=IFCRELCONTAINEDINSPATIALSTRUCTURE('${syntheticGlobalId(5, start / BATCH)}',$,$,$,(${ids.map((id) => `#${id}`).join(",")}),#17);`,
        "",
      );
      write(lines.join("\n"));
    }
    write("ENDSEC;\nEND-ISO-10303-21;\n");
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}
