/**
 * The connectors by connector type: each reads one source file into the contract of `types.ts` (docs/architecture.md
 * "Connectors").
 */
import type { ConnectorType } from "../../domain/model";
import { parseDxfBytes } from "./dxf";
import { parseIfcBytes } from "./ifc";
import type { ParsedFile } from "./types";

/**
 * Parses the bytes of one source file (read once by the caller, who hashes the same bytes) with the connector of its
 * type; `fileName` names it in messages. Errors: see each connector (SourceFileError).
 */
export type Connector = (bytes: Buffer, fileName: string) => Promise<ParsedFile>;

/** Connectors by connector type. */
export const CONNECTORS: Record<ConnectorType, Connector> = {
  IFC: parseIfcBytes,
  DXF: async (bytes, fileName) => parseDxfBytes(bytes, fileName),
};
