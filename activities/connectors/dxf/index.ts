/**
 * The DXF connector (dxf-parser): `parseDxf` reads one ASCII DXF file into the connector contract; `layerCategory` is
 * the category name it gives a layer.
 */
export { layerCategory } from "./entities";
export { parseDxf } from "./parse";
