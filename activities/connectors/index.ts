/**
 * The connectors by connector type: each reads one source file into the contract of `types.ts` (docs/architecture.md
 * "Connectors").
 */
import type { ConnectorType } from "../../domain/model";
import { parseDxf } from "./dxf";
import { parseIfc } from "./ifc";
import type { ParsedFile } from "./types";

/** Parses one source file with the connector of its type. Errors: see each connector (SourceFileError). */
export type Connector = (absolutePath: string) => Promise<ParsedFile>;

/** Connectors by connector type. */
export const CONNECTORS: Record<ConnectorType, Connector> = {
  IFC: parseIfc,
  DXF: parseDxf,
};
