/**
 * The DXF connector (dxf-parser): `parseDxfBytes` (and `parseDxf`, from a path) reads one ASCII DXF file into the
 * connector contract; `layerCategory` is the category name it gives a layer.
 */
export { layerCategory } from "./entities";
export { parseDxf, parseDxfBytes } from "./parse";
