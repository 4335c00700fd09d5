import { z } from "zod";
import { CONNECTOR_TYPES } from "./model";
import { LIMITS } from "./limits";

/** Request bodies and query strings of the API (zod). Unknown fields are refused so typos surface. */

export const createIModelBody = z
  .object({
    name: z.string().trim().min(1, "name must not be empty").max(255),
  })
  .strict();

export const sourceFileInput = z
  .object({
    path: z.string().min(1).max(1024),
    connectorType: z.enum(CONNECTOR_TYPES),
  })
  .strict();

export const createConnectionBody = z
  .object({
    iModelId: z.string().min(1),
    displayName: z.string().trim().min(1, "displayName must not be empty").max(255),
    source: z.object({ type: z.literal("local"), path: z.string().min(1).max(4096) }).strict(),
    sourceFiles: z.array(sourceFileInput).min(1, "map at least one composite model").max(LIMITS.compositeModelsPerIModel),
  })
  .strict();

/** `$top` / `$skip` paging (strings in the query). */
export const pagingQuery = z.object({
  $top: z.coerce.number().int().min(1).max(LIMITS.maxPageSize).default(LIMITS.defaultPageSize),
  $skip: z.coerce.number().int().min(0).default(0),
});

export const listConnectionsQuery = pagingQuery.extend({ iModelId: z.string().min(1).optional() });

export type CreateConnectionBody = z.infer<typeof createConnectionBody>;
