/**
 * DXF entity types: which ones dxf-parser decodes, which ones the connector maps to elements, and the records that
 * belong to the entity before them; the XREF flags of BLOCK records.
 */

/** Entity types dxf-parser 1.1.2 decodes (its registered handlers); every other type is skipped by it. */
export const PARSER_TYPES = new Set([
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
export const MAPPED_TYPES = new Set([
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
export const SILENT_IN_BLOCKS = new Set(["ATTDEF", "TEXT", "MTEXT"]);

/** Records that belong to the entity before them (POLYLINE vertices, INSERT attributes), not entities of their own. */
export const SUB_RECORDS = new Set(["VERTEX", "SEQEND", "ATTRIB"]);

/** BLOCK flags (group 70) that make a block an XREF: 4 = external reference, 8 = overlay. */
export const XREF_FLAGS = 4 | 8;
